//! A Server-Sent Events client for tests, parsing `text/event-stream` by hand over reqwest's
//! byte stream, so the test sees exactly what a browser's EventSource would.

use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::Value;

use super::{Credential, TestApp, WAIT};

/// One SSE event: its fields as sent (`event` defaults to `message`, as in browsers).
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("JSON data")
    }
}

/// An open event stream.
pub struct SseClient {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    buffer: Vec<u8>,
}

impl SseClient {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            body: Box::pin(response.bytes_stream()),
            buffer: Vec::new(),
        }
    }

    /// The next event, skipping comment-only blocks (keep-alives); `None` when the stream
    /// ended. Fails after `WAIT`.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = find(&self.buffer, b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_block(&String::from_utf8_lossy(&block)) {
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout(WAIT, self.body.next())
                .await
                .expect("no SSE data arrived in time");
            match chunk {
                Some(Ok(bytes)) => self.buffer.extend_from_slice(&bytes),
                Some(Err(e)) => panic!("the event stream failed: {e}"),
                None => return None,
            }
        }
    }

    /// The next switchyard event, past any system events (out of band, not part of the event
    /// stream); returns its `id` and frame. Any other event fails.
    pub async fn next_event(&mut self) -> (u64, Value) {
        let event = loop {
            let event = self.next().await.expect("the stream ended");
            if event.event != "system" {
                break event;
            }
        };
        assert_eq!(event.event, "event", "expected an event: {event:?}");
        let id = event
            .id
            .as_deref()
            .expect("an event carries an id")
            .parse()
            .expect("the id is an offset");
        (id, event.json())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One event block per the SSE spec: `field: value` lines, one optional space after the colon,
/// `data` lines joined by newlines, lines starting with `:` are comments.
fn parse_block(block: &str) -> Option<SseEvent> {
    let mut id = None;
    let mut event = None;
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.to_string()),
            "event" => event = Some(value.to_string()),
            "data" => data.push(value),
            _ => {}
        }
    }
    if id.is_none() && event.is_none() && data.is_empty() {
        return None;
    }
    Some(SseEvent {
        id,
        event: event.unwrap_or_else(|| "message".into()),
        data: data.join("\n"),
    })
}

impl TestApp {
    /// `GET /v1/stream?{query}` with a credential and an optional `Last-Event-ID`.
    pub async fn open_stream(
        &self,
        query: &str,
        credential: Credential<'_>,
        last_event_id: Option<&str>,
    ) -> reqwest::Response {
        let url = credential.url(self.url(&format!("/v1/stream?{query}")));
        let mut request = self.client.get(url);
        if let Some((name, value)) = credential.header() {
            request = request.header(name, value);
        }
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        request.send().await.expect("GET /v1/stream")
    }

    /// An admin event stream with this query, past its `subscribed` event (returned too).
    /// Once it is returned, every event published is delivered to this stream.
    pub async fn stream(&self, query: &str) -> (SseClient, Value) {
        self.resume_stream(query, None).await
    }

    /// As [`TestApp::stream`], resuming after `Last-Event-ID`.
    pub async fn resume_stream(
        &self,
        query: &str,
        last_event_id: Option<&str>,
    ) -> (SseClient, Value) {
        let response = self.open_stream(query, self.admin(), last_event_id).await;
        assert_eq!(response.status().as_u16(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        let mut sse = SseClient::new(response);
        let hello = sse.next().await.expect("a subscribed event");
        assert_eq!(hello.event, "subscribed", "{hello:?}");
        (sse, hello.json())
    }
}
