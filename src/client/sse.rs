//! A small `text/event-stream` reader over a response body, for the commands that follow a
//! stream (`breaker watch`): it yields each event's name and data and skips keep-alives.

use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

/// One server-sent event (`event` is `message` when the server named none, as in browsers).
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

pub struct SseReader {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    buffer: Vec<u8>,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            body: Box::pin(response.bytes_stream()),
            buffer: Vec::new(),
        }
    }

    /// The next event; `None` when the server ended the stream.
    pub async fn next(&mut self) -> anyhow::Result<Option<SseEvent>> {
        loop {
            if let Some((end, separator)) = block_end(&self.buffer) {
                let block: Vec<u8> = self.buffer.drain(..end + separator).collect();
                if let Some(event) = parse_block(&String::from_utf8_lossy(&block)) {
                    return Ok(Some(event));
                }
                continue;
            }
            match self.body.next().await {
                Some(Ok(bytes)) => self.buffer.extend_from_slice(&bytes),
                Some(Err(e)) => anyhow::bail!("the stream broke off: {e}"),
                None => return Ok(None),
            }
        }
    }
}

/// Where the first event block ends, and the length of the blank line that ends it.
fn block_end(buffer: &[u8]) -> Option<(usize, usize)> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// An event from one block, or `None` for a block of comments (a keep-alive).
fn parse_block(block: &str) -> Option<SseEvent> {
    let (mut event, mut data, mut any) = (None, Vec::new(), false);
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => {
                event = Some(value.to_string());
                any = true;
            }
            "data" => {
                data.push(value);
                any = true;
            }
            _ => {}
        }
    }
    any.then(|| SseEvent {
        event: event.unwrap_or_else(|| "message".into()),
        data: data.join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_gives_its_event_name_and_joined_data() {
        let event = parse_block("event: state\ndata: {\"a\":\ndata: 1}\n").unwrap();
        assert_eq!(event.event, "state");
        assert_eq!(event.data, "{\"a\":\n1}");
    }

    #[test]
    fn a_keep_alive_comment_is_not_an_event() {
        assert_eq!(parse_block(": keep-alive\n"), None);
    }

    #[test]
    fn the_first_blank_line_ends_a_block_whichever_line_endings_are_used() {
        assert_eq!(block_end(b"data: 1\n\ndata: 2\r\n\r\n"), Some((7, 2)));
        assert_eq!(block_end(b"data: 1\r\n\r\n"), Some((7, 4)));
        assert_eq!(block_end(b"data: 1\n"), None);
    }
}
