//! What the Realtime path is doing: `GET /v1/realtime`, and the legacy adapter metrics
//! (`GET /metrics/adapter`, `GET /metrics/validation`, `POST /metrics/flush`) computed from it
//! and the hub.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use serde_json::{Value, json};

use super::auth::{Admin, Reader};
use super::error::ApiJson;
use super::problems::{Forbidden, Unauthorized};
use super::state::RealtimeState;
use crate::hub::legacy::rfc3339;
use crate::realtime::RealtimeStatus;

/// The Realtime path: queue, backlog, batching, writes.
#[utoipa::path(get, path = "/v1/realtime", tag = "realtime",
    responses((status = 200, body = RealtimeStatus), Unauthorized, Forbidden),
    security(("bearer" = []), ("api_key" = []), ()))]
pub async fn realtime_status(
    _access: Reader,
    State(state): State<RealtimeState>,
) -> ApiJson<RealtimeStatus> {
    ApiJson(state.realtime.status())
}

fn adapter_metrics(state: &RealtimeState) -> Value {
    let realtime = state.realtime.status();
    let hub = state.hub.counters();
    let websocket = json!({
        "total_connections": hub.subscribers_total.load(Ordering::Relaxed),
        "active_connections": state.hub.receiver_count(),
        "total_events_broadcast": hub.published.load(Ordering::Relaxed),
        "failed_broadcasts": hub.dropped_subscribers.load(Ordering::Relaxed),
    });
    let realtime_side = json!({
        "total_events_broadcast": realtime.written + realtime.replayed + realtime.dead_letter_replayed,
        "failed_broadcasts": realtime.failed_batches + realtime.rejected_batches,
        "supabase_errors": realtime.failed_batches,
        "pending": realtime.queue_depth + realtime.backlog_depth,
        "dropped": realtime.dropped,
    });
    let strategy = state.router.current();
    json!({"adapter_type": strategy.strategy, "metrics": {
        "total_connections": websocket["total_connections"],
        "active_connections": websocket["active_connections"],
        "total_events_broadcast": websocket["total_events_broadcast"],
        "failed_broadcasts": websocket["failed_broadcasts"],
        "supabase_errors": realtime_side["supabase_errors"],
        "websocket": websocket,
        "realtime": realtime_side,
    }})
}

/// The legacy adapter metrics, per side.
#[utoipa::path(get, path = "/metrics/adapter", tag = "legacy", responses((status = 200, description = "{status, adapter_type, metrics, timestamp}")))]
pub async fn metrics_adapter(State(state): State<RealtimeState>) -> Json<Value> {
    let mut body = adapter_metrics(&state);
    body["status"] = json!("ok");
    body["timestamp"] = json!(rfc3339(Utc::now()));
    Json(body)
}

/// The legacy broadcaster metrics, with the validator's consistency figures.
#[utoipa::path(get, path = "/metrics/validation", tag = "legacy", responses((status = 200, description = "{status, metrics, timestamp}")))]
pub async fn metrics_validation(State(state): State<RealtimeState>) -> Json<Value> {
    let realtime = state.realtime.status();
    let published = state.hub.counters().published.load(Ordering::Relaxed);
    let adapter = realtime.written + realtime.replayed + realtime.dead_letter_replayed;
    let validation = state.validator.summary();
    let overall = &validation.overall;
    Json(json!({"status": "ok", "metrics": {
        "total_broadcasts": published,
        "adapter_broadcasts": adapter,
        "direct_broadcasts": published,
        "failed_broadcasts": realtime.failed_batches + realtime.rejected_batches,
        // The validator's figures over its sliding window (GET /v1/validation/summary).
        "validation_enabled": validation.enabled,
        "validated_events": overall.expected,
        "matched_events": overall.matched,
        "consistency_percent": overall.consistency_percent,
        "discrepancies": overall.discrepancies,
        "pending_validation": validation.pending,
    }, "timestamp": rfc3339(Utc::now())}))
}

/// The legacy flush: metrics are live counters here, so there is nothing to persist; it
/// answers with the figures as of now.
#[utoipa::path(post, path = "/metrics/flush", tag = "legacy", responses((status = 200, description = "{status, flushed, metrics, timestamp}"), Unauthorized, Forbidden),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn metrics_flush(_access: Admin, State(state): State<RealtimeState>) -> Json<Value> {
    Json(
        json!({"status": "ok", "flushed": true, "metrics": adapter_metrics(&state)["metrics"], "timestamp": rfc3339(Utc::now())}),
    )
}
