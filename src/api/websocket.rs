//! The server side of switchyard's WebSocket connections, owned here rather than taken from
//! axum's `WebSocket` (tungstenite underneath).
//!
//! Why: fan-out writes the same event to a thousand sockets. tungstenite copies each frame
//! into a per-connection output buffer that keeps the capacity of the largest burst it ever
//! held, so one half-second hiccup at 200 events/s x 1,000 subscribers left ~27 MiB held for
//! good (docs/benchmarks.md, session 6). Here a connection queues only a small header and a
//! reference to the event's shared bytes, and writes them with one vectored write per flush:
//! nothing is copied per subscriber before the kernel, and a burst holds at most
//! [`MAX_QUEUED`] queue entries per connection, whatever its size.
//!
//! The handshake is checked by axum's own extractor (so refusals read exactly as before);
//! the 101 answer and the framing are here (RFC 6455: client frames masked and checked,
//! fragments joined up to [`MAX_MESSAGE_BYTES`], pings answered, the close handshake
//! answered, a protocol breach answered with its close code). No extensions (compression)
//! and no subprotocols are negotiated, as before.

mod frame;

use std::future::Future;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade};
use axum::http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Sink, Stream};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use frame::{Header, MAX_HEADER, Violation};

/// Largest message a client may send, whole or in fragments.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// Frames queued before a flush is forced: a burst is written in pieces of this many
/// frames rather than held whole (each entry is a header and a reference, 48 bytes).
pub const MAX_QUEUED: usize = 32;
/// Queue entries a connection keeps between flushes (a steady stream writes a few frames a
/// wake); a larger queue is freed once written.
const KEEP_QUEUED: usize = 8;
/// Bytes read from the client at once, on the stack. Client frames are small (subscribe,
/// ping, legacy commands); a larger one arrives in more reads.
const READ_CHUNK: usize = 512;

/// The socket a WebSocket route gets after the handshake.
pub type ServerSocket = Socket<TokioIo<Upgraded>>;

/// A WebSocket handshake, checked: answer it with [`Upgrade::on_upgrade`].
pub struct Upgrade {
    on_upgrade: OnUpgrade,
    key: HeaderValue,
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let on_upgrade = parts.extensions.get::<OnUpgrade>().cloned();
        // axum's checks and refusals (method, Connection, Upgrade, version, key, an
        // upgradable connection), worded as they always were; its upgrade is not used.
        let _checked = WebSocketUpgrade::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let key = parts.headers.get(SEC_WEBSOCKET_KEY).cloned();
        match (on_upgrade, key) {
            (Some(on_upgrade), Some(key)) => Ok(Self { on_upgrade, key }),
            // Not reached over HTTP/1.1, where axum requires both; HTTP/2 is not served.
            _ => {
                Err((StatusCode::UPGRADE_REQUIRED, "Connection is not upgradable").into_response())
            }
        }
    }
}

impl Upgrade {
    /// Answers the handshake (101) and runs `session` on the socket once the connection
    /// has switched, in a task of its own.
    pub fn on_upgrade<F, Fut>(self, session: F) -> Response
    where
        F: FnOnce(ServerSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let accept = derive_accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => session(Socket::new(TokioIo::new(upgraded))).await,
                Err(error) => tracing::debug!(%error, "a WebSocket upgrade did not complete"),
            }
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }
}

/// One frame waiting to be written: its header and a reference to its payload.
struct Outgoing {
    header: [u8; MAX_HEADER],
    header_len: u8,
    payload: Bytes,
}

impl Outgoing {
    fn new(opcode: u8, payload: Bytes) -> Self {
        let (header, header_len) = frame::server_header(opcode, payload.len());
        Self {
            header,
            header_len,
            payload,
        }
    }

    fn header(&self) -> &[u8] {
        &self.header[..usize::from(self.header_len)]
    }

    fn len(&self) -> usize {
        usize::from(self.header_len) + self.payload.len()
    }
}

/// A message arriving in fragments.
struct Fragments {
    text: bool,
    data: Vec<u8>,
}

