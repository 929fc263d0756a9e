//! `GET /v1/ws`: the switchyard subscriber protocol.
//!
//! Client frames: `{"op":"subscribe","filter":{...},"since":{"epoch","offset"}}` (every part
//! optional, sent again to change the filter) and `{"op":"ping"}`. Server frames: `subscribed`,
//! `event`, `lagged`, `pong`, `error`. Close codes: 1001 on shutdown, 4001 when the client fell
//! behind past the history ring (reconnect with `since`), 4002 when it stopped answering pings.
//! A client that stops reading is cut once a send waits past the send timeout (no close
//! frame: it would not be read), counted as `send_timeout`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
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
use super::origin::AllowedOrigin;
use super::problems::{Forbidden, NotAWebSocket, TooManyRequests, Unauthorized};
use super::stream_guard::{SendFailure, oversized_filter, send_within};
use super::stream_limit::StreamSlot;
use super::websocket::{ServerSocket, Upgrade};
use crate::hub::frames::ServerFrame;
use crate::hub::{CLOSE_LAGGED_PAST_HISTORY, Cursor, Delivery, Filter, Hub, Position};
use crate::metrics::connections::CutReason;
use crate::metrics::panics::survive;
use crate::metrics::{Metrics, PanicSite, Protocol};

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
    /// Longest one send to the client may wait (`SWITCHYARD_SEND_TIMEOUT_MS`).
    pub send_timeout: Duration,
    /// Values per filter list (`SWITCHYARD_MAX_FILTER_VALUES`).
    pub max_filter_values: usize,
}

