//! The legacy monitoring server's surface, kept so its dashboards and producers work
//! unchanged: the dashboard WebSocket `GET /ws`, the ingest WebSocket `GET /events`, and
//! `GET /status`. Both sockets are pinged like `/v1/ws` (closed with 4002 when the client
//! answers nothing for two intervals) and every send is bounded by the send timeout.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::ws::{CloseFrame, Message};
use axum::extract::{FromRef, State};
use axum::response::Response;
use chrono::Utc;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;

use super::AppState;
use super::auth::{Publisher, Reader};
use super::origin::AllowedOrigin;
use super::problems::{Forbidden, NotAWebSocket, TooManyRequests, Unauthorized};
use super::stream_guard::{SendFailure, send_within};
use super::stream_limit::StreamSlot;
use super::subscribe::{CLOSE_UNRESPONSIVE, SubscriberState};
use super::websocket::{ServerSocket, Upgrade};
use crate::hub::legacy::{bounded_frames, rfc3339};
use crate::hub::{Cursor, Delivery, Hub, Published};
use crate::ingest::Ingest;
use crate::metrics::connections::CutReason;
use crate::metrics::panics::survive;
use crate::metrics::{Metrics, PanicSite, Protocol};

/// Events sent in `initial_stats.recent_events`.
const INITIAL_RECENT: usize = 50;
/// The longest look-back `get_historical_data` and `get_time_series` take, in hours (a year;
/// history is in memory and far shorter): larger values are clamped, so no client number
/// reaches date arithmetic unchecked.
const MAX_HOURS: f64 = 24.0 * 366.0;
/// The widest `get_time_series` bucket, in minutes (a day).
const MAX_INTERVAL_MINUTES: f64 = 24.0 * 60.0;

/// What the legacy ingest socket needs of the application.
#[derive(Clone)]
pub struct IngestSocketState {
    pub ingest: Ingest,
    pub metrics: Metrics,
    pub shutdown: CancellationToken,
    /// Sockets are tracked so shutdown waits for their goodbyes.
    pub connections: TaskTracker,
    pub ping_interval: Duration,
    pub send_timeout: Duration,
}