/// A server WebSocket over `io`: a [`Sink`] of messages (queued, written on flush) and a
/// [`Stream`] of the client's messages (pings and closes answered as they arrive).
pub struct Socket<T> {
    io: T,
    /// Frames to write; `out[..sent]` are written whole, and `sent_bytes` of `out[sent]`.
    out: Vec<Outgoing>,
    sent: usize,
    sent_bytes: usize,
    /// Client bytes read but not yet a whole frame; empty (no allocation) between frames.
    input: Vec<u8>,
    fragments: Option<Box<Fragments>>,
    /// A close frame has been queued: nothing more may be sent.
    close_sent: bool,
    /// The client closed, broke the protocol, or the connection ended: nothing more is read.
    read_done: bool,
}

impl<T> Socket<T> {
    pub fn new(io: T) -> Self {
        Self {
            io,
            out: Vec::new(),
            sent: 0,
            sent_bytes: 0,
            input: Vec::new(),
            fragments: None,
            close_sent: false,
            read_done: false,
        }
    }

    fn queue(&mut self, opcode: u8, payload: Bytes) {
        if opcode == frame::OP_CLOSE {
            self.close_sent = true;
        }
        self.out.push(Outgoing::new(opcode, payload));
    }

    fn queue_close(&mut self, code: u16, reason: &str) {
        if self.close_sent {
            return;
        }
        let mut payload = Vec::with_capacity(2 + reason.len());
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(truncated(reason, frame::MAX_CONTROL_PAYLOAD - 2).as_bytes());
        self.queue(frame::OP_CLOSE, Bytes::from(payload));
    }

    fn unsent(&self) -> bool {
        self.sent < self.out.len()
    }

