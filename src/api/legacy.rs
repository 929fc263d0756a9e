//! The legacy monitoring server's surface, kept so its dashboards and producers work
//! unchanged: the dashboard WebSocket `GET /ws`, the ingest WebSocket `GET /events`, and
//! `GET /status`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRef, State};
use axum::response::Response;
use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;

use super::AppState;
use super::auth::{Publisher, Reader};
use super::problems::{Forbidden, NotAWebSocket, TooManyRequests, Unauthorized};
use super::subscribe::{SubscriberState, configure};
use crate::event::parse_event;
use crate::hub::legacy::{frame_value, rfc3339};
use crate::hub::{Cursor, Delivery, Hub, Published};
use crate::ingest::Ingest;
use crate::metrics::{Metrics, Protocol};

/// Events sent in `initial_stats.recent_events`.
const INITIAL_RECENT: usize = 50;

/// What the legacy ingest socket needs of the application.
#[derive(Clone)]
pub struct IngestSocketState {
    pub ingest: Ingest,
    pub metrics: Metrics,
    pub shutdown: CancellationToken,
    /// Sockets are tracked so shutdown waits for their goodbyes.
    pub connections: TaskTracker,
}

impl FromRef<AppState> for IngestSocketState {
    fn from_ref(state: &AppState) -> Self {
        Self {
            ingest: state.ingest.clone(),
            metrics: state.metrics.clone(),
            shutdown: state.shutdown.clone(),
            connections: state.connections.clone(),
        }
    }
}

/// `Status` is also a rollout plan's status: this one is named `LegacyStatus` in the document.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = LegacyStatus)]
pub struct Status {
    pub status: &'static str,
    pub service: &'static str,
    pub clients_connected: usize,
    pub timestamp: String,
}

/// The legacy status reply.
#[utoipa::path(get, path = "/status", tag = "legacy", responses((status = 200, body = Status)))]
pub async fn status(State(hub): State<Hub>) -> Json<Status> {
    Json(Status {
        status: "ok",
        service: "monitoring",
        clients_connected: hub.receiver_count(),
        timestamp: rfc3339(Utc::now()),
    })
}

/// The legacy dashboard WebSocket: `initial_stats` on connect, then every event in the legacy
/// frame shapes; answers `{"command": ...}` frames.
#[utoipa::path(
    get, path = "/ws", tag = "legacy",
    responses((status = 101, description = "Switching to the WebSocket protocol"),
        Unauthorized, Forbidden, TooManyRequests, NotAWebSocket),
    security(("bearer" = []), ("api_key" = []), ())
)]
pub async fn dashboard_ws(
    _access: Reader,
    State(state): State<SubscriberState>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let tracker = state.connections.clone();
    configure(upgrade)
        .on_upgrade(move |socket| tracker.track_future(dashboard_session(socket, state)))
}

async fn dashboard_session(socket: WebSocket, state: SubscriberState) {
    let _connected = state.metrics.subscriber(Protocol::LegacyWs);
    let hub = state.hub.clone();
    let (mut sink, mut stream) = socket.split();
    let mut cursor = Cursor::live(&hub);
    if sink.send(text(initial_stats(&hub))).await.is_err() {
        return;
    }
    let mut ping = tokio::time::interval(state.ping_interval);
    ping.tick().await;
    loop {
        let outgoing = tokio::select! {
            _ = state.shutdown.cancelled() => {
                let bye = CloseFrame { code: 1001, reason: "server shutting down".into() };
                let _ = sink.send(Message::Close(Some(bye))).await;
                return;
            }
            _ = ping.tick() => Message::Ping(Default::default()),
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(raw))) => text(answer_command(&hub, &raw)),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => continue,
            },
            delivery = cursor.next() => match delivery {
                Delivery::Event(published) => Message::Text(published.legacy_frame.clone()),
                // The legacy protocol has no resume; a lagging legacy dashboard is told and
                // carries on from the newest events.
                Delivery::Lagged(lagged) => {
                    text(json!({"type": "lagged", "missed": lagged.missed, "timestamp": rfc3339(Utc::now())}))
                }
                Delivery::PastHistory { .. } | Delivery::Closed => return,
            },
        };
        if sink.send(outgoing).await.is_err() {
            return;
        }
    }
}

fn text(value: Value) -> Message {
    Message::Text(value.to_string().into())
}

fn legacy_events(events: &[Arc<Published>]) -> Vec<Value> {
    events.iter().map(|p| frame_value(&p.event)).collect()
}

fn initial_stats(hub: &Hub) -> Value {
    json!({
        "type": "initial_stats",
        "stats": hub.legacy_stats().stats(None),
        "session_metrics": hub.legacy_stats().session_metrics(),
        "recent_events": legacy_events(&hub.recent(INITIAL_RECENT)),
        "timestamp": rfc3339(Utc::now()),
    })
}

