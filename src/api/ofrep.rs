//! OFREP, the OpenFeature Remote Evaluation Protocol, so a stock OpenFeature SDK with the
//! OFREP provider works against switchyard unchanged: one flag, or all of them with an `ETag`.
//! Answers are serialized straight from typed values, with no JSON tree built in between.

use std::hash::{Hash, Hasher};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::auth::Reader;
use super::error::ApiError;
use super::evaluate::Governor;
use super::extract::Path;
use super::problems::{Forbidden, PayloadTooLarge, Unauthorized};
use super::state::EvaluationState;
use crate::flags::{ErrorCode, Evaluation, Reason, Snapshot, Tier};

#[path = "ofrep_context.rs"]
mod context;
use context::ofrep_context;

/// OFREP's request body: `{"context": {"targetingKey": "...", <attributes>...}}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OfrepRequest {
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepSuccess {
    pub key: String,
    /// Any JSON value, of the flag's type.
    pub value: Value,
    pub reason: Reason,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: OfrepMetadata,
}

/// A success's `metadata`. Written straight from its fields (not built as a JSON map first)
/// unless the breaker overrode the value; the keys come in the order a JSON object of them
/// prints in (serde_json sorts them), so both answer the same bytes.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum OfrepMetadata {
    Evaluated {
        revision: i64,
        stale: bool,
        tier: Tier,
        version: i64,
    },
    /// The fields above and what overrode the value (`overridden_by`, `breaker_state`).
    Overridden(Map<String, Value>),
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepFailure {
    pub key: String,
    pub error_code: ErrorCode,
    pub error_details: String,
}

/// A bulk evaluation that failed as a whole: OFREP's error without a flag key.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepBulkFailure {
    pub error_code: ErrorCode,
    pub error_details: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OfrepBulk {
    #[schema(value_type = Vec<Object>)]
    pub flags: Vec<OfrepResult>,
}

/// One flag of a bulk answer: its value, or OFREP's error for it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum OfrepResult {
    Success(OfrepSuccess),
    Failure(OfrepFailure),
}

fn ofrep_metadata(
    evaluation: &Evaluation,
    snapshot: &Snapshot,
    stale: bool,
    overridden: Option<Value>,
) -> OfrepMetadata {
    let metadata = OfrepMetadata::Evaluated {
        revision: snapshot.revision(),
        stale,
        tier: evaluation.tier,
        version: evaluation.version,
    };
    let Some(Value::Object(extra)) = overridden else {
        return metadata;
    };
    let Ok(Value::Object(mut map)) = serde_json::to_value(&metadata) else {
        unreachable!("metadata serializes to an object")
    };
    map.extend(extra);
    OfrepMetadata::Overridden(map)
}

fn ofrep_value(
    governor: &Governor<'_>,
    evaluation: Evaluation,
    snapshot: &Snapshot,
    stale: bool,
) -> Result<OfrepSuccess, OfrepFailure> {
    let (evaluation, overridden) = governor.govern(evaluation);
    match evaluation.error_code {
        Some(code) => Err(OfrepFailure {
            key: evaluation.key,
            error_code: code,
            error_details: evaluation.error_details.unwrap_or_default(),
        }),
        None => Ok(OfrepSuccess {
            metadata: ofrep_metadata(&evaluation, snapshot, stale, overridden),
            key: evaluation.key,
            value: evaluation.value,
            reason: evaluation.reason,
            variant: evaluation.variant,
        }),
    }
}

/// OFREP: evaluate one flag.
#[utoipa::path(post, path = "/ofrep/v1/evaluate/flags/{key}", tag = "evaluation",
    request_body(content = Option<OfrepRequest>, description = "Optional: no body is an empty context", content_type = "application/json"),
    responses((status = 200, body = OfrepSuccess),
        (status = 400, description = "OFREP's own error (PARSE_ERROR, INVALID_CONTEXT, TARGETING_KEY_MISSING, TYPE_MISMATCH, GENERAL)", body = OfrepFailure),
        (status = 404, description = "FLAG_NOT_FOUND", body = OfrepFailure),
        Unauthorized, Forbidden, PayloadTooLarge),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn ofrep_one(
    _access: Reader,
    State(state): State<EvaluationState>,
    Path(key): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let context = match ofrep_context(&body?) {
        Ok(context) => context,
        Err((code, details)) => {
            return Ok(failure(
                StatusCode::BAD_REQUEST,
                OfrepFailure {
                    key,
                    error_code: code,
                    error_details: details,
                },
            ));
        }
    };
    let snapshot = state.flags.snapshot();
    let evaluation = snapshot.evaluate(&key, &context, &state.config.environment);
    Ok(
        match ofrep_value(
            &Governor::new(&state),
            evaluation,
            &snapshot,
            state.flags.is_stale(),
        ) {
            Ok(success) => Json(success).into_response(),
            Err(fail) if fail.error_code == ErrorCode::FlagNotFound => {
                failure(StatusCode::NOT_FOUND, fail)
            }
            Err(fail) => failure(StatusCode::BAD_REQUEST, fail),
        },
    )
}

fn failure(status: StatusCode, body: OfrepFailure) -> Response {
    (status, Json(body)).into_response()
}

/// OFREP: evaluate every flag. The `ETag` changes when the flag set or the context does;
/// `If-None-Match` with the current one is 304 with no body.
#[utoipa::path(post, path = "/ofrep/v1/evaluate/flags", tag = "evaluation",
    request_body(content = Option<OfrepRequest>, description = "Optional: no body is an empty context", content_type = "application/json"),
    params(("If-None-Match" = Option<String>, Header, description = "The `ETag` of a previous answer")),
    responses((status = 200, body = OfrepBulk, headers(("ETag" = String, description = "Changes with the flag set or the context"))),
        (status = 304, description = "Not modified"),
        (status = 400, description = "OFREP's own error (PARSE_ERROR, INVALID_CONTEXT)", body = OfrepBulkFailure),
        Unauthorized, Forbidden, PayloadTooLarge),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn ofrep_bulk(
    _access: Reader,
    State(state): State<EvaluationState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let context = match ofrep_context(&body) {
        Ok(context) => context,
        Err((code, details)) => {
            let body = OfrepBulkFailure {
                error_code: code,
                error_details: details,
            };
            return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
        }
    };
    let snapshot = state.flags.snapshot();
    let etag = format!(
        "\"{}-{:016x}\"",
        snapshot.revision(),
        context_hash(&body, &state.config.environment)
    );
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return Ok(with_etag(StatusCode::NOT_MODIFIED.into_response(), &etag));
    }
    let stale = state.flags.is_stale();
    let governor = Governor::new(&state);
    let flags = snapshot
        .evaluate_all(&context, &state.config.environment)
        .into_iter()
        .map(
            |evaluation| match ofrep_value(&governor, evaluation, &snapshot, stale) {
                Ok(success) => OfrepResult::Success(success),
                Err(failure) => OfrepResult::Failure(failure),
            },
        )
        .collect();
    Ok(with_etag(Json(OfrepBulk { flags }).into_response(), &etag))
}

fn with_etag(mut response: Response, etag: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn context_hash(body: &[u8], environment: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    environment.hash(&mut hasher);
    hasher.finish()
}
