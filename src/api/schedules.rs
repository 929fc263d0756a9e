//! Scheduled flag changes: schedule one (admin), list a flag's, cancel a pending one. The
//! driver (`crate::rollout::driver`) applies each once when its time comes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;

use super::auth::{Admin, Reader};
use super::error::{ApiError, ApiJson};
use super::extract::Path;
use super::problems::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unprocessable,
    UnsupportedMediaType,
};
use super::state::FlagsState;
use crate::rollout::schedule::{Schedule, ScheduleRequest, parse_schedule};
use crate::store::flags as flag_store;
use crate::store::schedules as store;

/// Schedule a change of a flag in one environment: `{"environment", "at": RFC 3339,
/// "change": {"action": "on" | "off" | "percentage", "percentage": n}}`. A time not in the
/// future is 422.
#[utoipa::path(post, path = "/v1/flags/{key}/schedule", tag = "rollouts", request_body = ScheduleRequest,
    responses((status = 201, body = Schedule), BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
        PayloadTooLarge, UnsupportedMediaType, Unprocessable),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create_schedule(
    access: Admin,
    State(state): State<FlagsState>,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let request = parse_schedule(body, Utc::now())?;
    let flag = flag_store::get(&state.pool, &key)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no flag `{key}`")))?;
    if let Some(pin) = state.flags.pin(&key) {
        return Err(ApiError::Conflict(format!(
            "flag `{key}` is pinned by the environment variable {}; a scheduled change could never apply",
            pin.source_variable
        )));
    }
    if flag.archived {
        return Err(ApiError::Conflict(format!(
            "flag `{key}` is archived: restore it first"
        )));
    }
    let schedule = store::insert(
        &state.pool,
        Uuid::now_v7(),
        &key,
        &request.environment,
        request.at,
        &request.change,
        &access.principal.name,
    )
    .await?;
    tracing::info!(schedule_id = %schedule.id, flag = %key, environment = %schedule.environment,
        at = %schedule.at, actor = %access.principal.name, "scheduled change {} created", schedule.id);
    Ok((StatusCode::CREATED, ApiJson(schedule)).into_response())
}

/// A flag's scheduled changes (pending, applied, cancelled, failed), by time.
#[utoipa::path(get, path = "/v1/flags/{key}/schedule", tag = "rollouts",
    responses((status = 200, body = Vec<Schedule>), Unauthorized, Forbidden, NotFound),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_schedules(
    _access: Reader,
    State(state): State<FlagsState>,
    Path(key): Path<String>,
) -> Result<ApiJson<Vec<Schedule>>, ApiError> {
    if flag_store::get(&state.pool, &key).await?.is_none() {
        return Err(ApiError::NotFound(format!("no flag `{key}`")));
    }
    Ok(ApiJson(store::list(&state.pool, &key).await?))
}

/// Cancel a pending scheduled change (409 once it has been applied, failed or cancelled).
#[utoipa::path(delete, path = "/v1/flags/{key}/schedule/{id}", tag = "rollouts",
    responses((status = 200, body = Schedule), Unauthorized, Forbidden, NotFound, Conflict),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn cancel_schedule(
    access: Admin,
    State(state): State<FlagsState>,
    Path((key, id)): Path<(String, String)>,
) -> Result<ApiJson<Schedule>, ApiError> {
    let missing = || ApiError::NotFound(format!("flag `{key}` has no scheduled change `{id}`"));
    let uuid = Uuid::parse_str(&id).map_err(|_| missing())?;
    if let Some(cancelled) = store::cancel(&state.pool, &key, uuid, &access.principal.name).await? {
        tracing::info!(schedule_id = %uuid, flag = %key, actor = %access.principal.name,
            "scheduled change {uuid} cancelled");
        return Ok(ApiJson(cancelled));
    }
    let found = store::get(&state.pool, &key, uuid)
        .await?
        .ok_or_else(missing)?;
    Err(ApiError::Conflict(
        format!(
            "scheduled change `{uuid}` is {:?}, not pending: it cannot be cancelled",
            found.status
        )
        .to_lowercase(),
    ))
}
