//! A lean WebSocket client for bench subscribers: the handshake, then server frames read
//! in place from one reused buffer.
//!
//! A fan-out run at 800 events/s to 1,000 subscribers receives 800,000 frames a second on one
//! core. Through tokio-tungstenite the bench spent its whole core on that (every read zeroes
//! its buffer, every frame is copied into its own allocation and checked as UTF-8), which made
//! such a run invalid as a measurement: the latencies it reported were partly its own queueing.
//! Here a read lands in a buffer that was zeroed once, every complete frame in it is handed out
//! as a slice of that buffer, and nothing is allocated or validated per frame. It speaks just
//! what a subscriber needs: unmasked server frames of any length, a masked text frame to send
//! (`subscribe`), pongs for the server's liveness pings, and close frames.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a read starts with; a frame longer than what is free grows the buffer to fit it.
const INITIAL_BUFFER: usize = 16 * 1024;
/// The largest frame accepted, far above anything switchyard sends.
const MAX_FRAME: usize = 64 * 1024 * 1024;
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// Clients mask what they send (RFC 6455 section 5.3); servers do not check the key's quality.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// One server frame, borrowed from the reader's buffer until the next call.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Text(&'a [u8]),
    /// The close code (if any) and reason.
    Close(Option<u16>, String),
    /// Binary, pong, or continuation frames: counted by nobody.
    Other,
}

pub struct Feed {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
}

/// A frame header parsed from the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
struct Header {
    opcode: u8,
    header_len: usize,
    payload_len: usize,
}

impl Feed {
    /// Upgrades `stream` to a WebSocket at `path` (with its query), sending `headers` (name,
    /// value) with the request. Bytes that arrived behind the response head are kept as frames.
    pub async fn handshake(
        mut stream: TcpStream,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut feed = Self {
            stream,
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
        };
        let head_end = loop {
            if let Some(at) = memchr::memmem::find(&feed.buf[..feed.end], b"\r\n\r\n") {
                break at + 4;
            }
            anyhow::ensure!(
                feed.end < MAX_RESPONSE_HEAD,
                "the upgrade response head is over {MAX_RESPONSE_HEAD} bytes"
            );
            anyhow::ensure!(
                feed.fill().await? > 0,
                "connection closed during the upgrade"
            );
        };
        let head = String::from_utf8_lossy(&feed.buf[..head_end]);
        let status = head.lines().next().unwrap_or_default();
        anyhow::ensure!(
            status.starts_with("HTTP/1.1 101"),
            "the upgrade was refused: {status}"
        );
        feed.start = head_end;
        Ok(feed)
    }

    /// Sends one masked text frame.
    pub async fn send_text(&mut self, text: &str) -> io::Result<()> {
        let frame = masked(OP_TEXT, text.as_bytes());
        self.stream.write_all(&frame).await
    }

    /// The next frame; pings are answered on the way. `Ok(None)` when the connection ended.
    pub async fn next(&mut self) -> io::Result<Option<Frame<'_>>> {
        loop {
            let Some(header) = parse_header(&self.buf[self.start..self.end])? else {
                if self.fill().await? == 0 {
                    return Ok(None);
                }
                continue;
            };
            let total = header.header_len + header.payload_len;
            if self.end - self.start < total {
                if self.fill().await? == 0 {
                    return Ok(None);
                }
                continue;
            }
            let payload = self.start + header.header_len..self.start + total;
            self.start += total;
            match header.opcode {
                OP_TEXT => return Ok(Some(Frame::Text(&self.buf[payload]))),
                OP_PING => {
                    let pong = masked(OP_PONG, &self.buf[payload]);
                    self.stream.write_all(&pong).await?;
                }
                OP_CLOSE => {
                    let body = &self.buf[payload];
                    let code = (body.len() >= 2).then(|| u16::from_be_bytes([body[0], body[1]]));
                    let reason = String::from_utf8_lossy(body.get(2..).unwrap_or_default());
                    return Ok(Some(Frame::Close(code, reason.into_owned())));
                }
                _ => return Ok(Some(Frame::Other)),
            }
        }
    }

    /// Sends a close frame (best effort) and shuts the write side.
    pub async fn close(&mut self) {
        let _ = self
            .stream
            .write_all(&masked(OP_CLOSE, &1000u16.to_be_bytes()))
            .await;
        let _ = self.stream.shutdown().await;
    }

    /// Reads once into the free tail of the buffer, first moving unread bytes to the front
    /// when the tail is short, or growing the buffer when one frame needs more room.
    async fn fill(&mut self) -> io::Result<usize> {
        let unread = self.end - self.start;
        let needed = match parse_header(&self.buf[self.start..self.end]) {
            Ok(Some(h)) => h.header_len + h.payload_len,
            _ => 0,
        };
        if self.start > 0 && (self.buf.len() - self.end < INITIAL_BUFFER / 4 || needed > 0) {
            self.buf.copy_within(self.start..self.end, 0);
            self.start = 0;
            self.end = unread;
        }
        if needed > self.buf.len() {
            self.buf.resize(needed, 0);
        }
        let read = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += read;
        Ok(read)
    }
}

