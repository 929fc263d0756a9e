//! The flag admin API: list, create, read, replace, archive, flip, roll out, set rules,
//! history, restore. Every response carries `ETag` = the flag's version; a write with an
//! `If-Match` that does not match is 412 and changes nothing.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Admin, Reader};
use super::error::{ApiError, ApiJson, ApiQuery};
use super::extract::Path;
use super::problems::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, Unauthorized,
    Unprocessable, UnsupportedMediaType,
};
use super::state::FlagsState;
use crate::event::FieldError;
use crate::flags::parse_flag;
use crate::flags::{EnvironmentConfig, FlagRecord, Pin, Rollout, Rule, is_valid_environment_name};
use crate::flagstore::writes::{self, Change, WriteContext, WriteError};
use crate::store::flags::{self as flag_store, AuditRow};

/// A flag as the API shows it: the definition, its version, and the pin if one holds it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlagView {
    #[serde(flatten)]
    pub record: FlagRecord,
    /// `env` when an environment variable pins the flag (REST writes are refused), else `store`.
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<Pin>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FlagList {
    pub revision: i64,
    pub stale: bool,
    pub flags: Vec<FlagView>,
}

/// An optional reason, recorded in the audit row.
#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct ReasonQuery {
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Include archived flags.
    #[serde(default)]
    pub archived: bool,
}

/// A rollout plus an optional `reason`. (Parsed by hand: serde's `flatten` would let
/// unknown fields through.)
#[derive(Debug)]
pub struct RolloutRequest {
    pub rollout: Rollout,
    pub reason: Option<String>,
}

/// The body of `PUT /v1/flags/{key}/environments/{env}/rollout` as the document shows it: a
/// [`Rollout`]'s fields and `reason` side by side, nothing else.
#[derive(ToSchema)]
#[schema(as = RolloutRequest)]
#[serde(deny_unknown_fields)]
pub struct RolloutRequestDocument {
    /// 0 to 100, a whole number (default 100).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100, multiple_of = 1)]
    pub percentage: f64,
    /// One of the flag's variants (default `on`).
    #[serde(default)]
    pub variant: String,
    /// Each a variant of the flag; the weights add up to 1000.
    #[serde(default)]
    pub variant_weights: Vec<crate::flags::VariantWeight>,
    #[serde(default)]
    pub group_id: Option<String>,
    /// Recorded in the audit row.
    #[serde(default)]
    pub reason: Option<String>,
}

impl RolloutRequest {
    fn parse(mut body: Value) -> Result<Self, ApiError> {
        let reason = match body.as_object_mut().and_then(|o| o.remove("reason")) {
            None | Some(Value::Null) => None,
            Some(Value::String(reason)) => Some(reason),
            Some(_) => return Err(field_error("reason", "must be a string")),
        };
        let rollout = crate::flags::parse_body(body)?;
        Ok(Self { rollout, reason })
    }
}

