//! Accepting events: parse and validate a request whole, then stamp and hand each event to
//! the hub. A client-chosen id makes a publish idempotent within a window: a repeat is
//! acknowledged with the original offset and not broadcast again.

use std::time::Duration;

use chrono::Utc;
use moka::future::Cache;
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

/// Most events one request may carry.
pub const MAX_BATCH: usize = 1_000;
/// Largest request body, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

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
    seen: Cache<Uuid, Routed>,
    router: Router,
    /// The Realtime path, and the validator told of every event routed there.
    realtime: Option<(RealtimePath, Validator)>,
}

impl Ingest {
    /// Events go to the hub always, and to `realtime` when the router's strategy says so.
    pub fn new(
        hub: Hub,
        idempotency_window: Duration,
        router: Router,
        realtime: Option<(RealtimePath, Validator)>,
    ) -> Self {
        let seen = Cache::builder()
            .max_capacity(1_000_000)
            .time_to_live(idempotency_window)
            .build();
        Self {
            hub,
            seen,
            router,
            realtime,
        }
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Parses a request body: one event object or an array of up to [`MAX_BATCH`]. Any bad
    /// event rejects the whole request.
    pub fn parse_body(body: &[u8]) -> Result<Vec<Event>, IngestError> {
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
        let entry = self
            .seen
            .entry(id)
            .or_insert_with(async move { self.route(event) })
            .await;
        Ok(Receipt {
            id,
            offset: entry.value().offset,
            realtime: entry.value().realtime,
            duplicate: !entry.is_fresh(),
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
    /// not remembered, so the client's retry is tried again.
    async fn accept_on_stream(
        &self,
        engine: &JetStream,
        event: Event,
    ) -> Result<Receipt, IngestError> {
        let id = event.id;
        let entry = self
            .seen
            .entry(id)
            .or_try_insert_with(async move {
                let strategy = self.router.current();
                let realtime = self.realtime.is_some() && strategy.routes_to_realtime(&event);
                let ack = engine.publish(&event, realtime).await?;
                Ok::<_, PublishFailure>(Routed {
                    offset: ack.sequence,
                    realtime: ack.realtime,
                    duplicate: ack.duplicate,
                })
            })
            .await?;
        Ok(Receipt {
            id,
            offset: entry.value().offset,
            realtime: entry.value().realtime,
            duplicate: !entry.is_fresh() || entry.value().duplicate,
        })
    }
}
