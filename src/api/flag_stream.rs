//! `GET /v1/flags/stream`: the flag set as Server-Sent Events — a `snapshot` event first, then
//! a `flag_changed` event per change. `id:` is the revision; a client reconnecting with
//! `Last-Event-ID` equal to the current revision gets no snapshot again.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{FromRef, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::auth::Reader;
use super::problems::{Forbidden, TooManyRequests, Unauthorized};
use crate::flagstore::LiveFlags;
use crate::hub::SystemFrame;

/// What the flag stream needs of the application.
#[derive(Clone)]
pub struct FlagStreamState {
    pub flags: LiveFlags,
    pub shutdown: CancellationToken,
}

impl FromRef<AppState> for FlagStreamState {
    fn from_ref(state: &AppState) -> Self {
        Self {
            flags: state.flags.clone(),
            shutdown: state.shutdown.clone(),
        }
    }
}

/// Stream flag changes.
#[utoipa::path(get, path = "/v1/flags/stream", tag = "flags",
    params(("Last-Event-ID" = Option<String>, Header, description = "The last revision seen")),
    responses((status = 200, description = "snapshot, then flag_changed events", content_type = "text/event-stream"),
        Unauthorized, Forbidden, TooManyRequests),
    security(("bearer" = []), ("api_key" = []), ()))]
pub async fn flag_stream(
    _access: Reader,
    State(state): State<FlagStreamState>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let seen: Option<i64> = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let FlagStreamState {
        flags: live,
        shutdown,
    } = state;
    let stream = async_stream::stream! {
        let mut changes = live.subscribe();
        let snapshot = live.snapshot();
        if seen != Some(snapshot.revision()) {
            let flags: Vec<_> = live.records().iter().filter(|r| !r.flag.archived).cloned().collect();
            let data = json!({"revision": snapshot.revision(), "stale": live.is_stale(), "flags": flags});
            yield Ok(SseEvent::default().id(snapshot.revision().to_string()).event("snapshot").data(data.to_string()));
        }
        loop {
            let change = tokio::select! {
                _ = shutdown.cancelled() => break,
                change = changes.recv() => change,
            };
            match change {
                Ok(change) => {
                    let id = change.revision.to_string();
                    let data = SystemFrame::FlagChanged { key: change.key, version: change.version, revision: change.revision, archived: Some(change.archived) };
                    yield Ok(SseEvent::default().id(id).event("flag_changed").data(data.encode().as_str()));
                }
                // Missed changes: send the whole snapshot again rather than skip (Unleash Edge's habit).
                Err(RecvError::Lagged(_)) => {
                    let snapshot = live.snapshot();
                    let flags: Vec<_> = live.records().iter().filter(|r| !r.flag.archived).cloned().collect();
                    let data = json!({"revision": snapshot.revision(), "stale": live.is_stale(), "flags": flags});
                    yield Ok(SseEvent::default().id(snapshot.revision().to_string()).event("snapshot").data(data.to_string()));
                }
                Err(RecvError::Closed) => break,
            }
        }
    };
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
