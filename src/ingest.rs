//! Accepting events: parse and validate a request whole, then stamp and hand each event to
//! the hub. A client-chosen id makes a publish idempotent within a window: a repeat is
//! acknowledged with the original offset and not broadcast again.

use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::event::{Event, FieldError, parse_event};
use crate::hub::Hub;
use crate::hub::jetstream::{JetStream, PublishFailure};
use crate::realtime::RealtimePath;
use crate::router::Router;
use crate::validator::Validator;
use seen::SeenIds;

mod seen;

/// Most events one request may carry.
pub const MAX_BATCH: usize = 1_000;
/// Largest request body, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest single event (its compact JSON), in bytes, unless configured
/// (`SWITCHYARD_MAX_EVENT_BYTES`): the body limit alone would let one 1 MiB event into the
/// history ring, the backlog and every subscriber's queue.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 64 * 1024;
/// Most event ids the idempotency window remembers at once (about 70 MiB at the most); past
/// it the oldest are forgotten early.
const MAX_REMEMBERED_IDS: usize = 1_000_000;

/// Why a request's events were not accepted: the whole request is refused.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The body is not JSON at all.
    #[error("the body is not valid JSON: {0}")]
    NotJson(serde_json::Error),
    /// More than [`MAX_BATCH`] events in one request.
    #[error("a request carries at most {MAX_BATCH} events (got {0})")]
    TooManyEvents(usize),
    /// Some events (or the batch itself) are invalid: each bad field, with its event's index.
    #[error("{} invalid field(s)", .0.len())]
    Invalid(Vec<FieldError>),
    /// On NATS, the stream could not take the event (unreachable, or no acknowledgement):
    /// refused rather than accepted without being durable for the other instances. Events of
    /// the request before it were accepted; a retry with the same ids is de-duplicated.
    #[error("{0}")]
    StreamUnavailable(#[from] std::sync::Arc<PublishFailure>),
    /// Some events are larger than the maximum event size: each one, by its index.
    #[error("{} event(s) larger than the maximum event size", .0.len())]
    EventTooLarge(Vec<FieldError>),
}