/// Answers one legacy command frame. Invalid JSON and unknown commands get an error frame
/// (the legacy server ignored them silently).
pub fn answer_command(hub: &Hub, raw: &str) -> Value {
    let now = Utc::now();
    let error =
        |message: String| json!({"type": "error", "message": message, "timestamp": rfc3339(now)});
    let Ok(request) = serde_json::from_str::<Value>(raw) else {
        return error("invalid JSON".into());
    };
    let number =
        |key: &str, default: f64| request.get(key).and_then(Value::as_f64).unwrap_or(default);
    match request.get("command").and_then(Value::as_str) {
        Some("get_stats") => {
            let connection_type = request.get("connection_type").and_then(Value::as_str);
            json!({"type": "stats", "connection_type": connection_type, "stats": hub.legacy_stats().stats(connection_type), "timestamp": rfc3339(now)})
        }
        Some("get_recent_events") => {
            let limit = number("limit", 100.0).clamp(0.0, 10_000.0) as usize;
            json!({"type": "recent_events", "events": legacy_events(&hub.recent(limit)), "timestamp": rfc3339(now)})
        }
        Some("get_historical_data") => {
            let hours = number("hours", 1.0).max(0.0);
            let events = within(hub, hours);
            json!({"type": "historical_data", "hours": hours, "events": legacy_events(&events), "timestamp": rfc3339(now)})
        }
        Some("get_time_series") => {
            let interval_minutes = number("interval_minutes", 5.0).max(1.0);
            let hours = number("hours", 1.0).max(0.0);
            json!({"type": "time_series", "interval_minutes": interval_minutes, "hours": hours,
                   "series": time_series(&within(hub, hours), interval_minutes), "timestamp": rfc3339(now)})
        }
        Some("export") => {
            let events = legacy_events(&hub.recent(usize::MAX));
            json!({"type": "export_complete", "count": events.len(), "events": events, "timestamp": rfc3339(now)})
        }
        Some(other) => error(format!("unknown command `{other}`")),
        None => error("expected {\"command\": ...}".into()),
    }
}

/// Events in history whose timestamp is within the last `hours` (history is in memory, so
/// this covers what the ring still holds).
fn within(hub: &Hub, hours: f64) -> Vec<Arc<Published>> {
    let cutoff = Utc::now() - Duration::from_secs_f64(hours * 3600.0);
    hub.recent(usize::MAX)
        .into_iter()
        .filter(|p| p.event.timestamp >= cutoff)
        .collect()
}

fn time_series(events: &[Arc<Published>], interval_minutes: f64) -> Vec<Value> {
    let width = (interval_minutes * 60.0) as i64;
    let mut buckets: std::collections::BTreeMap<i64, (u64, std::collections::BTreeMap<&str, u64>)> =
        Default::default();
    for p in events {
        let start = p.event.timestamp.timestamp().div_euclid(width) * width;
        let bucket = buckets.entry(start).or_default();
        bucket.0 += 1;
        *bucket.1.entry(p.event.category.as_str()).or_default() += 1;
    }
    buckets
        .into_iter()
        .map(|(start, (count, by_category))| {
            let at = chrono::DateTime::from_timestamp(start, 0).unwrap_or_default();
            json!({"timestamp": rfc3339(at), "count": count, "by_category": by_category})
        })
        .collect()
}

/// The legacy ingest WebSocket: one event a text frame, each answered.
#[utoipa::path(
    get, path = "/events", tag = "legacy",
    responses((status = 101, description = "Switching to the WebSocket protocol"),
        Unauthorized, Forbidden, TooManyRequests, NotAWebSocket),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn ingest_ws(
    _access: Publisher,
    State(state): State<IngestSocketState>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let IngestSocketState {
        ingest,
        metrics,
        shutdown,
        connections: tracker,
    } = state;
    configure(upgrade).on_upgrade(move |socket| {
        tracker.track_future(ingest_session(socket, ingest, metrics, shutdown))
    })
}

async fn ingest_session(
    mut socket: WebSocket,
    ingest: Ingest,
    metrics: Metrics,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        let incoming = tokio::select! {
            _ = shutdown.cancelled() => {
                let bye = CloseFrame { code: 1001, reason: "server shutting down".into() };
                let _ = socket.send(Message::Close(Some(bye))).await;
                return;
            }
            incoming = socket.recv() => incoming,
        };
        let reply = match incoming {
            Some(Ok(Message::Text(raw))) => ingest_frame(&ingest, &metrics, &raw).await,
            Some(Ok(Message::Binary(_))) => {
                json!({"status": "error", "message": "send events as text frames"})
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
            Some(Ok(_)) => continue,
        };
        if socket.send(text(reply)).await.is_err() {
            return;
        }
    }
}

async fn ingest_frame(ingest: &Ingest, metrics: &Metrics, raw: &str) -> Value {
    let value: Value = match serde_json::from_str(raw) {
        Ok(value) => value,
        Err(e) => return json!({"status": "error", "message": format!("invalid JSON: {e}")}),
    };
    match parse_event(&value, None, Utc::now()) {
        Ok(event) => {
            let event_type = event.event_type.clone();
            let label = metrics.ingest_label(&event);
            let receipt = ingest.accept_one(event).await;
            metrics.count_ingested(vec![label], std::slice::from_ref(&receipt));
            json!({"status": "received", "event_type": event_type, "id": receipt.id, "offset": receipt.offset})
        }
        Err(errors) => {
            let message = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            json!({"status": "error", "message": message, "errors": errors})
        }
    }
}