    /// Marks `written` bytes of the queue as written.
    fn advance(&mut self, mut written: usize) {
        while written > 0 {
            let left = self.out[self.sent].len() - self.sent_bytes;
            if written < left {
                self.sent_bytes += written;
                return;
            }
            written -= left;
            self.sent += 1;
            self.sent_bytes = 0;
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Socket<T> {
    /// Writes every queued frame, as few vectored writes as the socket allows.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        const SLICES: usize = 2 * MAX_QUEUED;
        while self.unsent() {
            let mut slices = [IoSlice::new(&[]); SLICES];
            let mut count = 0;
            let mut skip = self.sent_bytes;
            for outgoing in &self.out[self.sent..] {
                for part in [outgoing.header(), &outgoing.payload[..]] {
                    if skip >= part.len() {
                        skip -= part.len();
                    } else if count < SLICES {
                        slices[count] = IoSlice::new(&part[skip..]);
                        skip = 0;
                        count += 1;
                    }
                }
            }
            let written = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.advance(written);
        }
        // A steady stream keeps its small queue; one a burst grew is freed, so a hiccup that
        // queued `MAX_QUEUED` frames on every connection leaves nothing held behind it.
        if self.out.capacity() > KEEP_QUEUED {
            self.out = Vec::new();
        }
        self.out.clear();
        self.sent = 0;
        self.sent_bytes = 0;
        Poll::Ready(Ok(()))
    }

    /// Refuses what the client sent: answers with the close code (best effort) and ends
    /// reading.
    fn refuse(&mut self, violation: Violation, cx: &mut Context<'_>) -> axum::Error {
        self.read_done = true;
        self.input = Vec::new();
        self.fragments = None;
        self.queue_close(violation.code, violation.reason);
        let _ = self.poll_write_out(cx);
        axum::Error::new(io::Error::new(io::ErrorKind::InvalidData, violation.reason))
    }

    /// Takes one whole frame from `input`, if one is there.
    fn take_frame(&mut self, cx: &mut Context<'_>) -> Result<Taken, Violation> {
        let budget = MAX_MESSAGE_BYTES - self.fragments.as_ref().map_or(0, |f| f.data.len());
        let Some(header) = Header::parse(&self.input, budget)? else {
            return Ok(Taken::NeedMore);
        };
        let end = header.len + header.payload_len;
        if self.input.len() < end {
            // Grown as bytes arrive, not reserved from the header: a client announcing a
            // large frame holds only what it has sent.
            return Ok(Taken::NeedMore);
        }
        frame::unmask(&mut self.input[header.len..end], header.mask);
        let taken = self.on_frame(header, cx)?;
        self.input.drain(..end);
        if self.input.is_empty() {
            // Idle connections hold no read buffer.
            self.input = Vec::new();
        }
        Ok(taken)
    }

    fn on_frame(&mut self, header: Header, cx: &mut Context<'_>) -> Result<Taken, Violation> {
        let payload = &self.input[header.len..header.len + header.payload_len];
        let violation = |code, reason| Violation { code, reason };
        Ok(match header.opcode {
            frame::OP_PING => {
                let pong = Bytes::copy_from_slice(payload);
                if !self.close_sent {
                    self.queue(frame::OP_PONG, pong.clone());
                    let _ = self.poll_write_out(cx);
                }
                Taken::Message(Message::Ping(pong))
            }
            frame::OP_PONG => Taken::Message(Message::Pong(Bytes::copy_from_slice(payload))),
            frame::OP_CLOSE => {
                let close = frame::parse_close(payload)?;
                let frame = close.map(|(code, reason)| CloseFrame {
                    code,
                    reason: Utf8Bytes::from(reason),
                });
                // Answered with the client's code, as RFC 6455 §5.5.1 asks.
                match &frame {
                    Some(frame) => self.queue_close(frame.code, ""),
                    None if !self.close_sent => self.queue(frame::OP_CLOSE, Bytes::new()),
                    None => {}
                }
                let _ = self.poll_write_out(cx);
                Taken::Close(Message::Close(frame))
            }
            opcode => {
                let data = match (opcode, self.fragments.take()) {
                    (frame::OP_CONTINUATION, None) => {
                        return Err(violation(
                            frame::CLOSE_PROTOCOL_ERROR,
                            "continuation without a start",
                        ));
                    }
                    (frame::OP_CONTINUATION, Some(mut fragments)) => {
                        fragments.data.extend_from_slice(payload);
                        fragments
                    }
                    (_, Some(_)) => {
                        return Err(violation(
                            frame::CLOSE_PROTOCOL_ERROR,
                            "new message inside a fragmented one",
                        ));
                    }
                    (opcode, None) => Box::new(Fragments {
                        text: opcode == frame::OP_TEXT,
                        data: payload.to_vec(),
                    }),
                };
                if !header.fin {
                    self.fragments = Some(data);
                    return Ok(Taken::Fragment);
                }
                let Fragments { text, data } = *data;
                Taken::Message(if text {
                    let text = Utf8Bytes::try_from(data).map_err(|_| {
                        violation(frame::CLOSE_INVALID_DATA, "text message not UTF-8")
                    })?;
                    Message::Text(text)
                } else {
                    Message::Binary(Bytes::from(data))
                })
            }
        })
    }
}

/// What reading `input` gave.
enum Taken {
    Message(Message),
    /// The client's close: the last message read.
    Close(Message),
    /// A fragment of a message still arriving.
    Fragment,
    /// No whole frame yet.
    NeedMore,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Stream for Socket<T> {
    type Item = Result<Message, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.read_done {
                return Poll::Ready(None);
            }
            match this.take_frame(cx) {
                Ok(Taken::Message(message)) => return Poll::Ready(Some(Ok(message))),
                Ok(Taken::Close(message)) => {
                    this.read_done = true;
                    this.input = Vec::new();
                    return Poll::Ready(Some(Ok(message)));
                }
                Ok(Taken::Fragment) => continue,
                Ok(Taken::NeedMore) => {}
                Err(violation) => return Poll::Ready(Some(Err(this.refuse(violation, cx)))),
            }
            let mut chunk = [const { MaybeUninit::<u8>::uninit() }; READ_CHUNK];
            let mut buf = ReadBuf::uninit(&mut chunk);
            if let Err(error) = ready!(Pin::new(&mut this.io).poll_read(cx, &mut buf)) {
                this.read_done = true;
                return Poll::Ready(Some(Err(axum::Error::new(error))));
            }
            if buf.filled().is_empty() {
                this.read_done = true;
                return Poll::Ready(None);
            }
            this.input.extend_from_slice(buf.filled());
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Sink<Message> for Socket<T> {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.out.len() >= MAX_QUEUED {
            ready!(this.poll_write_out(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> io::Result<()> {
        let this = self.get_mut();
        if this.close_sent {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the WebSocket is closing",
            ));
        }
        match message {
            Message::Text(text) => this.queue(frame::OP_TEXT, text.into()),
            Message::Binary(data) => this.queue(frame::OP_BINARY, data),
            Message::Ping(data) => this.queue(frame::OP_PING, control(data)),
            Message::Pong(data) => this.queue(frame::OP_PONG, control(data)),
            Message::Close(Some(close)) => this.queue_close(close.code, close.reason.as_str()),
            Message::Close(None) => this.queue(frame::OP_CLOSE, Bytes::new()),
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// A control frame's payload, cut to the 125 bytes the protocol allows.
fn control(mut data: Bytes) -> Bytes {
    data.truncate(frame::MAX_CONTROL_PAYLOAD);
    data
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn truncated(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message as Client;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::frame::{CLOSE_INVALID_DATA, CLOSE_PROTOCOL_ERROR, CLOSE_TOO_BIG};
    use super::*;

    /// A client frame as a browser sends it: masked.
    fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xFA, 0x21, 0x3D];
        let (header, used) = frame::server_header(first & 0x0F, payload.len());
        let mut bytes = header[..usize::from(used)].to_vec();
        bytes[0] = first;
        bytes[1] |= 0x80;
        bytes.extend_from_slice(&mask);
        let start = bytes.len();
        bytes.extend_from_slice(payload);
        frame::unmask(&mut bytes[start..], mask);
        bytes
    }

    /// Reads one server frame: its first byte and its payload.
    async fn server_frame(client: &mut DuplexStream) -> (u8, Vec<u8>) {
        let mut head = [0u8; 2];
        client.read_exact(&mut head).await.unwrap();
        assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
        let len = match head[1] {
            126 => usize::from(client.read_u16().await.unwrap()),
            127 => client.read_u64().await.unwrap() as usize,
            short => usize::from(short),
        };
        let mut payload = vec![0; len];
        client.read_exact(&mut payload).await.unwrap();
        (head[0], payload)
    }

    fn close_code(payload: &[u8]) -> u16 {
        u16::from_be_bytes([payload[0], payload[1]])
    }

    /// Through a 64-byte pipe every larger write is partial: every frame, of every length
    /// form, still reaches a tungstenite client whole and in order, and the client's
    /// messages (one larger than a read chunk) reach the server.
    #[tokio::test]
    async fn messages_cross_whole_and_in_order_through_partial_writes() {
        let (server_io, client_io) = duplex(64);
        let mut server = Socket::new(server_io);
        let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        let texts: Vec<String> = (0..200)
            .map(|i| {
                let mut text = format!("{i:03}-");
                text.extend(std::iter::repeat_n(
                    'e',
                    [0, 7, 125, 126, 300, 65_536, 70_000][i % 7],
                ));
                text.truncate([0, 7, 125, 126, 300, 65_536, 70_000][i % 7]);
                text
            })
            .collect();
        let expected = texts.clone();
        let reader = tokio::spawn(async move {
            for text in expected {
                match client.next().await.unwrap().unwrap() {
                    Client::Text(got) => assert_eq!(got.as_str(), text),
                    other => panic!("unexpected {other:?}"),
                }
            }
            client.send(Client::text("x".repeat(3_000))).await.unwrap();
            client
                .send(Client::binary(vec![7u8; 200_000]))
                .await
                .unwrap();
            client
        });
        for text in texts {
            server.feed(Message::Text(text.into())).await.unwrap();
        }
        server.flush().await.unwrap();
        match server.next().await.unwrap().unwrap() {
            Message::Text(text) => assert_eq!(text.as_str(), "x".repeat(3_000)),
            other => panic!("unexpected {other:?}"),
        }
        match server.next().await.unwrap().unwrap() {
            Message::Binary(data) => assert_eq!(data, vec![7u8; 200_000]),
            other => panic!("unexpected {other:?}"),
        }
        let _client = reader.await.unwrap();
    }

    #[tokio::test]
    async fn fragments_are_joined_and_pings_answered_between_them() {
        let (server_io, mut client) = duplex(4096);
        let mut server = Socket::new(server_io);
        let mut bytes = client_frame(0x01, "hé".as_bytes());
        bytes.extend(client_frame(0x89, b"are you there"));
        bytes.extend(client_frame(0x80, "llo".as_bytes()));
        client.write_all(&bytes).await.unwrap();
        match server.next().await.unwrap().unwrap() {
            Message::Ping(data) => assert_eq!(&data[..], b"are you there"),
            other => panic!("unexpected {other:?}"),
        }
        match server.next().await.unwrap().unwrap() {
            Message::Text(text) => assert_eq!(text.as_str(), "héllo"),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            server_frame(&mut client).await,
            (0x8A, b"are you there".to_vec())
        );
    }

    #[tokio::test]
    async fn a_close_is_answered_with_its_code_and_ends_reading() {
        let (server_io, mut client) = duplex(4096);
        let mut server = Socket::new(server_io);
        let mut close = 4000u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"done");
        client.write_all(&client_frame(0x88, &close)).await.unwrap();
        match server.next().await.unwrap().unwrap() {
            Message::Close(Some(frame)) => {
                assert_eq!((frame.code, frame.reason.as_str()), (4000, "done"))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(server.next().await.is_none());
        let (first, payload) = server_frame(&mut client).await;
        assert_eq!((first, close_code(&payload)), (0x88, 4000));
        let refused = server.send(Message::Text("late".into())).await;
        assert!(refused.is_err(), "nothing is sent after a close");
    }

    /// Each breach of the protocol ends reading with an error and is answered with its close
    /// code; an oversized message is refused from its header, before its payload arrives.
    #[tokio::test]
    async fn a_protocol_breach_is_refused_with_its_close_code() {
        let mut oversized = vec![0x82, 0xFF];
        oversized.extend_from_slice(&((MAX_MESSAGE_BYTES + 1) as u64).to_be_bytes());
        oversized.extend_from_slice(&[0, 0, 0, 0]);
        let mut fragments_too_big = client_frame(0x02, &vec![0; MAX_MESSAGE_BYTES - 10]);
        fragments_too_big.extend(client_frame(0x80, &[0; 11]));
        let cases = [
            (
                "unmasked",
                vec![0x81, 0x02, b'h', b'i'],
                CLOSE_PROTOCOL_ERROR,
            ),
            (
                "reserved bits",
                client_frame(0xC1, b"hi"),
                CLOSE_PROTOCOL_ERROR,
            ),
            (
                "stray continuation",
                client_frame(0x80, b"hi"),
                CLOSE_PROTOCOL_ERROR,
            ),
            (
                "text not UTF-8",
                client_frame(0x81, &[0xC3, 0x28]),
                CLOSE_INVALID_DATA,
            ),
            ("oversized", oversized, CLOSE_TOO_BIG),
            ("fragments too big", fragments_too_big, CLOSE_TOO_BIG),
        ];
        for (case, bytes, code) in cases {
            let (server_io, mut client) = duplex(2 * MAX_MESSAGE_BYTES);
            let mut server = Socket::new(server_io);
            client.write_all(&bytes).await.unwrap();
            assert!(server.next().await.unwrap().is_err(), "{case}");
            assert!(server.next().await.is_none(), "{case}: reading ended");
            let (first, payload) = server_frame(&mut client).await;
            assert_eq!((first, close_code(&payload)), (0x88, code), "{case}");
        }
    }

    #[tokio::test]
    async fn the_end_of_the_connection_ends_the_stream() {
        let (server_io, client) = duplex(64);
        let mut server = Socket::new(server_io);
        drop(client);
        assert!(server.next().await.is_none());
    }

    /// The queue holds at most `MAX_QUEUED` frames: a burst is written in pieces, and what
    /// a connection keeps afterwards is what a steady stream keeps.
    #[tokio::test]
    async fn a_burst_is_written_in_pieces_and_leaves_the_queue_bounded() {
        let (server_io, mut client) = duplex(1 << 20);
        let mut server = Socket::new(server_io);
        for i in 0..1_000 {
            server
                .feed(Message::Text(format!("event {i}").into()))
                .await
                .unwrap();
            assert!(server.out.len() <= MAX_QUEUED);
        }
        server.flush().await.unwrap();
        assert!(server.out.capacity() <= KEEP_QUEUED);
        for i in 0..1_000 {
            assert_eq!(
                server_frame(&mut client).await,
                (0x81, format!("event {i}").into_bytes())
            );
        }
    }

    #[test]
    fn the_accept_key_is_rfc_6455s() {
        // RFC 6455 §1.3's example.
        assert_eq!(
            derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
