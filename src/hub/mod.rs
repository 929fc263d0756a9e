//! The hub: every accepted event, in memory, with its position in the stream, fanned out to
//! every subscriber. Nothing here touches a database, so the WebSocket path keeps delivering
//! when Postgres is gone (docs/architecture.md invariant 1).
//!
//! Positions are `(epoch, offset)`: the epoch is new on every start, the offset increases by one
//! per event. A history ring keeps the last events so a client can resume from its last
//! position (Centrifugo's model: a full replay, `recovered: true`, or none at all).
//!
//! Fan-out goes through one `tokio::sync::broadcast` channel carrying `Arc<Published>`: each
//! event is encoded once, at publish, and every subscriber sends the same bytes. The channel's
//! capacity is the per-subscriber queue: a subscriber that falls that far behind sees
//! `Lagged`, is told so, and catches up from the history ring, or is closed when even the ring
//! no longer holds what it missed. A slow subscriber never blocks the publisher or the others.
//!
//! A subscriber goes through the stream with a [`Cursor`] (`cursor.rs`), whatever protocol
//! carries it; every frame other than events is typed and encoded in `frames.rs`.

mod cursor;
mod filter;
mod footprint;
pub mod frames;
pub mod jetstream;
pub mod legacy;
mod limits;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use utoipa::ToSchema;

pub use cursor::{Cursor, Delivery, Start};
pub use filter::Filter;
pub use frames::{AlertState, SystemFrame, Transport};
pub use limits::HubLimits;

use crate::event::Event;

/// WebSocket close code for a subscriber that fell behind past the history ring. It resumes
/// by reconnecting with `since` = its last position (and gets `recovered: false` if that is
/// gone too).
pub const CLOSE_LAGGED_PAST_HISTORY: u16 = 4001;

/// System frames a client may fall behind before it misses some (they are also kept in
/// state the client can re-read: flags, breakers).
const SYSTEM_QUEUE: usize = 256;

/// A position in the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Position {
    pub epoch: String,
    pub offset: u64,
}

/// One event as published: its offset and its encodings, made once for every subscriber.
#[derive(Debug)]
pub struct Published {
    pub offset: u64,
    pub event: Event,
    /// `{"op":"event","offset":N,"event":{...}}`, the `/v1/ws` frame and the SSE data.
    pub frame: Utf8Bytes,
    /// The legacy dashboard frame of `/ws`.
    pub legacy_frame: Utf8Bytes,
    /// [`Published::held_bytes`], reckoned once.
    held: usize,
}

/// An event encoded as far as it can be without its offset: everything [`Published`] needs
/// that can be done before the ring's lock.
struct Prepared {
    event: Event,
    event_json: String,
    legacy_frame: Utf8Bytes,
    /// The parsed event's heap (`footprint`).
    event_bytes: usize,
}

impl Prepared {
    fn of(event: Event) -> Self {
        Self {
            event_json: serde_json::to_string(&event).expect("events serialize"),
            legacy_frame: frames::fitted(legacy::frame(&event)),
            event_bytes: footprint::event_bytes(&event),
            event,
        }
    }

    /// The event at `offset`: its `/v1` frame made and fitted, what it holds reckoned.
    fn at(self, offset: u64) -> Published {
        let event_json = self.event_json;
        let frame = frames::fitted(format!(
            r#"{{"op":"event","offset":{offset},"event":{event_json}}}"#
        ));
        Published {
            held: footprint::held_bytes(self.event_bytes, &frame, &self.legacy_frame),
            offset,
            event: self.event,
            frame,
            legacy_frame: self.legacy_frame,
        }
    }
}

impl Published {
    /// What holding this event costs in memory: the parsed event, both encodings and the
    /// allocations around them, as the allocator counts them (`footprint`). The history ring
    /// and the Realtime backlog count it against their byte budgets.
    pub fn held_bytes(&self) -> usize {
        self.held
    }
}

/// What a new subscriber starts from (a [`Cursor`] takes it over).
pub(crate) struct Subscription {
    /// Events it missed since the position it asked for (empty unless `recovered`).
    pub replay: Vec<Arc<Published>>,
    /// True when `since` was given and everything after it was still in history.
    pub recovered: bool,
    /// The newest offset at the moment of subscribing.
    pub head: u64,
    pub receiver: broadcast::Receiver<Arc<Published>>,
}

