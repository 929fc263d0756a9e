//! Flag evaluation for any client: `POST /v1/evaluate` (switchyard's shape) here, OFREP in
//! [`super::ofrep`]. Both read the in-memory snapshot: no database access.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::Reader;
use super::error::ApiJson;
use super::problems::{
    BadRequest, Forbidden, PayloadTooLarge, Unauthorized, Unprocessable, UnsupportedMediaType,
};
use super::state::EvaluationState;
use crate::breaker::Breaker;
use crate::flags::keys::DASHBOARD_TRANSPORT;
use crate::flags::{Evaluation, EvaluationContext};

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

/// Counts each evaluation served and applies the breaker's override to
/// `dashboard.transport`; the breaker is looked up once per request, and only for that flag.
pub(super) struct Governor<'a> {
    state: &'a EvaluationState,
    breaker: std::cell::OnceCell<Option<Breaker>>,
}

impl<'a> Governor<'a> {
    pub(super) fn new(state: &'a EvaluationState) -> Self {
        Self {
            state,
            breaker: std::cell::OnceCell::new(),
        }
    }

    pub(super) fn govern(&self, evaluation: Evaluation) -> (Evaluation, Option<Value>) {
        self.state.metrics.count_evaluation(&evaluation);
        if evaluation.key != DASHBOARD_TRANSPORT {
            return (evaluation, None);
        }
        let breaker = self
            .breaker
            .get_or_init(|| self.state.breakers.get(crate::breaker::REALTIME));
        match crate::governance::transport_override(&evaluation, breaker.as_ref()) {
            Some((overridden, metadata)) => (overridden, Some(metadata)),
            None => (evaluation, None),
        }
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
    let governor = Governor::new(&state);
    let results = results
        .into_iter()
        .map(|evaluation| {
            let (evaluation, overridden) = governor.govern(evaluation);
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
