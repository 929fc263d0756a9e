//! `GET /v1/ws`: the switchyard subscriber protocol.
//!
//! Client frames: `{"op":"subscribe","filter":{...},"since":{"epoch","offset"}}` (every part
//! optional, sent again to change the filter) and `{"op":"ping"}`. Server frames: `subscribed`,
//! `event`, `lagged`, `pong`, `error`. Close codes: 1001 on shutdown, 4001 when the client fell
//! behind past the history ring (reconnect with `since`), 4002 when it stopped answering pings.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::auth::Reader;
use crate::hub::{CLOSE_LAGGED_PAST_HISTORY, Filter, Hub, Position, Published};
use crate::metrics::Protocol;

/// Close code for a client that stopped answering pings.
pub const CLOSE_UNRESPONSIVE: u16 = 4002;
/// Events sent in one write before flushing, so a busy stream costs few syscalls.
const MAX_BATCH_FRAMES: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum ClientFrame {
    Subscribe {
        #[serde(default)]
        filter: Filter,
        #[serde(default)]
        since: Option<Position>,
    },
    Ping,
}

/// Subscribe to events over WebSocket.
#[utoipa::path(
    get, path = "/v1/ws", tag = "subscribe",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 401, description = "No valid key", body = super::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []), ())
)]
pub async fn v1_ws(
    _access: Reader,
    State(state): State<AppState>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let tracker = state.connections.clone();
    let session = Session {
        hub: state.hub.clone(),
        shutdown: state.shutdown.clone(),
        ping_interval: state.config.ws_ping_interval(),
    };
    let metrics = state.metrics.clone();
    configure(upgrade).on_upgrade(move |socket: WebSocket| {
        let connected = metrics.subscriber(Protocol::Ws);
        tracker.track_future(async move {
            session.run(socket).await;
            drop(connected);
        })
    })
}

/// Bytes read from a client per read. Client frames are small (subscribe, ping, legacy
/// commands), and tungstenite zeroes this much of its buffer before every read attempt, which
/// happens each time a subscriber wakes to send events (the socket is polled for input too).
/// A small buffer keeps that hot path and idle connections cheap; a larger client frame still
/// arrives whole, in more reads.
const READ_BUFFER_BYTES: usize = 512;

/// Socket limits shared by every WebSocket route: small buffers keep idle connections cheap.
pub fn configure(upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(1024 * 1024)
        .max_frame_size(1024 * 1024)
}

/// One subscriber connection.
pub struct Session {
    pub hub: Hub,
    pub shutdown: CancellationToken,
    pub ping_interval: Duration,
}

struct Active {
    filter: Filter,
    receiver: tokio::sync::broadcast::Receiver<Arc<Published>>,
    last: u64,
}

/// Why a session ended, when the server ends it.
enum Ending {
    Close(u16, &'static str),
    Gone,
}

impl Session {
    pub async fn run(self, mut socket: WebSocket) {
        let ending = self.serve(&mut socket).await;
        if let Ending::Close(code, reason) = ending {
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            };
            let _ = socket.send(Message::Close(Some(frame))).await;
        }
    }

