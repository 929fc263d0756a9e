//! Flag evaluation for any client: `POST /v1/evaluate` (switchyard's shape) and OFREP, the
//! OpenFeature Remote Evaluation Protocol, so a stock OpenFeature SDK with the OFREP provider
//! works against switchyard unchanged. Both read the in-memory snapshot: no database access.

use std::hash::{Hash, Hasher};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::auth::Reader;
use super::error::{ApiError, ApiJson};
use super::extract::Path;
use super::problems::{
    BadRequest, Forbidden, PayloadTooLarge, Unauthorized, Unprocessable, UnsupportedMediaType,
};
use super::state::EvaluationState;
use crate::flags::{ErrorCode, Evaluation, EvaluationContext, Reason, Snapshot};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateRequest {
    #[serde(default, deserialize_with = "context_object")]
    pub context: EvaluationContext,
    /// The flags to evaluate; all of them when absent.
    pub flags: Option<Vec<String>>,
}

/// A context is a JSON object only (serde would also take an array of its fields).
fn context_object<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<EvaluationContext, D::Error> {
    use serde::de::Error;
    match Value::deserialize(deserializer)? {
        object @ Value::Object(_) => {
            EvaluationContext::deserialize(object).map_err(D::Error::custom)
        }
        _ => Err(D::Error::custom("`context` must be a JSON object")),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluateResponse {
    pub revision: i64,
    /// True when the snapshot could not be refreshed from the database recently.
    pub stale: bool,
    /// Seconds since the snapshot was last loaded from the database (how fresh these answers
    /// are; grows while `stale`). Absent before the first load.
    pub snapshot_age_s: Option<f64>,
    pub results: Vec<EvaluationView>,
}

/// An evaluation, with what overrode it when something outside the flag decided (the
/// Realtime breaker answers `dashboard.transport` while it is not closed).
#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluationView {
    #[serde(flatten)]
    pub evaluation: Evaluation,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub overridden: Option<Value>,
}

/// Applies the breaker's override to `dashboard.transport`.
fn governed(state: &EvaluationState, evaluation: Evaluation) -> (Evaluation, Option<Value>) {
    state.metrics.count_evaluation(&evaluation);
    let breaker = state.breakers.get(crate::breaker::REALTIME);
    match crate::governance::transport_override(&evaluation, breaker.as_ref()) {
        Some((overridden, metadata)) => (overridden, Some(metadata)),
        None => (evaluation, None),
    }
}

/// Evaluate flags for a context.
#[utoipa::path(post, path = "/v1/evaluate", tag = "evaluation", request_body = EvaluateRequest,
    responses((status = 200, body = EvaluateResponse), BadRequest, Unauthorized, Forbidden, PayloadTooLarge,
        UnsupportedMediaType, Unprocessable),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn evaluate(
    _access: Reader,
    State(state): State<EvaluationState>,
    ApiJson(request): ApiJson<EvaluateRequest>,
) -> Json<EvaluateResponse> {
    let snapshot = state.flags.snapshot();
    let environment = &state.config.environment;
    let results: Vec<Evaluation> = match &request.flags {
        Some(keys) => keys
            .iter()
            .map(|key| snapshot.evaluate(key, &request.context, environment))
            .collect(),
        None => snapshot.evaluate_all(&request.context, environment),
    };
    let results = results
        .into_iter()
        .map(|evaluation| {
            let (evaluation, overridden) = governed(&state, evaluation);
            EvaluationView {
                evaluation,
                overridden,
            }
        })
        .collect();
    Json(EvaluateResponse {
        revision: snapshot.revision(),
        stale: state.flags.is_stale(),
        snapshot_age_s: Some(state.flags.staleness_seconds()).filter(|s| s.is_finite()),
        results,
    })
}

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
    pub metadata: Value,
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
    pub flags: Vec<Value>,
}

/// The OFREP context as ours: `targetingKey` is the key, `environment` (a string) picks the
/// environment, every other entry is an attribute.
fn ofrep_context(body: &Bytes) -> Result<EvaluationContext, (ErrorCode, String)> {
    if body.is_empty() {
        return Ok(EvaluationContext::default());
    }
    // Read as JSON first: serde would take an array for the `OfrepRequest` struct. `null` is
    // no body, as the document says (the body is optional).
    let request: Value = serde_json::from_slice(body).map_err(|e| {
        (
            ErrorCode::ParseError,
            format!("the body is not an OFREP request: {e}"),
        )
    })?;
    let context = match request {
        Value::Null => None,
        Value::Object(mut fields) => fields.remove("context"),
        _ => {
            return Err((
                ErrorCode::ParseError,
                "the body is not an OFREP request: it must be a JSON object".into(),
            ));
        }
    };
    let mut attributes = match context {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err((
                ErrorCode::InvalidContext,
                "`context` must be an object".into(),
            ));
        }
    };
    let targeting_key = match attributes.remove("targetingKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) => Some(key),
        Some(_) => {
            return Err((
                ErrorCode::InvalidContext,
                "`targetingKey` must be a string".into(),
            ));
        }
    };
    let environment = match attributes.get("environment") {
        Some(Value::String(env)) => Some(env.clone()),
        _ => None,
    };
    Ok(EvaluationContext {
        targeting_key,
        environment,
        attributes,
    })
}

fn ofrep_metadata(evaluation: &Evaluation, snapshot: &Snapshot, stale: bool) -> Value {
    json!({"version": evaluation.version, "tier": evaluation.tier, "revision": snapshot.revision(), "stale": stale})
}

fn ofrep_value(
    state: &EvaluationState,
    evaluation: Evaluation,
    snapshot: &Snapshot,
    stale: bool,
) -> Result<OfrepSuccess, OfrepFailure> {
    let (evaluation, overridden) = governed(state, evaluation);
    match evaluation.error_code {
        Some(code) => Err(OfrepFailure {
            key: evaluation.key,
            error_code: code,
            error_details: evaluation.error_details.unwrap_or_default(),
        }),
        None => Ok(OfrepSuccess {
            metadata: {
                let mut metadata = ofrep_metadata(&evaluation, snapshot, stale);
                if let (Some(extra), Some(map)) = (overridden, metadata.as_object_mut()) {
                    map.extend(extra.as_object().cloned().unwrap_or_default());
                }
                metadata
            },
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
        match ofrep_value(&state, evaluation, &snapshot, state.flags.is_stale()) {
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
    let flags = snapshot
        .evaluate_all(&context, &state.config.environment)
        .into_iter()
        .map(
            |evaluation| match ofrep_value(&state, evaluation, &snapshot, stale) {
                Ok(success) => json!(success),
                Err(failure) => json!(failure),
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
