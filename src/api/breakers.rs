//! The operator surface of the circuit breakers: status, history, a live stream (current state
//! first, then each transition, and a Hystrix-style sample every second), and the actions that
//! force a state, disable a breaker, reset it or hand it back to its policy (admin scope).
//!
//! An action is audited in the control store first and then changes the breaker at once; the
//! transition it causes reaches the history table through the background writer
//! (`crate::breaker::history`), like every other transition.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Admin, Reader};
use super::error::{ApiError, ApiJson, ApiQuery, Problem};
use super::extract::Path;
use super::problems::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, TooManyRequests, Unauthorized,
    UnsupportedMediaType,
};
use super::state::BreakersState;
use crate::breaker::{
    Breaker, BreakerMode, BreakerState, BreakerStatus, Registry, Transition, history,
};
use crate::event::FieldError;
use crate::store::breakers::{self as breaker_store, ActionRecord, NewAction, TransitionRecord};

/// How often the stream sends every breaker's status.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// What `POST /v1/breakers/{name}` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerAction {
    /// Reject every call until another action.
    ForceOpen,
    /// Admit every call (outcomes recorded, never trips) until another action.
    ForceClosed,
    /// Admit every call and record nothing.
    Disable,
    /// Closed under the policy, counters cleared.
    Reset,
    /// Back to the policy (closed) from a forced or disabled state.
    Auto,
}

impl BreakerAction {
    pub fn as_str(self) -> &'static str {
        ACTIONS
            .iter()
            .find(|(_, action)| *action == self)
            .map(|(name, _)| *name)
            .expect("every action is named")
    }

    /// The state the action leaves a breaker in that is `before`: a forced state, closed
    /// (reset, or auto from a forced state), or unchanged (auto while the policy rules).
    pub fn resulting_state(self, before: BreakerState) -> BreakerState {
        match self {
            Self::ForceOpen => BreakerState::ForcedOpen,
            Self::ForceClosed => BreakerState::ForcedClosed,
            Self::Disable => BreakerState::Disabled,
            Self::Reset => BreakerState::Closed,
            Self::Auto if before.mode() == BreakerMode::Auto => before,
            Self::Auto => BreakerState::Closed,
        }
    }
}

const ACTIONS: [(&str, BreakerAction); 5] = [
    ("force_open", BreakerAction::ForceOpen),
    ("force_closed", BreakerAction::ForceClosed),
    ("disable", BreakerAction::Disable),
    ("reset", BreakerAction::Reset),
    ("auto", BreakerAction::Auto),
];

/// The body of `POST /v1/breakers/{name}`.
/// Unknown fields are refused (400), as the schema says (`additionalProperties: false`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerCommand {
    pub action: BreakerAction,
    /// Why, for the history.
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TransitionsQuery {
    /// Most rows to return (default 100, at most 1000).
    pub limit: Option<i64>,
}

fn find(registry: &Registry, name: &str) -> Result<Breaker, ApiError> {
    registry
        .get(name)
        .ok_or_else(|| ApiError::NotFound(format!("no breaker `{name}`")))
}

/// Every breaker's status.
#[utoipa::path(get, path = "/v1/breakers", tag = "breakers",
    responses((status = 200, body = Vec<BreakerStatus>), Unauthorized, Forbidden),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_breakers(
    _access: Reader,
    State(state): State<BreakersState>,
) -> ApiJson<Vec<BreakerStatus>> {
    ApiJson(state.breakers.all().iter().map(Breaker::status).collect())
}

/// One breaker's status.
#[utoipa::path(get, path = "/v1/breakers/{name}", tag = "breakers",
    responses((status = 200, body = BreakerStatus), Unauthorized, Forbidden, NotFound),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get_breaker(
    _access: Reader,
    State(state): State<BreakersState>,
    Path(name): Path<String>,
) -> Result<ApiJson<BreakerStatus>, ApiError> {
    Ok(ApiJson(find(&state.breakers, &name)?.status()))
}