impl FromRef<AppState> for IngestSocketState {
    fn from_ref(state: &AppState) -> Self {
        Self {
            ingest: state.ingest.clone(),
            metrics: state.metrics.clone(),
            shutdown: state.shutdown.clone(),
            connections: state.connections.clone(),
            ping_interval: state.config.ws_ping_interval(),
            send_timeout: state.config.send_timeout(),
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
    _origin: AllowedOrigin,
    _access: Reader,
    slot: StreamSlot,
    State(state): State<SubscriberState>,
    upgrade: Upgrade,
) -> Response {
    let tracker = state.connections.clone();
    let panics = state.metrics.panics().clone();
    upgrade.on_upgrade(move |socket| {
        tracker.track_future(survive(
            panics,
            PanicSite::Socket,
            "a legacy /ws session",
            dashboard_task(socket, state, slot),
        ))
    })
}

/// A legacy `/ws` connection's task: the session, then its stream slot released. A plain
/// function, not an `async move` block around the `async fn`: such a block keeps its own copy
/// of the socket and the state beside the session's for the connection's whole life (as
/// `/v1/ws` did until session 5; docs/benchmarks.md, idle memory).
fn dashboard_task(
    socket: ServerSocket,
    state: SubscriberState,
    slot: StreamSlot,
) -> impl Future<Output = ()> {
    dashboard_session(socket, state).map(move |()| drop(slot))
}

/// How a legacy socket's loop ended: a close the server sends (code, reason), or the client
/// gone or stalled.
type Ended = Result<(u16, &'static str), SendFailure>;

const SHUTTING_DOWN: (u16, &str) = (1001, "server shutting down");
const UNRESPONSIVE: (u16, &str) = (CLOSE_UNRESPONSIVE, "no answer to pings");

/// Says goodbye as the loop decided, and counts a close on a stalled or silent client.
async fn finish<Tx>(
    sink: &mut Tx,
    ended: Ended,
    protocol: &'static str,
    limit: Duration,
    metrics: &Metrics,
) where
    Tx: futures_util::Sink<Message> + Unpin,
    Tx::Error: std::error::Error + 'static,
{
    match ended {
        Ok((code, reason)) => {
            if code == CLOSE_UNRESPONSIVE {
                metrics
                    .connections()
                    .stream_closed(protocol, CutReason::Unresponsive);
            }
            let bye = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = send_within(limit, sink.send(Message::Close(Some(bye)))).await;
        }
        Err(SendFailure::Stalled) => metrics
            .connections()
            .stream_closed(protocol, CutReason::SendTimeout),
        Err(SendFailure::Gone) => {}
    }
}

async fn dashboard_session(socket: ServerSocket, state: SubscriberState) {
    let _connected = state.metrics.subscriber(Protocol::LegacyWs);
    let (mut sink, mut stream) = socket.split();
    let limit = state.send_timeout;
    let ended = async {
        let hub = &state.hub;
        let mut cursor = Cursor::live(hub);
        send_within(limit, sink.send(text(initial_stats(hub)))).await?;
        let mut ping = tokio::time::interval(state.ping_interval);
        ping.tick().await;
        let mut last_heard = tokio::time::Instant::now();
        loop {
            let outgoing = tokio::select! {
                _ = state.shutdown.cancelled() => return Ok(SHUTTING_DOWN),
                _ = ping.tick() => {
                    if last_heard.elapsed() > state.ping_interval * 2 {
                        return Ok(UNRESPONSIVE);
                    }
                    Message::Ping(Default::default())
                }
                incoming = stream.next() => {
                    last_heard = tokio::time::Instant::now();
                    match incoming {
                        Some(Ok(Message::Text(raw))) => text(answer_command(hub, &raw)),
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Err(SendFailure::Gone),
                        Some(Ok(_)) => continue,
                    }
                }
                delivery = cursor.next() => match delivery {
                    Delivery::Event(published) => Message::Text(published.legacy_frame.clone()),
                    // The legacy protocol has no resume; a lagging legacy dashboard is told and
                    // carries on from the newest events.
                    Delivery::Lagged(lagged) => {
                        text(json!({"type": "lagged", "missed": lagged.missed, "timestamp": rfc3339(Utc::now())}))
                    }
                    Delivery::PastHistory { .. } | Delivery::Closed => return Err(SendFailure::Gone),
                },
            };
            send_within(limit, sink.send(outgoing)).await?;
        }
    }
    .await;
    finish(
        &mut sink,
        ended,
        Protocol::LegacyWs.as_str(),
        limit,
        &state.metrics,
    )
    .await;
}

fn text(value: Value) -> Message {
    Message::Text(value.to_string().into())
}

fn initial_stats(hub: &Hub) -> Value {
    json!({
        "type": "initial_stats",
        "stats": hub.legacy_stats().stats(None),
        "session_metrics": hub.legacy_stats().session_metrics(),
        "recent_events": bounded(hub, &hub.recent(INITIAL_RECENT)).0,
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
            let (events, truncated) = bounded(hub, &hub.recent(limit));
            json!({"type": "recent_events", "events": events, "truncated": truncated, "timestamp": rfc3339(now)})
        }
        Some("get_historical_data") => {
            let hours = number("hours", 1.0).clamp(0.0, MAX_HOURS);
            let (events, truncated) = bounded(hub, &within(hub, hours));
            json!({"type": "historical_data", "hours": hours, "events": events, "truncated": truncated, "timestamp": rfc3339(now)})
        }
        Some("get_time_series") => {
            let interval_minutes = number("interval_minutes", 5.0).clamp(1.0, MAX_INTERVAL_MINUTES);
            let hours = number("hours", 1.0).clamp(0.0, MAX_HOURS);
            json!({"type": "time_series", "interval_minutes": interval_minutes, "hours": hours,
                   "series": time_series(&within(hub, hours), interval_minutes), "timestamp": rfc3339(now)})
        }
        Some("export") => {
            // The newest events within the answer bounds; `total` says how many history held.
            let all = hub.recent(usize::MAX);
            let (events, truncated) = bounded(hub, &all);
            json!({"type": "export_complete", "count": events.len(), "total": all.len(),
                   "truncated": truncated, "events": events, "timestamp": rfc3339(now)})
        }
        Some(other) => error(format!("unknown command `{other}`")),
        None => error("expected {\"command\": ...}".into()),
    }
}

/// The legacy frames of `events` within the hub's answer bounds (`SWITCHYARD_LEGACY_ANSWER_*`).
fn bounded(hub: &Hub, events: &[Arc<Published>]) -> (Vec<Value>, bool) {
    let limits = hub.limits();
    bounded_frames(
        events,
        limits.legacy_answer_events,
        limits.legacy_answer_bytes,
    )
}

/// Events in history whose timestamp is within the last `hours` (history is in memory, so
/// this covers what the ring still holds). `hours` is clamped by the caller; a cutoff before
/// chrono's range still means "everything".
fn within(hub: &Hub, hours: f64) -> Vec<Arc<Published>> {
    let look_back = Duration::from_secs_f64((hours * 3600.0).clamp(0.0, MAX_HOURS * 3600.0));
    let cutoff = chrono::Duration::from_std(look_back)
        .ok()
        .and_then(|d| Utc::now().checked_sub_signed(d))
        .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
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
    _origin: AllowedOrigin,
    _access: Publisher,
    slot: StreamSlot,
    State(state): State<IngestSocketState>,
    upgrade: Upgrade,
) -> Response {
    let tracker = state.connections.clone();
    let panics = state.metrics.panics().clone();
    upgrade.on_upgrade(move |socket| {
        tracker.track_future(survive(
            panics,
            PanicSite::Socket,
            "a legacy /events session",
            ingest_task(socket, state, slot),
        ))
    })
}

/// A legacy `/events` connection's task, built like [`dashboard_task`].
fn ingest_task(
    socket: ServerSocket,
    state: IngestSocketState,
    slot: StreamSlot,
) -> impl Future<Output = ()> {
    ingest_session(socket, state).map(move |()| drop(slot))
}

/// The label of `/events` in the stream metrics.
const INGEST_PROTOCOL: &str = "ingest_ws";

async fn ingest_session(mut socket: ServerSocket, state: IngestSocketState) {
    let limit = state.send_timeout;
    let ended = async {
        let mut ping = tokio::time::interval(state.ping_interval);
        ping.tick().await;
        let mut last_heard = tokio::time::Instant::now();
        loop {
            let reply = tokio::select! {
                _ = state.shutdown.cancelled() => return Ok(SHUTTING_DOWN),
                _ = ping.tick() => {
                    if last_heard.elapsed() > state.ping_interval * 2 {
                        return Ok(UNRESPONSIVE);
                    }
                    send_within(limit, socket.send(Message::Ping(Default::default()))).await?;
                    continue;
                }
                incoming = socket.next() => {
                    last_heard = tokio::time::Instant::now();
                    match incoming {
                        Some(Ok(Message::Text(raw))) => ingest_frame(&state.ingest, &state.metrics, &raw).await,
                        Some(Ok(Message::Binary(_))) => {
                            json!({"status": "error", "message": "send events as text frames"})
                        }
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Err(SendFailure::Gone),
                        Some(Ok(_)) => continue,
                    }
                }
            };
            send_within(limit, socket.send(text(reply))).await?;
        }
    }
    .await;
    finish(&mut socket, ended, INGEST_PROTOCOL, limit, &state.metrics).await;
}

async fn ingest_frame(ingest: &Ingest, metrics: &Metrics, raw: &str) -> Value {
    let value: Value = match serde_json::from_str(raw) {
        Ok(value) => value,
        Err(e) => return json!({"status": "error", "message": format!("invalid JSON: {e}")}),
    };
    match ingest.parse_one(&value) {
        Ok(event) => {
            let event_type = event.event_type.clone();
            let label = metrics.ingest_label(&event);
            let receipt = match ingest.accept_one(event).await {
                Ok(receipt) => receipt,
                Err(e) => return json!({"status": "error", "message": e.to_string()}),
            };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::subscribe::returned_size;

    /// Every idle legacy connection keeps its task's future for its whole life. The form these
    /// tasks had before (an `async move` block awaiting the session) held the socket (368
    /// bytes) and the state a second time: 1,560 -> 1,112 bytes for `/ws` and 4,792 -> 4,280
    /// for `/events` in a test build with rustc 1.95.
    #[test]
    fn a_legacy_sessions_task_holds_its_socket_once() {
        let socket_and_state = std::mem::size_of::<ServerSocket>();
        let dashboard = returned_size(dashboard_task);
        let dashboard_before = returned_size(|socket, state, slot: StreamSlot| async move {
            dashboard_session(socket, state).await;
            drop(slot);
        });
        let ingest = returned_size(ingest_task);
        let ingest_before = returned_size(|socket, state, slot: StreamSlot| async move {
            ingest_session(socket, state).await;
            drop(slot);
        });
        assert!(
            dashboard + socket_and_state <= dashboard_before,
            "/ws task {dashboard} B, the async-move form {dashboard_before} B"
        );
        assert!(
            ingest + socket_and_state <= ingest_before,
            "/events task {ingest} B, the async-move form {ingest_before} B"
        );
    }
}
