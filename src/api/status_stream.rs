//! `GET /v1/status/stream`: connection counts and the Realtime path's queues as Server-Sent
//! Events, a `status` event at once and then every second, so a live view (the dashboard page)
//! is pushed them instead of polling `/status` and `/v1/realtime`.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{FromRef, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Reader;
use super::problems::{Forbidden, TooManyRequests, Unauthorized};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::metrics::connections::ConnectionTotals;
use crate::realtime::{RealtimePath, RealtimeStatus};
use crate::validator::{ValidationSummary, Validator};

/// How often the stream sends a status.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// Subscribers of the hub, every protocol (`/v1/ws`, `/v1/stream`, `/ws`) together.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionCounts {
    /// Attached right now (this stream's reader is not one: it does not subscribe to events).
    pub subscribers: usize,
    /// Subscriptions opened since the server started.
    pub subscribers_total: u64,
    /// Times a subscriber fell behind and was caught up from history.
    pub lagged_total: u64,
    /// Subscribers closed because they fell behind past the history.
    pub dropped_total: u64,
    /// Client connections and event streams: open, refused and cut by the server's limits.
    pub clients: ConnectionTotals,
}

/// One `status` event.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusSample {
    /// The environment flags are evaluated in (the one the flag controls act on by default).
    pub environment: String,
    /// The hub's epoch and its last offset.
    pub epoch: String,
    pub head: u64,
    /// Events accepted since the server started.
    pub published_total: u64,
    pub connections: ConnectionCounts,
    pub realtime: RealtimeStatus,
    /// The consistency validator's sliding window (as `GET /v1/validation/summary`).
    pub validation: ValidationSummary,
}

/// What the status stream needs of the application.
#[derive(Clone)]
pub struct StatusStreamState {
    pub environment: String,
    pub hub: Hub,
    pub realtime: RealtimePath,
    pub validator: Validator,
    pub shutdown: CancellationToken,
    pub metrics: Metrics,
}

impl FromRef<AppState> for StatusStreamState {
    fn from_ref(state: &AppState) -> Self {
        Self {
            environment: state.config.environment.clone(),
            hub: state.hub.clone(),
            realtime: state.realtime.clone(),
            validator: state.validator.clone(),
            shutdown: state.shutdown.clone(),
            metrics: state.metrics.clone(),
        }
    }
}

fn sample(state: &StatusStreamState) -> StatusSample {
    let counters = state.hub.counters();
    StatusSample {
        environment: state.environment.clone(),
        epoch: state.hub.epoch().to_string(),
        head: state.hub.head(),
        published_total: counters.published.load(Ordering::Relaxed),
        connections: ConnectionCounts {
            subscribers: state.hub.receiver_count(),
            subscribers_total: counters.subscribers_total.load(Ordering::Relaxed),
            lagged_total: counters.lagged.load(Ordering::Relaxed),
            dropped_total: counters.dropped_subscribers.load(Ordering::Relaxed),
            clients: state.metrics.connections().totals(),
        },
        realtime: state.realtime.status(),
        validation: state.validator.summary().as_ref().clone(),
    }
}

/// Stream connection counts and Realtime queue depths: a `status` event now and each second.
#[utoipa::path(get, path = "/v1/status/stream", tag = "health",
    responses((status = 200, description = "`status` events, each one's data a StatusSample", content_type = "text/event-stream", body = StatusSample),
        Unauthorized, Forbidden, TooManyRequests),
    security(("bearer" = []), ("api_key" = []), ()))]
pub async fn status_stream(
    _access: Reader,
    State(state): State<StatusStreamState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let shutdown = state.shutdown.clone();
    let stream = async_stream::stream! {
        let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticks.tick() => {
                    let data = serde_json::to_string(&sample(&state)).unwrap_or_else(|_| "null".into());
                    yield Ok(SseEvent::default().event("status").data(data));
                }
            }
        }
    };
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