/// The error naming `item` when its compact JSON is over `max_bytes`. Counted without
/// building the text, and stopped as soon as the limit is passed.
fn oversized(item: &Value, index: Option<usize>, max_bytes: usize) -> Option<FieldError> {
    struct Counter {
        bytes: usize,
        max: usize,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.bytes = self.bytes.saturating_add(buf.len());
            if self.bytes > self.max {
                return Err(std::io::Error::other("over the limit"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter {
        bytes: 0,
        max: max_bytes,
    };
    serde_json::to_writer(&mut counter, item).err()?;
    Some(FieldError {
        index,
        field: String::new(),
        message: format!(
            "the event is larger than the {max_bytes}-byte maximum event size (SWITCHYARD_MAX_EVENT_BYTES)"
        ),
    })
}

/// What the publisher is told about one event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Receipt {
    pub id: Uuid,
    pub offset: u64,
    /// Whether the active strategy routed the event to the Realtime path too (every event
    /// goes to the WebSocket path). Decided once per event, by the strategy in force when it
    /// arrived; a duplicate reports the original decision.
    pub realtime: bool,
    /// True when this id was already published within the idempotency window: the event was
    /// acknowledged, not broadcast again, and `offset` is the original one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

/// Where an accepted event went: its hub offset, and whether it was routed to Realtime.
#[derive(Debug, Clone, Copy)]
struct Routed {
    offset: u64,
    realtime: bool,
    /// The stream already held this id (sent to another instance first).
    duplicate: bool,
}

#[derive(Clone)]
pub struct Ingest {
    hub: Hub,
    seen: SeenIds<Routed>,
    router: Router,
    /// The Realtime path, and the validator told of every event routed there.
    realtime: Option<(RealtimePath, Validator)>,
    max_event_bytes: usize,
}

impl Ingest {
    /// Events go to the hub always, and to `realtime` when the router's strategy says so.
    pub fn new(
        hub: Hub,
        idempotency_window: Duration,
        router: Router,
        realtime: Option<(RealtimePath, Validator)>,
    ) -> Self {
        let seen = SeenIds::new(idempotency_window, MAX_REMEMBERED_IDS);
        Self {
            hub,
            seen,
            router,
            realtime,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
        }
    }

    /// The largest event (compact JSON, in bytes) this ingest accepts.
    pub fn with_max_event_bytes(mut self, max_event_bytes: usize) -> Self {
        self.max_event_bytes = max_event_bytes.max(1);
        self
    }

    /// Parses a request body with this ingest's limits (see [`Ingest::parse_body`]).
    pub fn parse(&self, body: &[u8]) -> Result<Vec<Event>, IngestError> {
        Self::parse_body(body, self.max_event_bytes)
    }

    /// Parses one event (a legacy ingest frame) with this ingest's limits.
    pub fn parse_one(&self, value: &Value) -> Result<Event, Vec<FieldError>> {
        if let Some(too_large) = oversized(value, None, self.max_event_bytes) {
            return Err(vec![too_large]);
        }
        parse_event(value, None, Utc::now())
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Parses a request body: one event object or an array of up to [`MAX_BATCH`], each at
    /// most `max_event_bytes` of compact JSON. Any bad event rejects the whole request; an
    /// oversized one makes it a 413 naming each oversized event.
    pub fn parse_body(body: &[u8], max_event_bytes: usize) -> Result<Vec<Event>, IngestError> {
        let value: Value = serde_json::from_slice(body).map_err(IngestError::NotJson)?;
        let now = Utc::now();
        let items: Vec<&Value> = match &value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        if items.len() > MAX_BATCH {
            return Err(IngestError::TooManyEvents(items.len()));
        }
        if items.is_empty() {
            return Err(IngestError::Invalid(vec![FieldError {
                index: None,
                field: "".into(),
                message: "the batch is empty: send one event object or a non-empty array".into(),
            }]));
        }
        let too_large: Vec<FieldError> = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| oversized(item, Some(i), max_event_bytes))
            .collect();
        if !too_large.is_empty() {
            return Err(IngestError::EventTooLarge(too_large));
        }
        let mut events = Vec::with_capacity(items.len());
        let mut errors = Vec::new();
        // Every error names its event's index, 0 for a single object (as `FieldError` says).
        for (i, item) in items.into_iter().enumerate() {
            match parse_event(item, Some(i), now) {
                Ok(event) => events.push(event),
                Err(mut bad) => errors.append(&mut bad),
            }
        }
        if errors.is_empty() {
            Ok(events)
        } else {
            Err(IngestError::Invalid(errors))
        }
    }

    /// Stamps and publishes validated events, in order. On NATS, stops at the first event the
    /// stream cannot take.
    pub async fn accept(&self, events: Vec<Event>) -> Result<Vec<Receipt>, IngestError> {
        let mut receipts = Vec::with_capacity(events.len());
        for event in events {
            receipts.push(self.accept_one(event).await?);
        }
        Ok(receipts)
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Stamps one event and routes it: the hub always (the WebSocket path), the Realtime path
    /// when the strategy in force says so. The strategy is loaded once, so the event is routed
    /// by exactly one strategy even while a flag change swaps it.
    pub async fn accept_one(&self, event: Event) -> Result<Receipt, IngestError> {
        if let Some(engine) = self.hub.stream() {
            return self.accept_on_stream(engine, event).await;
        }
        let id = event.id;
        let (routed, fresh) = self.seen.get_or_record(id, || self.route(event));
        Ok(Receipt {
            id,
            offset: routed.offset,
            realtime: routed.realtime,
            duplicate: !fresh,
        })
    }

    fn route(&self, event: Event) -> Routed {
        let strategy = self.router.current();
        let realtime = self
            .realtime
            .as_ref()
            .filter(|_| strategy.routes_to_realtime(&event));
        if let Some((_, validator)) = realtime {
            // Before the hub sends it, so the validator knows the event when it sees the frame.
            validator.expect(&event);
        }
        let published = self.hub.publish_shared(event);
        if let Some((realtime, _)) = realtime {
            realtime.submit(published.clone());
        }
        Routed {
            offset: published.offset,
            realtime: realtime.is_some(),
            duplicate: false,
        }
    }

    /// On NATS: the event goes to the stream with its routing decision; every instance's
    /// follower fans it out (and tells its validator), and the shared work queue writes it to
    /// Realtime once (`realtime::feed`). The offset is the stream sequence. A failed publish is
    /// not remembered, so the client's retry is tried again. Two requests with the same id at
    /// once may both publish: the stream's own de-duplication (the id is the `Nats-Msg-Id`)
    /// answers the second with the first's sequence and routing.
    async fn accept_on_stream(
        &self,
        engine: &JetStream,
        event: Event,
    ) -> Result<Receipt, IngestError> {
        let id = event.id;
        if let Some(seen) = self.seen.get(&id) {
            return Ok(Receipt {
                id,
                offset: seen.offset,
                realtime: seen.realtime,
                duplicate: true,
            });
        }
        let strategy = self.router.current();
        let realtime = self.realtime.is_some() && strategy.routes_to_realtime(&event);
        let ack = engine
            .publish(&event, realtime)
            .await
            .map_err(std::sync::Arc::new)?;
        let routed = Routed {
            offset: ack.sequence,
            realtime: ack.realtime,
            duplicate: ack.duplicate,
        };
        self.seen.record(id, routed);
        Ok(Receipt {
            id,
            offset: routed.offset,
            realtime: routed.realtime,
            duplicate: routed.duplicate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_over_the_size_limit_is_refused_by_its_index() {
        let small = r#"{"event_type":"x","source":"s"}"#;
        let big = format!(
            r#"{{"event_type":"x","source":"s","data":{{"b":"{}"}}}}"#,
            "a".repeat(200)
        );
        let body = format!("[{small},{big},{small}]");
        match Ingest::parse_body(body.as_bytes(), 100) {
            Err(IngestError::EventTooLarge(errors)) => {
                assert_eq!(errors.len(), 1);
                assert_eq!(errors[0].index, Some(1));
            }
            other => panic!("expected EventTooLarge, got {other:?}"),
        }
        assert_eq!(Ingest::parse_body(body.as_bytes(), 1_000).unwrap().len(), 3);
    }
}