/// Force a breaker open or closed, disable it, reset it, or return it to its policy. The
/// action is audited (`GET /v1/breakers/{name}/actions`) before it takes effect: when the
/// audit row cannot be written the answer is 503 and the breaker is left as it was.
#[utoipa::path(post, path = "/v1/breakers/{name}", tag = "breakers",
    request_body = BreakerCommand,
    responses((status = 200, description = "The status after the action", body = BreakerStatus),
        BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType,
        (status = 503, description = "The control store is unavailable; nothing changed", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying")))),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn control_breaker(
    access: Admin,
    State(state): State<BreakersState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<ApiJson<BreakerStatus>, ApiError> {
    let breaker = find(&state.breakers, &name)?;
    let command = parse_command(body)?;
    let (actor, reason) = (access.principal.name.as_str(), command.reason.as_deref());
    let before = breaker.state();
    let audit = NewAction {
        breaker: &name,
        action: command.action.as_str(),
        actor,
        reason,
        before_state: before,
        after_state: command.action.resulting_state(before),
    };
    let id = breaker_store::insert_action(&state.pool, &audit).await?;
    match command.action {
        BreakerAction::ForceOpen => breaker.set_mode(BreakerMode::ForceOpen, actor, reason),
        BreakerAction::ForceClosed => breaker.set_mode(BreakerMode::ForceClosed, actor, reason),
        BreakerAction::Disable => breaker.set_mode(BreakerMode::Disabled, actor, reason),
        BreakerAction::Auto => breaker.set_mode(BreakerMode::Auto, actor, reason),
        BreakerAction::Reset => breaker.reset(actor),
    }
    tracing::info!(breaker = %name, action = audit.action, actor, audit_id = id, "breaker action {} on {name}", audit.action);
    Ok(ApiJson(breaker.status()))
}

/// The operators' actions on a breaker, newest first.
#[utoipa::path(get, path = "/v1/breakers/{name}/actions", tag = "breakers",
    params(TransitionsQuery),
    responses((status = 200, body = Vec<ActionRecord>), BadRequest, Unauthorized, Forbidden, NotFound),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn breaker_actions(
    _access: Reader,
    State(state): State<BreakersState>,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<TransitionsQuery>,
) -> Result<ApiJson<Vec<ActionRecord>>, ApiError> {
    find(&state.breakers, &name)?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    Ok(ApiJson(
        breaker_store::list_actions(&state.pool, &name, limit).await?,
    ))
}

/// The command, or 400 naming each bad field (`action` when it is missing or unknown).
fn parse_command(body: Value) -> Result<BreakerCommand, ApiError> {
    let invalid = |field: &str, message: String| FieldError {
        index: None,
        field: field.into(),
        message,
    };
    let Value::Object(mut fields) = body else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    };
    let mut errors = Vec::new();
    let allowed: Vec<&str> = ACTIONS.iter().map(|(name, _)| *name).collect();
    let action = match fields.remove("action") {
        Some(Value::String(raw)) => ACTIONS.iter().find(|(name, _)| *name == raw).map(|a| a.1),
        _ => None,
    };
    if action.is_none() {
        errors.push(invalid(
            "action",
            format!("must be one of {}", allowed.join(", ")),
        ));
    }
    let reason = match fields.remove("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(reason)) => Some(reason),
        Some(_) => {
            errors.push(invalid("reason", "must be a string".into()));
            None
        }
    };
    errors.extend(
        fields
            .keys()
            .map(|field| invalid(field, "unknown field".into())),
    );
    match action {
        Some(action) if errors.is_empty() => Ok(BreakerCommand { action, reason }),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// A breaker's transitions from the history table, newest first.
#[utoipa::path(get, path = "/v1/breakers/{name}/transitions", tag = "breakers",
    params(TransitionsQuery),
    responses((status = 200, body = Vec<TransitionRecord>), BadRequest, Unauthorized, Forbidden, NotFound),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn breaker_transitions(
    _access: Reader,
    State(state): State<BreakersState>,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<TransitionsQuery>,
) -> Result<ApiJson<Vec<TransitionRecord>>, ApiError> {
    find(&state.breakers, &name)?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    Ok(ApiJson(
        breaker_store::list(&state.pool, &name, limit).await?,
    ))
}

/// Stream the breakers: a `state` event per breaker first, then a `transition` event per
/// change, and a `sample` event with every breaker's status each second.
#[utoipa::path(get, path = "/v1/breakers/stream", tag = "breakers",
    responses((status = 200, description = "state, then transition and sample events", content_type = "text/event-stream"),
        Unauthorized, Forbidden, TooManyRequests),
    security(("bearer" = []), ("api_key" = []), ()))]
pub async fn breaker_stream(
    _access: Reader,
    State(state): State<BreakersState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let (registry, shutdown) = (state.breakers.clone(), state.shutdown.clone());
    let stream = async_stream::stream! {
        // Subscribe before reading the state, so no transition falls in between.
        let mut transitions = history::merged_transitions(&registry);
        for breaker in registry.all() {
            yield Ok(json_event("state", &breaker.status()));
        }
        let mut samples = tokio::time::interval_at(tokio::time::Instant::now() + SAMPLE_INTERVAL, SAMPLE_INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = samples.tick() => yield Ok(sample(&registry)),
                next = transitions.next(), if !transitions.is_empty() => match next {
                    Some(Ok(transition)) => yield Ok(json_event::<Transition>("transition", &transition)),
                    // Fell behind: send the state again rather than skip (as flag streams do).
                    Some(Err(BroadcastStreamRecvError::Lagged(_))) => {
                        for breaker in registry.all() {
                            yield Ok(json_event("state", &breaker.status()));
                        }
                    }
                    None => break,
                },
            }
        }
    };
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn json_event<T: Serialize>(name: &str, data: &T) -> SseEvent {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "null".into());
    SseEvent::default().event(name).data(data)
}

fn sample(registry: &Registry) -> SseEvent {
    let statuses: Vec<BreakerStatus> = registry.all().iter().map(Breaker::status).collect();
    json_event("sample", &json!({ "breakers": statuses }))
}
