//! `GET /v1/ws`: the switchyard subscriber protocol.
//!
//! Client frames: `{"op":"subscribe","filter":{...},"since":{"epoch","offset"}}` (every part
//! optional, sent again to change the filter) and `{"op":"ping"}`. Server frames: `subscribed`,
//! `event`, `lagged`, `pong`, `error`. Close codes: 1001 on shutdown, 4001 when the client fell
//! behind past the history ring (reconnect with `since`), 4002 when it stopped answering pings.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRef, State};
use axum::response::Response;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::AppState;
use super::auth::Reader;
use super::problems::{Forbidden, NotAWebSocket, TooManyRequests, Unauthorized};
use crate::hub::frames::ServerFrame;
use crate::hub::{CLOSE_LAGGED_PAST_HISTORY, Cursor, Delivery, Filter, Hub, Position};
use crate::metrics::{Metrics, Protocol};

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

/// What a subscriber socket (`/v1/ws`, and the legacy `/ws`) needs of the application.
#[derive(Clone)]
pub struct SubscriberState {
    pub hub: Hub,
    pub shutdown: CancellationToken,
    /// Sockets are tracked so shutdown waits for their goodbyes.
    pub connections: TaskTracker,
    pub metrics: Metrics,
    pub ping_interval: Duration,
}

impl FromRef<AppState> for SubscriberState {
    fn from_ref(state: &AppState) -> Self {
        Self {
            hub: state.hub.clone(),
            shutdown: state.shutdown.clone(),
            connections: state.connections.clone(),
            metrics: state.metrics.clone(),
            ping_interval: state.config.ws_ping_interval(),
        }
    }
}

/// Subscribe to events over WebSocket.
#[utoipa::path(
    get, path = "/v1/ws", tag = "subscribe",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        Unauthorized, Forbidden, TooManyRequests, NotAWebSocket,
    ),
    security(("bearer" = []), ("api_key" = []), ())
)]
pub async fn v1_ws(
    _access: Reader,
    State(state): State<SubscriberState>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let SubscriberState {
        hub,
        shutdown,
        connections: tracker,
        metrics,
        ping_interval,
    } = state;
    let session = Session {
        hub,
        shutdown,
        ping_interval,
    };
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
        let mut active: Option<Cursor> = None;
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
                delivery = next_delivery(&mut active) => {
                    let Some(cursor) = active.as_mut() else { continue };
                    match deliver(delivery, cursor, socket).await {
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
        active: &mut Option<Cursor>,
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
            ClientFrame::Ping => send(sink, Message::Text(ServerFrame::Pong.encode())).await,
            ClientFrame::Subscribe { filter, since } => {
                let unknown = filter.unknown_categories();
                if !unknown.is_empty() {
                    let message = format!("unknown categories: {}", unknown.join(", "));
                    return send(sink, error_frame("bad_filter", &message)).await;
                }
                let (cursor, start) = Cursor::resume(&self.hub, filter, since.as_ref());
                let subscribed = ServerFrame::Subscribed(&start.subscribed).encode();
                sink.feed(Message::Text(subscribed)).await.map_err(drop)?;
                for published in &start.replay {
                    sink.feed(Message::Text(published.frame.clone()))
                        .await
                        .map_err(drop)?;
                }
                sink.flush().await.map_err(drop)?;
                *active = Some(cursor);
                Ok(())
            }
        }
    }
}

/// Sends what the cursor has (and whatever else is ready, in one flush). Ends the session
/// when the client fell behind past history or the hub closed.
async fn deliver<Tx: Sink<Message> + Unpin>(
    first: Delivery,
    cursor: &mut Cursor,
    sink: &mut Tx,
) -> Result<Option<Ending>, ()> {
    let mut next = Some(first);
    for _ in 0..MAX_BATCH_FRAMES {
        let Some(delivery) = next else { break };
        match delivery {
            Delivery::Event(published) => {
                sink.feed(Message::Text(published.frame.clone()))
                    .await
                    .map_err(drop)?;
            }
            Delivery::Lagged(lagged) => {
                let notice = ServerFrame::Lagged(lagged).encode();
                sink.feed(Message::Text(notice)).await.map_err(drop)?;
            }
            Delivery::PastHistory { .. } => {
                sink.flush().await.map_err(drop)?;
                return Ok(Some(Ending::Close(
                    CLOSE_LAGGED_PAST_HISTORY,
                    "lagged past history; reconnect with since",
                )));
            }
            Delivery::Closed => return Ok(Some(Ending::Close(1001, "server shutting down"))),
        }
        next = cursor.try_next();
    }
    sink.flush().await.map_err(drop)?;
    Ok(None)
}

async fn next_delivery(active: &mut Option<Cursor>) -> Delivery {
    match active {
        Some(cursor) => cursor.next().await,
        None => std::future::pending().await,
    }
}

async fn send<Tx: Sink<Message> + Unpin>(sink: &mut Tx, message: Message) -> Result<(), ()> {
    sink.send(message).await.map_err(drop)
}

pub fn error_frame(code: &str, message: &str) -> Message {
    Message::Text(ServerFrame::Error { code, message }.encode())
}