impl FromRef<AppState> for SubscriberState {
    fn from_ref(state: &AppState) -> Self {
        Self {
            hub: state.hub.clone(),
            shutdown: state.shutdown.clone(),
            connections: state.connections.clone(),
            metrics: state.metrics.clone(),
            ping_interval: state.config.ws_ping_interval(),
            send_timeout: state.config.send_timeout(),
            max_filter_values: state.config.max_filter_values as usize,
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
    _origin: AllowedOrigin,
    _access: Reader,
    slot: StreamSlot,
    State(state): State<SubscriberState>,
    upgrade: Upgrade,
) -> Response {
    let tracker = state.connections.clone();
    let session = Session::new(state);
    upgrade.on_upgrade(move |socket| tracker.track_future(session.task(socket, slot)))
}

/// One subscriber connection.
pub struct Session {
    pub hub: Hub,
    pub shutdown: CancellationToken,
    pub ping_interval: Duration,
    pub send_timeout: Duration,
    pub max_filter_values: usize,
    pub metrics: Metrics,
}

/// Why a session ended, when the server ends it.
enum Ending {
    Close(u16, &'static str),
    Gone,
    /// A send waited past the send timeout: the client stopped reading.
    Stalled,
}

impl From<SendFailure> for Ending {
    fn from(failure: SendFailure) -> Self {
        match failure {
            SendFailure::Gone => Ending::Gone,
            SendFailure::Stalled => Ending::Stalled,
        }
    }
}

impl Session {
    pub fn new(state: SubscriberState) -> Self {
        Self {
            hub: state.hub,
            shutdown: state.shutdown,
            ping_interval: state.ping_interval,
            send_timeout: state.send_timeout,
            max_filter_values: state.max_filter_values,
            metrics: state.metrics,
        }
    }

    /// The whole life of one `/v1/ws` connection, as its task runs it: the session, then its
    /// goodbye, with its panics caught and its gauge and stream slot held until it ends.
    ///
    /// A plain function returning one `async` block that uses `self` and `socket` where they
    /// are: an `async fn`, or a block handing them on to one, keeps a second copy of every
    /// argument it moves (rust-lang/rust#62958). Written as `async move { session.run(socket)
    /// .await }` around an `async fn run`, the socket (368 bytes) was held three times and
    /// the session twice, in every idle connection's task (docs/benchmarks.md, idle).
    pub fn task(
        self,
        mut socket: ServerSocket,
        slot: StreamSlot,
    ) -> impl Future<Output = ()> + Send + 'static {
        let connected = self.metrics.subscriber(Protocol::Ws);
        let panics = self.metrics.panics().clone();
        survive(panics, PanicSite::Socket, "a /v1/ws session", async move {
            let ending = match self.serve(&mut socket).await {
                Err(ending) => ending,
                Ok(never) => match never {},
            };
            self.goodbye(ending, &mut socket).await;
            drop((connected, slot));
        })
    }

    /// Counts how the session ended and, when the server ends it, says why (a close frame).
    async fn goodbye(&self, ending: Ending, socket: &mut ServerSocket) {
        match ending {
            Ending::Close(code, reason) => {
                if code == CLOSE_UNRESPONSIVE {
                    self.metrics
                        .connections()
                        .stream_closed(Protocol::Ws.as_str(), CutReason::Unresponsive);
                }
                let frame = CloseFrame {
                    code,
                    reason: Utf8Bytes::from_static(reason),
                };
                let goodbye = Message::Close(Some(frame));
                let _ = send_rare(self.send_timeout, socket, goodbye).await;
            }
            Ending::Stalled => self
                .metrics
                .connections()
                .stream_closed(Protocol::Ws.as_str(), CutReason::SendTimeout),
            Ending::Gone => {}
        }
    }

    /// The session loop; returns only with why it ended. It wakes once per event burst per
    /// subscriber, so it is the hot path of fan-out: the socket is not split (a split pair
    /// takes a lock on every poll) and the shutdown future is made once rather than
    /// re-registered on every wake-up. Every send is bounded by the send timeout.
    async fn serve<S>(&self, socket: &mut S) -> Result<Infallible, Ending>
    where
        S: Sink<Message> + Stream<Item = Result<Message, axum::Error>> + Unpin,
        S::Error: std::error::Error + 'static,
    {
        let limit = self.send_timeout;
        let mut active: Option<Cursor> = None;
        let mut system = self.hub.subscribe_system();
        let mut ping = tokio::time::interval(self.ping_interval);
        ping.tick().await;
        let mut last_heard = Instant::now();
        let shutdown = self.shutdown.cancelled();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return Err(Ending::Close(1001, "server shutting down")),
                incoming = socket.next() => {
                    let Some(Ok(message)) = incoming else { return Err(Ending::Gone) };
                    last_heard = Instant::now();
                    match message {
                        // Boxed: a subscribe may read history back from NATS, a future
                        // of kilobytes that would otherwise sit, unused, in every idle
                        // connection's task for its whole life (docs/benchmarks.md, idle).
                        Message::Text(text) => Box::pin(self.handle_frame(&text, &mut active, socket)).await?,
                        Message::Binary(_) => {
                            let reply = error_frame("unsupported", "binary frames are not part of the protocol");
                            send_rare(limit, socket, reply).await?;
                        }
                        Message::Close(_) => return Err(Ending::Gone),
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
                frame = system.recv() => match frame {
                    Ok(frame) => send_rare(limit, socket, Message::Text(frame)).await?,
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return Err(Ending::Close(1001, "server shutting down")),
                },
                delivery = next_delivery(&mut active) => {
                    let Some(cursor) = active.as_mut() else { continue };
                    send_within(limit, deliver(delivery, cursor, socket)).await??;
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > self.ping_interval * 2 {
                        return Err(Ending::Close(CLOSE_UNRESPONSIVE, "no answer to pings"));
                    }
                    send_rare(limit, socket, Message::Ping(Default::default())).await?;
                }
            }
        }
    }

    async fn handle_frame<Tx>(
        &self,
        text: &str,
        active: &mut Option<Cursor>,
        sink: &mut Tx,
    ) -> Result<(), Ending>
    where
        Tx: Sink<Message> + Unpin,
        Tx::Error: std::error::Error + 'static,
    {
        let limit = self.send_timeout;
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(e) => {
                let reply = error_frame("bad_request", &format!("unreadable frame: {e}"));
                return Ok(send_within(limit, sink.send(reply)).await?);
            }
        };
        match frame {
            ClientFrame::Ping => {
                let pong = Message::Text(ServerFrame::Pong.encode());
                Ok(send_within(limit, sink.send(pong)).await?)
            }
            ClientFrame::Subscribe { filter, since } => {
                let unknown = filter.unknown_categories();
                let refusal = if let Some(error) = oversized_filter(&filter, self.max_filter_values)
                {
                    Some(format!("{}: {}", error.field, error.message))
                } else if !unknown.is_empty() {
                    Some(format!("unknown categories: {}", unknown.join(", ")))
                } else {
                    None
                };
                if let Some(message) = refusal {
                    return Ok(
                        send_within(limit, sink.send(error_frame("bad_filter", &message))).await?,
                    );
                }
                let (cursor, start) =
                    Cursor::resume_anywhere(&self.hub, filter, since.as_ref()).await;
                let subscribed = ServerFrame::Subscribed(&start.subscribed).encode();
                send_within(limit, async {
                    sink.feed(Message::Text(subscribed)).await?;
                    for published in &start.replay {
                        sink.feed(Message::Text(published.frame.clone())).await?;
                    }
                    sink.flush().await
                })
                .await?;
                *active = Some(cursor);
                Ok(())
            }
        }
    }
}

/// Sends what the cursor has (and whatever else is ready, in one flush). Ends the session
/// (the inner `Err`) when the client fell behind past history or the hub closed.
async fn deliver<Tx: Sink<Message> + Unpin>(
    first: Delivery,
    cursor: &mut Cursor,
    sink: &mut Tx,
) -> Result<Result<(), Ending>, Tx::Error> {
    let mut next = Some(first);
    for _ in 0..MAX_BATCH_FRAMES {
        let Some(delivery) = next else { break };
        match delivery {
            Delivery::Event(published) => {
                sink.feed(Message::Text(published.frame.clone())).await?;
            }
            Delivery::Lagged(lagged) => {
                let notice = ServerFrame::Lagged(lagged).encode();
                sink.feed(Message::Text(notice)).await?;
            }
            Delivery::PastHistory { .. } => {
                sink.flush().await?;
                return Ok(Err(Ending::Close(
                    CLOSE_LAGGED_PAST_HISTORY,
                    "lagged past history; reconnect with since",
                )));
            }
            Delivery::Closed => return Ok(Err(Ending::Close(1001, "server shutting down"))),
        }
        next = cursor.try_next();
    }
    sink.flush().await?;
    Ok(Ok(()))
}

/// Sends one of the rare frames (a system frame, a ping, an error reply, the goodbye) within
/// the send timeout. Boxed, like the subscribe handler: a send and its timer laid out inline
/// would sit in every session's task for its whole life, for frames sent seldom. The event
/// path (`deliver`) stays inline: it must not allocate.
fn send_rare<S>(
    limit: Duration,
    sink: &mut S,
    message: Message,
) -> Pin<Box<impl Future<Output = Result<(), SendFailure>>>>
where
    S: Sink<Message> + Unpin,
    S::Error: std::error::Error + 'static,
{
    Box::pin(send_within(limit, sink.send(message)))
}

async fn next_delivery(active: &mut Option<Cursor>) -> Delivery {
    match active {
        Some(cursor) => cursor.next().await,
        None => std::future::pending().await,
    }
}

pub fn error_frame(code: &str, message: &str) -> Message {
    Message::Text(ServerFrame::Error { code, message }.encode())
}

/// The size of the future `f` returns, read from its type: nothing is called. For the tests
/// that hold a connection's task size (here and in `legacy`).
#[cfg(test)]
pub(super) fn returned_size<A, B, C, R: Future>(_f: impl FnOnce(A, B, C) -> R) -> usize {
    std::mem::size_of::<R>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every idle `/v1/ws` connection keeps its task's future for its whole life, so its size
    /// is paid per connection (docs/benchmarks.md, idle). Measured 1,072 bytes for the task
    /// and 792 for the session loop in a test build with rustc 1.95 (the task was 1,312 with
    /// axum's 368-byte `WebSocket`, 128 bytes with ours; 2,400 before session 5, when the
    /// socket was copied into an `async fn` and each send's future twice). A bound a little
    /// above today's figure catches another copy of the socket or of the event delivery.
    #[test]
    fn an_idle_sessions_task_stays_small() {
        let task = returned_size(Session::task);
        assert!(task <= 1_150, "the /v1/ws task's future is {task} bytes");
        let serve =
            returned_size(|s: &'static Session, w: &'static mut ServerSocket, _: ()| s.serve(w));
        assert!(
            serve <= 850,
            "the /v1/ws session loop's future is {serve} bytes"
        );
    }
}
