//! `GET /v1/stream`: events as Server-Sent Events, with the `/v1/ws` filters as query
//! parameters. `id:` is the offset; a reconnecting EventSource sends it back as
//! `Last-Event-ID` and gets exactly what it missed, when history still holds it. A client
//! that stops reading is cut by the socket's send timeout (`crate::server`), and counted here
//! as `send_timeout` when its stream is dropped.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::{FromRef, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;

use super::AppState;
use super::auth::Reader;
use super::error::ApiError;
use super::problems::{BadRequest, Forbidden, TooManyRequests, Unauthorized};
use super::stream_guard::oversized_filter;
use super::stream_limit::StreamSlot;
use crate::hub::frames::encode;
use crate::hub::{Cursor, Delivery, Filter, Hub, Position, Published};
use crate::metrics::connections::CutReason;
use crate::metrics::{Metrics, Protocol};
use crate::server::ClientConnection;

/// What the event stream needs of the application.
#[derive(Clone)]
pub struct StreamState {
    pub hub: Hub,
    pub shutdown: CancellationToken,
    pub metrics: Metrics,
    /// Values per filter list (`SWITCHYARD_MAX_FILTER_VALUES`).
    pub max_filter_values: usize,
}

impl FromRef<AppState> for StreamState {
    fn from_ref(state: &AppState) -> Self {
        Self {
            hub: state.hub.clone(),
            shutdown: state.shutdown.clone(),
            metrics: state.metrics.clone(),
            max_filter_values: state.config.max_filter_values as usize,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Comma-separated event types.
    event_types: Option<String>,
    /// Comma-separated categories.
    categories: Option<String>,
    /// Comma-separated sources.
    sources: Option<String>,
    /// Resume after this offset (same as `Last-Event-ID`).
    since_offset: Option<u64>,
    /// The epoch `since_offset` belongs to (default: the current one).
    since_epoch: Option<String>,
    /// An API key, for browsers that cannot set headers.
    #[allow(dead_code, reason = "read by the auth extractor from the raw query")]
    token: Option<String>,
}

/// Subscribe to events as Server-Sent Events.
#[utoipa::path(
    get, path = "/v1/stream", tag = "subscribe",
    params(StreamQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this offset")),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream"),
        BadRequest, Unauthorized, Forbidden, TooManyRequests,
    ),
    security(("bearer" = []), ("api_key" = []), ())
)]
pub async fn v1_stream(
    _access: Reader,
    slot: StreamSlot,
    connection: Option<Extension<ClientConnection>>,
    State(state): State<StreamState>,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let Query(query) = query?;
    let filter = Filter::from_lists(
        query.event_types.as_deref(),
        query.categories.as_deref(),
        query.sources.as_deref(),
    );
    if let Some(error) = oversized_filter(&filter, state.max_filter_values) {
        return Err(ApiError::Validation(vec![error]));
    }
    let unknown = filter.unknown_categories();
    if !unknown.is_empty() {
        return Err(ApiError::Validation(vec![crate::event::FieldError {
            index: None,
            field: "categories".into(),
            message: format!("unknown categories: {}", unknown.join(", ")),
        }]));
    }
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let since_offset = match last_event_id {
        Some(raw) => Some(raw.trim().parse::<u64>().map_err(|_| {
            ApiError::BadRequest(format!("Last-Event-ID `{raw}` is not an offset"))
        })?),
        None => query.since_offset,
    };
    let since = since_offset.map(|offset| Position {
        epoch: query
            .since_epoch
            .unwrap_or_else(|| state.hub.epoch().to_string()),
        offset,
    });
    let guard = StreamGuard {
        _slot: slot,
        connection: connection.map(|Extension(c)| c),
        metrics: state.metrics.clone(),
    };
    let stream = events(state, filter, since, guard);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The SSE rendering of a subscription: `subscribed`, then `event`, `system` and `lagged`
/// events, and a last `error` event when the client fell behind past history.
fn events(
    state: StreamState,
    filter: Filter,
    since: Option<Position>,
    guard: StreamGuard,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let StreamState {
        hub,
        shutdown,
        metrics,
        ..
    } = state;
    async_stream::stream! {
        let _guard = guard;
        let _connected = metrics.subscriber(Protocol::Sse);
        let (mut cursor, start) = Cursor::resume_anywhere(&hub, filter, since.as_ref()).await;
        yield Ok(SseEvent::default().event("subscribed").data(encode(&start.subscribed)));
        let mut system = hub.subscribe_system();
        for published in &start.replay {
            yield Ok(event_of(published));
        }
        loop {
            let delivery = tokio::select! {
                _ = shutdown.cancelled() => break,
                frame = system.recv() => {
                    if let Ok(frame) = frame {
                        yield Ok(SseEvent::default().event("system").data(frame.as_str()));
                    }
                    continue;
                }
                delivery = cursor.next() => delivery,
            };
            match delivery {
                Delivery::Event(published) => yield Ok(event_of(&published)),
                Delivery::Lagged(lagged) => {
                    yield Ok(SseEvent::default().event("lagged").data(encode(&lagged)));
                }
                Delivery::PastHistory { offset } => {
                    let gone = json!({"code": "lagged_past_history", "message": "reconnect with Last-Event-ID", "offset": offset});
                    yield Ok(SseEvent::default().event("error").data(gone.to_string()));
                    break;
                }
                Delivery::Closed => break,
            }
        }
    }
}

fn event_of(published: &Published) -> SseEvent {
    SseEvent::default()
        .id(published.offset.to_string())
        .event("event")
        .data(published.frame.as_str())
}

/// Held by a stream for its life: its slot under the per-key cap, and, when it is dropped
/// because a write to its client timed out, the count of that.
struct StreamGuard {
    _slot: StreamSlot,
    connection: Option<ClientConnection>,
    metrics: Metrics,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if self
            .connection
            .as_ref()
            .is_some_and(ClientConnection::stalled)
        {
            self.metrics
                .connections()
                .stream_closed(Protocol::Sse.as_str(), CutReason::SendTimeout);
        }
    }
}
