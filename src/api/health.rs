//! Liveness and readiness. Liveness never depends on the database; readiness reports it, and
//! on NATS fails (503) while the stream is unreachable, so a balancer stops sending publishes.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::state::HealthState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Live {
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready`, or `degraded` when the control store is down (events still flow).
    pub status: &'static str,
    pub migrations: &'static str,
    pub hub: &'static str,
    /// `up` or `down`.
    pub database: &'static str,
    /// Requests answered 503 since start because the control store did not answer within
    /// `SWITCHYARD_STORE_TIMEOUT_MS` (the deadline passed, or no connection in time; also
    /// `switchyard_store_deadline_refusals_total`).
    pub store_deadline_refusals: u64,
    pub epoch: String,
    pub offset: u64,
    /// `fresh`, or `stale` when the flag snapshot could not be reloaded lately (evaluation
    /// keeps serving the last snapshot).
    pub flags: &'static str,
    pub flag_revision: i64,
    /// Seconds since the flag snapshot was last loaded from the database.
    pub flags_staleness_s: Option<f64>,
    /// On NATS only: `up`, or `down` (then the status is `unavailable`, the response 503 and
    /// publishes are refused with 503 until NATS is back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats: Option<&'static str>,
}

/// The process is running.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, body = Live)))]
pub async fn live() -> Json<Live> {
    Json(Live { status: "ok" })
}

/// Ready to serve: migrations applied and the hub running. A control store that is down is
/// reported (`degraded`) but does not fail readiness: the event path does not need it.
#[utoipa::path(get, path = "/health/ready", tag = "health", responses(
    (status = 200, body = Ready),
    (status = 503, description = "On NATS: the stream is unreachable, publishes are refused", body = Ready),
))]
pub async fn ready(State(state): State<HealthState>) -> (StatusCode, Json<Ready>) {
    let probe = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.pool);
    let database_up = matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Ok(1))
    );
    let nats_up = state.hub.stream().map(|engine| engine.connected());
    let status = match (nats_up, database_up) {
        (Some(false), _) => "unavailable",
        (_, true) => "ready",
        (_, false) => "degraded",
    };
    let ready = Ready {
        status,
        migrations: "applied",
        hub: "running",
        database: if database_up { "up" } else { "down" },
        store_deadline_refusals: state.metrics.http().store_deadline_refusals(),
        epoch: state.hub.epoch().to_string(),
        offset: state.hub.head(),
        flags: if state.flags.is_stale() {
            "stale"
        } else {
            "fresh"
        },
        flag_revision: state.flags.snapshot().revision(),
        flags_staleness_s: Some(state.flags.staleness_seconds()).filter(|s| s.is_finite()),
        nats: nats_up.map(|up| if up { "up" } else { "down" }),
    };
    let code = if nats_up == Some(false) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(ready))
}
