//! Guarded rollout plans: create (admin; applies the first stage), list, read (with the
//! guardrails as they read now and the plan's event trail), pause, resume, abort.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{Admin, Reader};
use super::error::{ApiError, ApiJson};
use super::extract::Path;
use super::problems::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, Unauthorized,
    Unprocessable, UnsupportedMediaType,
};
use crate::rollout::guardrails;
use crate::rollout::model::{GuardrailReading, stages_view};
use crate::rollout::operations::{self, Operation};
use crate::rollout::parse::{PlanRequest, parse_plan};
use crate::rollout::steps;
use crate::rollout::{Guardrails, OnBreach, Plan, RolloutDeps, Status};
use crate::store::rollouts::{self as store, RolloutEvent};

/// A plan as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RolloutView {
    pub id: Uuid,
    pub flag: String,
    pub environment: String,
    pub status: Status,
    /// The flag's percentage as the plan last set it.
    pub percentage: u8,
    /// Index into `stages` of the stage in force; null when rolled back or aborted below
    /// the first stage.
    pub stage: Option<usize>,
    /// `[{"percentage": 10, "hold": "10m"}, ...]`
    #[schema(value_type = Vec<Object>)]
    pub stages: Vec<Value>,
    /// When the stage in force began (or the plan resumed).
    pub since: DateTime<Utc>,
    /// When a running plan's hold ends and it advances if every guardrail is healthy.
    pub next_step_at: Option<DateTime<Utc>>,
    pub guardrails: Guardrails,
    /// Each guardrail as it reads now on this instance.
    pub readings: Vec<GuardrailReading>,
    pub on_breach: OnBreach,
    /// Why the status last changed.
    pub reason: String,
    /// The flag version the plan last wrote or accepted.
    pub flag_version: i64,
    /// The flag's percentage before the plan.
    pub initial_percentage: u8,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every change of the plan's state, oldest first (on `GET /v1/rollouts/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<RolloutEvent>>,
}

fn view(state: &RolloutDeps, plan: Plan, events: Option<Vec<RolloutEvent>>) -> RolloutView {
    RolloutView {
        readings: guardrails::read(&state.guardrails, &plan.guardrails),
        stages: stages_view(&plan.stages),
        next_step_at: plan.next_step_at(),
        id: plan.id,
        flag: plan.flag,
        environment: plan.environment,
        status: plan.status,
        percentage: plan.percentage,
        stage: plan.stage,
        since: plan.stage_since,
        guardrails: plan.guardrails,
        on_breach: plan.on_breach,
        reason: plan.reason,
        flag_version: plan.flag_version,
        initial_percentage: plan.initial_percentage,
        created_by: plan.created_by,
        created_at: plan.created_at,
        updated_at: plan.updated_at,
        events,
    }
}

/// Start a guarded rollout: the first stage is applied at once (an audited flag write by
/// `rollout:<id>`, over `If-Match` when given); the plan then moves by itself.
#[utoipa::path(post, path = "/v1/rollouts", tag = "rollouts", request_body = PlanRequest,
    responses((status = 201, body = RolloutView), BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
        PreconditionFailed, PayloadTooLarge, UnsupportedMediaType, Unprocessable),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create_rollout(
    access: Admin,
    State(state): State<RolloutDeps>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let request = parse_plan(body, |name| state.guardrails.breakers.get(name).is_some())?;
    let if_match = super::flags::if_match(&headers)?;
    let plan = steps::create(&state, request, &access.principal.name, if_match).await?;
    Ok((StatusCode::CREATED, ApiJson(view(&state, plan, None))).into_response())
}

/// Every rollout plan, newest first (at most 500).
#[utoipa::path(get, path = "/v1/rollouts", tag = "rollouts",
    responses((status = 200, body = Vec<RolloutView>), Unauthorized, Forbidden),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_rollouts(
    _access: Reader,
    State(state): State<RolloutDeps>,
) -> Result<ApiJson<Vec<RolloutView>>, ApiError> {
    let plans = store::list(&state.pool, 500).await?;
    Ok(ApiJson(
        plans.into_iter().map(|p| view(&state, p, None)).collect(),
    ))
}

/// One rollout plan with its event trail.
#[utoipa::path(get, path = "/v1/rollouts/{id}", tag = "rollouts",
    responses((status = 200, body = RolloutView), Unauthorized, Forbidden, NotFound),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get_rollout(
    _access: Reader,
    State(state): State<RolloutDeps>,
    Path(id): Path<String>,
) -> Result<ApiJson<RolloutView>, ApiError> {
    let id = plan_id(&id)?;
    let plan = store::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no rollout plan `{id}`")))?;
    let events = store::events(&state.pool, id).await?;
    Ok(ApiJson(view(&state, plan, Some(events))))
}

fn plan_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(format!("no rollout plan `{raw}`")))
}

async fn operate(
    state: &RolloutDeps,
    access: &Admin,
    id: &str,
    op: Operation,
) -> Result<ApiJson<RolloutView>, ApiError> {
    let plan = operations::operate(state, plan_id(id)?, &access.principal.name, op).await?;
    Ok(ApiJson(view(state, plan, None)))
}

/// Pause a running plan: it holds its stage and takes no step until resumed.
#[utoipa::path(post, path = "/v1/rollouts/{id}/pause", tag = "rollouts",
    responses((status = 200, body = RolloutView), Unauthorized, Forbidden, NotFound, Conflict,
        PreconditionFailed),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn pause_rollout(
    access: Admin,
    State(state): State<RolloutDeps>,
    Path(id): Path<String>,
) -> Result<ApiJson<RolloutView>, ApiError> {
    operate(&state, &access, &id, Operation::Pause).await
}

/// Resume a paused plan, or one a guardrail rolled back, from its stage, accepting the flag as
/// it is now; the hold restarts. 409 for any other status, or when a rolled-back plan's flag
/// has another live plan.
#[utoipa::path(post, path = "/v1/rollouts/{id}/resume", tag = "rollouts",
    responses((status = 200, body = RolloutView), Unauthorized, Forbidden, NotFound, Conflict,
        PreconditionFailed),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn resume_rollout(
    access: Admin,
    State(state): State<RolloutDeps>,
    Path(id): Path<String>,
) -> Result<ApiJson<RolloutView>, ApiError> {
    operate(&state, &access, &id, Operation::Resume).await
}

/// Abort a running or paused plan: the flag goes to 0% (an audited write) and the plan ends.
#[utoipa::path(post, path = "/v1/rollouts/{id}/abort", tag = "rollouts",
    responses((status = 200, body = RolloutView), Unauthorized, Forbidden, NotFound, Conflict,
        PreconditionFailed),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn abort_rollout(
    access: Admin,
    State(state): State<RolloutDeps>,
    Path(id): Path<String>,
) -> Result<ApiJson<RolloutView>, ApiError> {
    operate(&state, &access, &id, Operation::Abort).await
}
