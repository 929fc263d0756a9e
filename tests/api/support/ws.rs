//! WebSocket clients for tests: connect to `/v1/ws`, `/ws` or `/events` with any credential,
//! and read frames with a timeout so a missing frame fails the test instead of hanging it.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{Credential, TestApp, WAIT};

pub type Ws = WebSocketStream<TcpStream>;

impl TestApp {
    /// Opens a WebSocket on `path`; the error carries the HTTP response of a refused upgrade.
    pub async fn connect_ws(&self, path: &str, credential: Credential<'_>) -> Result<Ws, WsError> {
        let stream = TcpStream::connect(self.address).await?;
        self.handshake(stream, path, credential).await
    }

    /// Opens a WebSocket whose socket has a tiny receive buffer, so that when the test stops
    /// reading it, the server's writes back up within a few megabytes rather than tens.
    pub async fn connect_ws_small_buffer(&self, path: &str) -> Ws {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let stream = socket.connect(self.address).await.expect("connect");
        self.handshake(stream, path, self.admin())
            .await
            .expect("WebSocket handshake")
    }

    async fn handshake(
        &self,
        stream: TcpStream,
        path: &str,
        credential: Credential<'_>,
    ) -> Result<Ws, WsError> {
        let url = credential.url(format!("ws://{}{path}", self.address));
        let mut request = url.into_client_request()?;
        if let Some((name, value)) = credential.header() {
            request
                .headers_mut()
                .insert(name, value.parse().expect("a header value"));
        }
        let (ws, _) = tokio_tungstenite::client_async(request, stream).await?;
        Ok(ws)
    }

    /// `/v1/ws` as admin, subscribed with this frame; returns the socket and the `subscribed`
    /// frame. Once it is returned, every event published is delivered to this socket.
    pub async fn subscribe_v1(&self, subscribe: Value) -> (Ws, Value) {
        let mut ws = self
            .connect_ws("/v1/ws", self.admin())
            .await
            .expect("connect /v1/ws");
        send_json(&mut ws, &subscribe).await;
        let subscribed = next_json(&mut ws).await;
        assert_eq!(subscribed["op"], "subscribed", "{subscribed}");
        (ws, subscribed)
    }

    /// `/v1/ws` as admin, subscribed to everything.
    pub async fn subscribe_all(&self) -> Ws {
        self.subscribe_v1(json!({"op": "subscribe"})).await.0
    }

    /// The legacy `/ws` as admin, past its `initial_stats` frame (returned too).
    pub async fn connect_legacy(&self) -> (Ws, Value) {
        let mut ws = self
            .connect_ws("/ws", self.admin())
            .await
            .expect("connect /ws");
        let initial = next_json(&mut ws).await;
        assert_eq!(initial["type"], "initial_stats", "{initial}");
        (ws, initial)
    }

    /// Publishes a sentinel event and asserts it is the next event `ws` receives: proof that
    /// nothing was broadcast to it in between.
    pub async fn assert_nothing_was_broadcast(&self, ws: &mut Ws) {
        let receipt = self
            .publish_ok(&json!({"event_type": "sentinel", "source": "tests"}))
            .await;
        let frame = next_event(ws).await;
        assert_eq!(
            frame["event"]["event_type"], "sentinel",
            "something was broadcast before the sentinel: {frame}"
        );
        assert_eq!(frame["offset"], receipt["events"][0]["offset"]);
    }
}

pub async fn send_json(ws: &mut Ws, value: &Value) {
    send_text(ws, &value.to_string()).await;
}

pub async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.expect("send a frame");
}

/// The next text frame, as JSON (control frames are skipped). Fails on close or after `WAIT`.
pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no frame arrived in time")
            .expect("the socket ended")
            .expect("the socket failed");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON"),
            Message::Close(frame) => panic!("the server closed the socket: {frame:?}"),
            Message::Binary(_) => panic!("unexpected binary frame"),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
}

/// The next event frame of `/v1/ws`, past any system frames (flag changes, breaker
/// transitions: out of band, not part of the event stream); any other frame fails.
pub async fn next_event(ws: &mut Ws) -> Value {
    loop {
        let frame = next_json(ws).await;
        if frame["op"] != "system" {
            assert_eq!(frame["op"], "event", "expected an event frame: {frame}");
            return frame;
        }
    }
}

/// Reads every text frame until the server closes the socket; returns them and the close
/// frame. Fails after `WAIT` without a close.
pub async fn read_until_close(ws: &mut Ws) -> (Vec<Value>, Option<CloseFrame>) {
    let mut frames = Vec::new();
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the server did not close the socket in time");
        match message {
            Some(Ok(Message::Text(text))) => {
                frames.push(serde_json::from_str(text.as_str()).expect("JSON"))
            }
            Some(Ok(Message::Close(frame))) => return (frames, frame),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("the socket failed before a close frame: {e}"),
            None => panic!("the socket ended without a close frame"),
        }
    }
}

/// The HTTP status of a refused WebSocket upgrade.
pub fn refused_status(result: Result<Ws, WsError>) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected the upgrade to be refused, but it succeeded"),
    }
}