    /// The session loop. It wakes once per event burst per subscriber, so it is the hot path
    /// of fan-out: the socket is not split (a split pair takes a lock on every poll) and the
    /// shutdown future is made once rather than re-registered on every wake-up.
    async fn serve<S>(&self, socket: &mut S) -> Ending
    where
        S: Sink<Message> + Stream<Item = Result<Message, axum::Error>> + Unpin,
    {
        let mut active: Option<Active> = None;
        let mut system = self.hub.subscribe_system();
        let mut ping = tokio::time::interval(self.ping_interval);
        ping.tick().await;
        let mut last_heard = Instant::now();
        let shutdown = self.shutdown.cancelled();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return Ending::Close(1001, "server shutting down"),
                incoming = socket.next() => {
                    let Some(Ok(message)) = incoming else { return Ending::Gone };
                    last_heard = Instant::now();
                    match message {
                        Message::Text(text) => {
                            if self.handle_frame(&text, &mut active, socket).await.is_err() {
                                return Ending::Gone;
                            }
                        }
                        Message::Binary(_) => {
                            let reply = error_frame("unsupported", "binary frames are not part of the protocol");
                            if socket.send(reply).await.is_err() { return Ending::Gone; }
                        }
                        Message::Close(_) => return Ending::Gone,
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
                frame = system.recv() => match frame {
                    Ok(frame) => {
                        if socket.send(Message::Text(frame)).await.is_err() { return Ending::Gone; }
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return Ending::Close(1001, "server shutting down"),
                },
                received = next_event(&mut active) => {
                    let Some(active) = active.as_mut() else { continue };
                    match self.deliver(received, active, socket).await {
                        Ok(None) => {}
                        Ok(Some(ending)) => return ending,
                        Err(()) => return Ending::Gone,
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > self.ping_interval * 2 {
                        return Ending::Close(CLOSE_UNRESPONSIVE, "no answer to pings");
                    }
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        return Ending::Gone;
                    }
                }
            }
        }
    }

    async fn handle_frame<Tx: Sink<Message> + Unpin>(
        &self,
        text: &str,
        active: &mut Option<Active>,
        sink: &mut Tx,
    ) -> Result<(), ()> {
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(e) => {
                return send(
                    sink,
                    error_frame("bad_request", &format!("unreadable frame: {e}")),
                )
                .await;
            }
        };
        match frame {
            ClientFrame::Ping => send(sink, Message::Text(r#"{"op":"pong"}"#.into())).await,
            ClientFrame::Subscribe { filter, since } => {
                let unknown = filter.unknown_categories();
                if !unknown.is_empty() {
                    let message = format!("unknown categories: {}", unknown.join(", "));
                    return send(sink, error_frame("bad_filter", &message)).await;
                }
                let subscription = self.hub.subscribe(since.as_ref());
                let subscribed = json!({
                    "op": "subscribed",
                    "epoch": self.hub.epoch(),
                    "offset": subscription.head,
                    "recovered": subscription.recovered,
                });
                sink.feed(Message::Text(subscribed.to_string().into()))
                    .await
                    .map_err(drop)?;
                for published in subscription.replay.iter().filter(|p| filter.matches(p)) {
                    sink.feed(Message::Text(published.frame.clone()))
                        .await
                        .map_err(drop)?;
                }
                sink.flush().await.map_err(drop)?;
                *active = Some(Active {
                    filter,
                    receiver: subscription.receiver,
                    last: subscription.head,
                });
                Ok(())
            }
        }
    }

    /// Sends what arrived (and whatever else is already queued, in one flush). On lag, tells
    /// the client and catches up from history, or ends the session when history cannot.
    async fn deliver<Tx: Sink<Message> + Unpin>(
        &self,
        received: Result<Arc<Published>, RecvError>,
        active: &mut Active,
        sink: &mut Tx,
    ) -> Result<Option<Ending>, ()> {
        let mut next = received;
        for _ in 0..MAX_BATCH_FRAMES {
            match next {
                Ok(published) => {
                    if published.offset > active.last {
                        active.last = published.offset;
                        if active.filter.matches(&published) {
                            sink.feed(Message::Text(published.frame.clone()))
                                .await
                                .map_err(drop)?;
                        }
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    self.hub
                        .counters()
                        .lagged
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let notice = json!({"op": "lagged", "missed": missed, "offset": active.last});
                    sink.feed(Message::Text(notice.to_string().into()))
                        .await
                        .map_err(drop)?;
                    let Some(missed_events) = self.hub.since(active.last) else {
                        sink.flush().await.map_err(drop)?;
                        self.hub
                            .counters()
                            .dropped_subscribers
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        return Ok(Some(Ending::Close(
                            CLOSE_LAGGED_PAST_HISTORY,
                            "lagged past history; reconnect with since",
                        )));
                    };
                    for published in missed_events {
                        active.last = published.offset;
                        if active.filter.matches(&published) {
                            sink.feed(Message::Text(published.frame.clone()))
                                .await
                                .map_err(drop)?;
                        }
                    }
                }
                Err(RecvError::Closed) => {
                    return Ok(Some(Ending::Close(1001, "server shutting down")));
                }
            }
            next = match active.receiver.try_recv() {
                Ok(p) => Ok(p),
                Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
            };
        }
        sink.flush().await.map_err(drop)?;
        Ok(None)
    }
}

async fn next_event(active: &mut Option<Active>) -> Result<Arc<Published>, RecvError> {
    match active {
        Some(active) => active.receiver.recv().await,
        None => std::future::pending().await,
    }
}

async fn send<Tx: Sink<Message> + Unpin>(sink: &mut Tx, message: Message) -> Result<(), ()> {
    sink.send(message).await.map_err(drop)
}

pub fn error_frame(code: &str, message: &str) -> Message {
    Message::Text(
        json!({"op": "error", "code": code, "message": message})
            .to_string()
            .into(),
    )
}