/// The header at the front of `bytes`, `None` until all of it has arrived.
fn parse_header(bytes: &[u8]) -> io::Result<Option<Header>> {
    if bytes.len() < 2 {
        return Ok(None);
    }
    if bytes[1] & 0x80 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the server sent a masked frame",
        ));
    }
    let (header_len, payload_len) = match bytes[1] & 0x7f {
        126 if bytes.len() >= 4 => (4, u16::from_be_bytes([bytes[2], bytes[3]]) as usize),
        127 if bytes.len() >= 10 => {
            let len = u64::from_be_bytes(bytes[2..10].try_into().expect("eight bytes"));
            (10, usize::try_from(len).unwrap_or(usize::MAX))
        }
        126 | 127 => return Ok(None),
        short => (2, short as usize),
    };
    if payload_len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a {payload_len}-byte frame is over the bench's {MAX_FRAME}"),
        ));
    }
    Ok(Some(Header {
        opcode: bytes[0] & 0x0f,
        header_len,
        payload_len,
    }))
}

/// A final, masked client frame.
fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 14);
    frame.push(0x80 | opcode);
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&MASK);
    frame.extend(payload.iter().zip(MASK.iter().cycle()).map(|(b, m)| b ^ m));
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_of_every_length_class_are_parsed_once_complete() {
        assert_eq!(parse_header(&[0x81]).unwrap(), None);
        assert_eq!(
            parse_header(&[0x81, 5, b'h']).unwrap(),
            Some(Header {
                opcode: 1,
                header_len: 2,
                payload_len: 5
            })
        );
        assert_eq!(parse_header(&[0x81, 126, 1]).unwrap(), None);
        assert_eq!(
            parse_header(&[0x81, 126, 1, 0]).unwrap(),
            Some(Header {
                opcode: 1,
                header_len: 4,
                payload_len: 256
            })
        );
        assert_eq!(parse_header(&[0x82, 127, 0, 0, 0, 0, 0, 1]).unwrap(), None);
        assert_eq!(
            parse_header(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]).unwrap(),
            Some(Header {
                opcode: 2,
                header_len: 10,
                payload_len: 65_536
            })
        );
        assert!(parse_header(&[0x81, 0x85]).is_err(), "servers do not mask");
        assert!(parse_header(&[0x81, 127, 0, 0, 0, 0, 0x40, 0, 0, 0]).is_err());
    }

    #[test]
    fn client_frames_are_masked_and_unmask_to_their_payload() {
        let text = "x".repeat(300);
        let frame = masked(OP_TEXT, text.as_bytes());
        assert_eq!(frame[0], 0x81);
        assert_eq!(frame[1], 0x80 | 126);
        assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), 300);
        let mask = &frame[4..8];
        let unmasked: Vec<u8> = frame[8..]
            .iter()
            .zip(mask.iter().cycle())
            .map(|(b, m)| b ^ m)
            .collect();
        assert_eq!(unmasked, text.as_bytes());
    }

    /// A loopback server that answers the upgrade, then writes `frames` in pieces of
    /// `chunk` bytes, and returns what the client sent after the upgrade.
    async fn serve(
        frames: Vec<u8>,
        chunk: usize,
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                socket.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
            assert!(String::from_utf8_lossy(&head).contains("authorization: Bearer k\r\n"));
            let mut out =
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec();
            out.extend_from_slice(&frames);
            for piece in out.chunks(chunk) {
                socket.write_all(piece).await.unwrap();
                socket.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            socket.shutdown().await.unwrap();
            let mut sent = Vec::new();
            let _ = tokio::time::timeout(
                std::time::Duration::from_millis(300),
                socket.read_to_end(&mut sent),
            )
            .await;
            sent
        });
        (addr, server)
    }

    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = masked(opcode, payload);
        // Unmask: drop the mask bit and key, XOR the payload back.
        let at = frame.len() - payload.len();
        frame[1] &= 0x7f;
        frame.drain(at - 4..at);
        let at = at - 4;
        frame[at..].copy_from_slice(payload);
        frame
    }

    #[tokio::test]
    async fn frames_split_across_reads_and_larger_than_the_buffer_arrive_whole() {
        let big = "b".repeat(INITIAL_BUFFER * 3);
        let mut frames = Vec::new();
        frames.extend(server_frame(OP_TEXT, b"{\"op\":\"subscribed\"}"));
        frames.extend(server_frame(OP_PING, b"p1"));
        frames.extend(server_frame(OP_TEXT, big.as_bytes()));
        frames.extend(server_frame(OP_TEXT, b"last"));
        let mut close = 4000u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"send_timeout");
        frames.extend(server_frame(OP_CLOSE, &close));
        for chunk in [7, 1_000, 100_000] {
            let (addr, server) = serve(frames.clone(), chunk).await;
            let stream = TcpStream::connect(addr).await.unwrap();
            let mut feed = Feed::handshake(stream, "h", "/v1/ws", &[("authorization", "Bearer k")])
                .await
                .unwrap();
            assert_eq!(
                feed.next().await.unwrap(),
                Some(Frame::Text(b"{\"op\":\"subscribed\"}"))
            );
            assert_eq!(
                feed.next().await.unwrap(),
                Some(Frame::Text(big.as_bytes())),
                "chunk {chunk}"
            );
            assert_eq!(feed.next().await.unwrap(), Some(Frame::Text(b"last")));
            assert_eq!(
                feed.next().await.unwrap(),
                Some(Frame::Close(Some(4000), "send_timeout".into()))
            );
            assert_eq!(feed.next().await.unwrap(), None);
            drop(feed);
            // The ping was answered with a pong carrying its payload.
            assert_eq!(server.await.unwrap(), masked(OP_PONG, b"p1"));
        }
    }

    #[tokio::test]
    async fn a_refused_upgrade_names_the_status() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            socket
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        let error = Feed::handshake(stream, "h", "/v1/ws", &[])
            .await
            .err()
            .unwrap();
        assert!(error.to_string().contains("503"), "{error}");
    }
}