fn field_error(field: &str, message: &str) -> ApiError {
    ApiError::Validation(vec![FieldError {
        index: None,
        field: field.into(),
        message: message.into(),
    }])
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesRequest {
    pub rules: Vec<Rule>,
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// A version from the flag's history (`3`; JSON's `3.0` is the same number).
    #[serde(deserialize_with = "whole_number")]
    pub version: i64,
    pub reason: Option<String>,
}

/// An integer written as JSON `3` or `3.0` (JSON Schema's `integer` admits both).
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    use serde::de::Error;
    let number = serde_json::Number::deserialize(deserializer)?;
    number
        .as_i64()
        .or_else(|| {
            number
                .as_f64()
                .filter(|n| n.fract() == 0.0 && n.abs() < 9.0e15)
                .map(|n| n as i64)
        })
        .ok_or_else(|| D::Error::custom(format!("{number} is not a whole number")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Most rows to return (default 100, at most 1000).
    pub limit: Option<i64>,
}

fn view(state: &FlagsState, record: FlagRecord) -> FlagView {
    let pin = state.flags.pin(record.flag.key.as_str());
    FlagView {
        record,
        source: if pin.is_some() { "env" } else { "store" },
        pin,
    }
}

/// The response with `ETag: "<version>"`.
fn with_etag(status: StatusCode, view: FlagView) -> Response {
    let etag = format!("\"{}\"", view.record.version);
    let mut response = (status, ApiJson(view)).into_response();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// The version an `If-Match` header names (`"3"`, `3`, `W/"3"`; `*` means any).
pub(super) fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(raw) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = raw
        .to_str()
        .map_err(|_| ApiError::BadRequest("If-Match is not readable".into()))?
        .trim();
    if text == "*" {
        return Ok(None);
    }
    let bare = text.trim_start_matches("W/").trim_matches('"');
    bare.parse::<i64>().map(Some).map_err(|_| {
        ApiError::PreconditionFailed(format!("If-Match `{text}` names no version of this flag"))
    })
}

fn check_environment(env: &str) -> Result<(), ApiError> {
    if is_valid_environment_name(env) {
        Ok(())
    } else {
        Err(ApiError::Validation(vec![FieldError {
            index: None,
            field: "environment".into(),
            message: format!(
                "`{env}` is not a valid environment name ([a-z0-9][a-z0-9._-]{{0,127}})"
            ),
        }]))
    }
}

/// Runs one write with the caller's identity, reason and If-Match.
async fn apply(
    state: &FlagsState,
    access: &Admin,
    headers: &HeaderMap,
    key: &str,
    action: &str,
    reason: Option<&str>,
    change: Change,
) -> Result<FlagRecord, ApiError> {
    let context = WriteContext {
        actor: &access.principal.name,
        reason,
        if_match: if_match(headers)?,
    };
    Ok(writes::write(&state.pool, &state.flags, key, action, context, change).await?)
}

/// List flags.
#[utoipa::path(get, path = "/v1/flags", tag = "flags", params(ListQuery),
    responses((status = 200, body = FlagList), BadRequest, Unauthorized, Forbidden),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_flags(
    _access: Reader,
    State(state): State<FlagsState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<ApiJson<FlagList>, ApiError> {
    let stored = flag_store::list(&state.pool, query.archived).await?;
    let flags = stored
        .iter()
        .map(|row| crate::flagstore::record_from_store(row).map(|r| view(&state, r)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(ApiJson(FlagList {
        revision: state.flags.snapshot().revision(),
        stale: state.flags.is_stale(),
        flags,
    }))
}

/// Create a flag. `{"key", "type": "boolean", "description"}` is enough for a boolean flag,
/// off in every environment until flipped.
#[utoipa::path(post, path = "/v1/flags", tag = "flags", params(ReasonQuery),
    request_body(content = crate::flags::FlagDocument),
    responses((status = 201, body = FlagView), BadRequest, Unauthorized, Forbidden, Conflict, PreconditionFailed,
        PayloadTooLarge, UnsupportedMediaType),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create_flag(
    access: Admin,
    State(state): State<FlagsState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ReasonQuery>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let flag = parse_flag(body)?;
    let key = flag.key.as_str().to_string();
    let record = apply(
        &state,
        &access,
        &headers,
        &key,
        "create",
        q.reason.as_deref(),
        Change::Create(Box::new(flag)),
    )
    .await?;
    Ok(with_etag(StatusCode::CREATED, view(&state, record)))
}

/// Read one flag.
#[utoipa::path(get, path = "/v1/flags/{key}", tag = "flags",
    responses((status = 200, body = FlagView), Unauthorized, Forbidden, NotFound),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get_flag(
    _access: Reader,
    State(state): State<FlagsState>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let row = flag_store::get(&state.pool, &key)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no flag `{key}`")))?;
    let record =
        crate::flagstore::record_from_store(&row).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(with_etag(StatusCode::OK, view(&state, record)))
}

/// Replace a flag's definition (also un-archives with `"archived": false`).
#[utoipa::path(put, path = "/v1/flags/{key}", tag = "flags", params(ReasonQuery),
    request_body(content = crate::flags::FlagDocument),
    responses((status = 200, body = FlagView), BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
        PreconditionFailed, PayloadTooLarge, UnsupportedMediaType, Unprocessable),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn replace_flag(
    access: Admin,
    State(state): State<FlagsState>,
    headers: HeaderMap,
    Path(key): Path<String>,
    ApiQuery(q): ApiQuery<ReasonQuery>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let replacement = parse_flag(body)?;
    if replacement.key.as_str() != key {
        return Err(ApiError::Unprocessable(format!(
            "the body's key `{}` is not the path's `{key}`",
            replacement.key.as_str()
        )));
    }
    let change = Change::Edit(Box::new(move |flag| {
        *flag = replacement;
        Ok(())
    }));
    let record = apply(
        &state,
        &access,
        &headers,
        &key,
        "update",
        q.reason.as_deref(),
        change,
    )
    .await?;
    Ok(with_etag(StatusCode::OK, view(&state, record)))
}

/// Archive a flag: it stops evaluating (FLAG_NOT_FOUND) but keeps its history.
#[utoipa::path(delete, path = "/v1/flags/{key}", tag = "flags", params(ReasonQuery),
    responses((status = 200, body = FlagView), BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
        PreconditionFailed),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn archive_flag(
    access: Admin,
    State(state): State<FlagsState>,
    headers: HeaderMap,
    Path(key): Path<String>,
    ApiQuery(q): ApiQuery<ReasonQuery>,
) -> Result<Response, ApiError> {
    let change = Change::Edit(Box::new(|flag| {
        flag.archived = true;
        Ok(())
    }));
    let record = apply(
        &state,
        &access,
        &headers,
        &key,
        "archive",
        q.reason.as_deref(),
        change,
    )
    .await?;
    Ok(with_etag(StatusCode::OK, view(&state, record)))
}

fn live_only(flag: &crate::flags::Flag) -> Result<(), WriteError> {
    if flag.archived {
        Err(WriteError::Conflict(format!(
            "flag `{}` is archived: restore it first",
            flag.key.as_str()
        )))
    } else {
        Ok(())
    }
}

/// One audited edit of a flag's configuration in one environment (flip, rollout, rules):
/// the environment name checked, archived flags refused, the response with its ETag.
async fn edit_environment(
    state: &FlagsState,
    access: &Admin,
    headers: &HeaderMap,
    (key, env): (String, String),
    action: &str,
    reason: Option<&str>,
    edit: impl FnOnce(&mut EnvironmentConfig) + Send + 'static,
) -> Result<Response, ApiError> {
    check_environment(&env)?;
    let change = Change::Edit(Box::new(move |flag| {
        live_only(flag)?;
        edit(flag.environment_mut(&env));
        Ok(())
    }));
    let record = apply(state, access, headers, &key, action, reason, change).await?;
    Ok(with_etag(StatusCode::OK, view(state, record)))
}

/// Turn a flag on in an environment.
#[utoipa::path(post, path = "/v1/flags/{key}/environments/{env}/on", tag = "flags",
    params(("key" = String, Path), ("env" = String, Path, pattern = "^[a-z0-9][a-z0-9._-]{0,127}$", description = "An environment name"), ReasonQuery),
    responses((status = 200, body = FlagView), BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
        PreconditionFailed),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn flip_on(
    access: Admin,
    State(state): State<FlagsState>,
    headers: HeaderMap,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ReasonQuery>,
) -> Result<Response, ApiError> {
    let on = |config: &mut EnvironmentConfig| config.enabled = true;
    edit_environment(
        &state,
        &access,
        &headers,
        path,
        "flip_on",
        q.reason.as_deref(),
        on,
    )
    .await
}

/// Turn a flag off in an environment (the kill switch).
#[utoipa::path(post, path = "/v1/flags/{key}/environments/{env}/off", tag = "flags",
    params(("key" = String, Path), ("env" = String, Path, pattern = "^[a-z0-9][a-z0-9._-]{0,127}$", description = "An environment name"), ReasonQuery),
    responses((status = 200, body = FlagView), BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
        PreconditionFailed),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn flip_off(
    access: Admin,
    State(state): State<FlagsState>,
    headers: HeaderMap,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ReasonQuery>,
) -> Result<Response, ApiError> {
    let off = |config: &mut EnvironmentConfig| config.enabled = false;
    edit_environment(
        &state,
        &access,
        &headers,
        path,
        "flip_off",
        q.reason.as_deref(),
        off,
    )
    .await
}

/// Set the percentage rollout (and variant weights) of an environment.
#[utoipa::path(put, path = "/v1/flags/{key}/environments/{env}/rollout", tag = "flags",
    params(("key" = String, Path), ("env" = String, Path, pattern = "^[a-z0-9][a-z0-9._-]{0,127}$", description = "An environment name")),
    request_body = RolloutRequestDocument,
    responses((status = 200, body = FlagView), BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
        PreconditionFailed, PayloadTooLarge, UnsupportedMediaType),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn set_rollout(
    access: Admin,
    State(state): State<FlagsState>,
    headers: HeaderMap,
    Path(path): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let RolloutRequest { rollout, reason } = RolloutRequest::parse(body)?;
    let set = move |config: &mut EnvironmentConfig| config.rollout = rollout;
    edit_environment(
        &state,
        &access,
        &headers,
        path,
        "rollout",
        reason.as_deref(),
        set,
    )
    .await
}

/// Replace the targeting rules of an environment.
#[utoipa::path(put, path = "/v1/flags/{key}/environments/{env}/rules", tag = "flags",
    params(("key" = String, Path), ("env" = String, Path, pattern = "^[a-z0-9][a-z0-9._-]{0,127}$", description = "An environment name")),
    request_body = RulesRequest,
    responses((status = 200, body = FlagView), BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
        PreconditionFailed, PayloadTooLarge, UnsupportedMediaType),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn set_rules(
    access: Admin,
    State(state): State<FlagsState>,
    headers: HeaderMap,
    Path(path): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let RulesRequest { rules, reason } = crate::flags::parse_body(body)?;
    let set = move |config: &mut EnvironmentConfig| config.rules = rules;
    edit_environment(
        &state,
        &access,
        &headers,
        path,
        "rules",
        reason.as_deref(),
        set,
    )
    .await
}

/// The audit rows of a flag, newest first.
#[utoipa::path(get, path = "/v1/flags/{key}/history", tag = "flags", params(HistoryQuery),
    responses((status = 200, body = Vec<AuditRow>), BadRequest, Unauthorized, Forbidden, NotFound),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn flag_history(
    _access: Reader,
    State(state): State<FlagsState>,
    Path(key): Path<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<ApiJson<Vec<AuditRow>>, ApiError> {
    if flag_store::get(&state.pool, &key).await?.is_none() {
        return Err(ApiError::NotFound(format!("no flag `{key}`")));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(ApiJson(
        flag_store::history(&state.pool, &key, limit).await?,
    ))
}

/// Restore the definition a flag had at `version`, as a new version.
#[utoipa::path(post, path = "/v1/flags/{key}/restore", tag = "flags",
    request_body = RestoreRequest,
    responses((status = 200, body = FlagView), BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
        PreconditionFailed, PayloadTooLarge, UnsupportedMediaType, Unprocessable),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn restore_flag(
    access: Admin,
    State(state): State<FlagsState>,
    headers: HeaderMap,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<RestoreRequest>,
) -> Result<Response, ApiError> {
    let old = flag_store::definition_at(&state.pool, &key, body.version)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "flag `{key}` has no version {} in its history",
                body.version
            ))
        })?;
    let mut restored = parse_flag(old)?;
    restored.archived = false;
    let change = Change::Edit(Box::new(move |flag| {
        *flag = restored;
        Ok(())
    }));
    let reason = body
        .reason
        .unwrap_or_else(|| format!("restore version {}", body.version));
    let record = apply(
        &state,
        &access,
        &headers,
        &key,
        "restore",
        Some(&reason),
        change,
    )
    .await?;
    Ok(with_etag(StatusCode::OK, view(&state, record)))
}