/// Counters an operator reads.
#[derive(Debug, Default)]
pub struct HubCounters {
    pub published: AtomicU64,
    pub lagged: AtomicU64,
    pub dropped_subscribers: AtomicU64,
    /// Subscriptions opened since start, every protocol.
    pub subscribers_total: AtomicU64,
}

struct Ring {
    head: u64,
    events: VecDeque<Arc<Published>>,
    /// What the held events hold in memory (see [`Published::held_bytes`]).
    bytes: usize,
}

/// The in-memory event stream. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    epoch: String,
    limits: HubLimits,
    ring: Mutex<Ring>,
    sender: broadcast::Sender<Arc<Published>>,
    /// System frames (`{"op":"system",...}`: flag changes, breaker transitions) for every
    /// `/v1/ws` and `/v1/stream` client. Rare and small, so one shared channel suffices.
    system: broadcast::Sender<Utf8Bytes>,
    legacy: legacy::LegacyStats,
    counters: HubCounters,
    /// Receivers that are not subscribers (`Hub::tap`), left out of `receiver_count`.
    taps: AtomicUsize,
    /// The NATS engine when positions are the stream's (`jetstream`); `None` in process.
    stream: Option<jetstream::JetStream>,
}

/// A view of every event published from its creation on, for switchyard's own use (the
/// consistency validator): not a subscriber, so not counted as a connection.
pub struct Tap {
    pub receiver: broadcast::Receiver<Arc<Published>>,
    hub: Arc<HubInner>,
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.hub.taps.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Hub {
    /// A hub that keeps `history` events and lets a subscriber fall `queue` events behind.
    pub fn new(history: usize, queue: usize) -> Self {
        Self::with_limits(
            HubLimits {
                history_events: history,
                ..HubLimits::default()
            },
            queue,
        )
    }

    /// A hub with these memory limits that lets a subscriber fall `queue` events behind.
    pub fn with_limits(limits: HubLimits, queue: usize) -> Self {
        let epoch = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        Self::build(limits, queue, epoch, 0, None)
    }

    fn build(
        limits: HubLimits,
        queue: usize,
        epoch: String,
        head: u64,
        stream: Option<jetstream::JetStream>,
    ) -> Self {
        let history = limits.history_events.max(1);
        let limits = HubLimits {
            history_events: history,
            history_bytes: limits.history_bytes.max(1),
            legacy_connection_types: limits.legacy_connection_types.max(1),
            legacy_answer_events: limits.legacy_answer_events.max(1),
            legacy_answer_bytes: limits.legacy_answer_bytes.max(1),
        };
        let (sender, _) = broadcast::channel(queue.max(1));
        let (system, _) = broadcast::channel(SYSTEM_QUEUE);
        Self {
            inner: Arc::new(HubInner {
                epoch,
                limits,
                ring: Mutex::new(Ring {
                    head,
                    events: VecDeque::with_capacity(history.min(65_536)),
                    bytes: 0,
                }),
                sender,
                system,
                legacy: legacy::LegacyStats::new(limits.legacy_connection_types),
                counters: HubCounters::default(),
                taps: AtomicUsize::new(0),
                stream,
            }),
        }
    }

    pub fn epoch(&self) -> &str {
        &self.inner.epoch
    }

    pub fn head(&self) -> u64 {
        self.lock_ring().head
    }

    pub fn counters(&self) -> &HubCounters {
        &self.inner.counters
    }

    pub fn limits(&self) -> &HubLimits {
        &self.inner.limits
    }

    /// Events the history ring holds now, and the bytes they hold ([`Published::held_bytes`]).
    pub fn history_held(&self) -> (usize, usize) {
        let ring = self.lock_ring();
        (ring.events.len(), ring.bytes)
    }

    pub fn legacy_stats(&self) -> &legacy::LegacyStats {
        &self.inner.legacy
    }

    /// Subscribers attached right now, all protocols.
    pub fn receiver_count(&self) -> usize {
        let taps = self.inner.taps.load(Ordering::Relaxed);
        self.inner.sender.receiver_count().saturating_sub(taps)
    }

    /// Receives every event published from now on, without counting as a subscriber.
    pub fn tap(&self) -> Tap {
        self.inner.taps.fetch_add(1, Ordering::Relaxed);
        Tap {
            receiver: self.inner.sender.subscribe(),
            hub: self.inner.clone(),
        }
    }

    /// Stamps the event with the next offset, keeps it in history and sends it to every
    /// subscriber. Encoding happens before the lock; the lock covers only the ring and the send,
    /// so offsets reach the channel in order.
    pub fn publish(&self, event: Event) -> u64 {
        self.publish_shared(event).offset
    }

    /// [`Hub::publish`], returning the published event itself (for the Realtime path).
    pub fn publish_shared(&self, event: Event) -> Arc<Published> {
        self.inner.legacy.record(&event);
        let prepared = Prepared::of(event);
        let mut ring = self.lock_ring();
        ring.head += 1;
        let published = Arc::new(prepared.at(ring.head));
        self.keep(&mut ring, published.clone());
        // No receivers is fine: the event is in history for whoever connects next.
        let _ = self.inner.sender.send(published.clone());
        self.inner
            .counters
            .published
            .fetch_add(1, Ordering::Relaxed);
        published
    }

    /// Keeps `published` in the ring, evicting the oldest events while the ring is over its
    /// count or byte budget. Called with the ring locked, before the send.
    fn keep(&self, ring: &mut Ring, published: Arc<Published>) {
        let size = published.held_bytes();
        let limits = &self.inner.limits;
        while !ring.events.is_empty()
            && (ring.events.len() >= limits.history_events
                || ring.bytes.saturating_add(size) > limits.history_bytes)
        {
            if let Some(old) = ring.events.pop_front() {
                ring.bytes = ring.bytes.saturating_sub(old.held_bytes());
            }
        }
        ring.bytes = ring.bytes.saturating_add(size);
        ring.events.push_back(published);
    }

    /// Sends a system frame to every connected `/v1/ws` and `/v1/stream` client, encoded once.
    pub fn publish_system(&self, frame: &SystemFrame) {
        // No receivers is fine: system frames describe state a client can re-read.
        let _ = self.inner.system.send(frame.encode());
    }

    /// Receives system frames from now on.
    pub fn subscribe_system(&self) -> broadcast::Receiver<Utf8Bytes> {
        self.inner.system.subscribe()
    }

    /// Attaches a subscriber. With `since`, it gets every event after that position if history
    /// still holds all of them, and nothing from history otherwise (never a partial replay).
    /// Subscribers attach through [`Cursor`], which handles what follows.
    pub(crate) fn subscribe(&self, since: Option<&Position>) -> Subscription {
        self.inner
            .counters
            .subscribers_total
            .fetch_add(1, Ordering::Relaxed);
        let ring = self.lock_ring();
        let receiver = self.inner.sender.subscribe();
        let head = ring.head;
        let (replay, recovered) = match since {
            Some(pos) if pos.epoch == self.inner.epoch && pos.offset <= head => {
                match Self::after(&ring, pos.offset) {
                    Some(events) => (events, true),
                    None => (Vec::new(), false),
                }
            }
            _ => (Vec::new(), false),
        };
        Subscription {
            replay,
            recovered,
            head,
            receiver,
        }
    }

    /// Every event after `offset`, if the ring still holds all of them.
    pub(crate) fn since(&self, offset: u64) -> Option<Vec<Arc<Published>>> {
        Self::after(&self.lock_ring(), offset)
    }

    /// The newest `limit` events, oldest first.
    pub fn recent(&self, limit: usize) -> Vec<Arc<Published>> {
        let ring = self.lock_ring();
        let skip = ring.events.len().saturating_sub(limit);
        ring.events.iter().skip(skip).cloned().collect()
    }

    fn after(ring: &Ring, offset: u64) -> Option<Vec<Arc<Published>>> {
        if offset >= ring.head {
            return Some(Vec::new());
        }
        let first = ring.events.front()?.offset;
        if offset + 1 < first {
            return None;
        }
        let skip = (offset + 1 - first) as usize;
        Some(ring.events.iter().skip(skip).cloned().collect())
    }

    fn lock_ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic while holding this lock cannot leave the ring half-written (push and pop are
        // single operations), so a poisoned lock is still safe to use.
        self.inner
            .ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests;
