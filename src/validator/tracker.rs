//! The validator's bookkeeping, pure: which dual-written events are waiting for which path,
//! and what each one turned out to be. No I/O and no clock of its own: every call says when it
//! happened, so the rules are unit-tested with made-up instants.
//!
//! An event is *expected* when ingest routes it to Realtime. It is *resolved* when both paths
//! have shown it (the WebSocket path's frame, the Realtime table's row read back) — matched, or
//! a `payload_mismatch` when their checksums differ — or when its deadline passes without one
//! of them: `missing_in_websocket` / `missing_in_realtime`. The deadline is the order window
//! (30 s) after ingest plus a grace for a write in flight, pushed back while the Realtime path
//! may still hold the event back ([`Held`]: this instance's backlog holds events, or, on a
//! shared NATS stream, the event is above the work queue's ack floor, in the queue or with any
//! instance): those are pending, not missing. A row that arrives after the window is `late`;
//! one whose offset is below an offset of its category already committed, within the window, is
//! `out_of_order`; a second WebSocket frame of the same event is a `duplicate` (the Realtime
//! table cannot hold a second row: its primary key is the event id).
//!
//! Memory is bounded: at most `capacity` events are tracked, and ids resolved recently are
//! remembered (to recognise duplicates) in a ring of the same size. Events past the capacity
//! are counted as unchecked, never as discrepancies.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::checksum::Checksum;
use crate::event::Category;

/// A kind of disagreement between the paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Discrepancy {
    MissingInRealtime,
    MissingInWebsocket,
    PayloadMismatch,
    Duplicate,
    OutOfOrder,
    Late,
    /// The target refused the row for its content; it is in the control store's quarantine
    /// with the error (reported apart from `missing_in_realtime`: it is known, not lost).
    Quarantined,
}

/// How many kinds of [`Discrepancy`] there are.
pub const DISCREPANCY_KINDS: usize = 7;

impl Discrepancy {
    pub const ALL: [Discrepancy; DISCREPANCY_KINDS] = [
        Self::MissingInRealtime,
        Self::MissingInWebsocket,
        Self::PayloadMismatch,
        Self::Duplicate,
        Self::OutOfOrder,
        Self::Late,
        Self::Quarantined,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingInRealtime => "missing_in_realtime",
            Self::MissingInWebsocket => "missing_in_websocket",
            Self::PayloadMismatch => "payload_mismatch",
            Self::Duplicate => "duplicate",
            Self::OutOfOrder => "out_of_order",
            Self::Late => "late",
            Self::Quarantined => "quarantined",
        }
    }

    pub fn index(self) -> usize {
        Self::ALL.iter().position(|d| *d == self).expect("listed")
    }
}

/// What became of one event (or, for a duplicate, of one extra sighting).
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub id: Uuid,
    pub category: Category,
    /// False for a duplicate sighting: it adds a discrepancy, not an expected event.
    pub counts_as_expected: bool,
    /// Both paths carried it with the same payload (late or out of order included).
    pub matched: bool,
    pub discrepancies: Vec<Discrepancy>,
    /// Ingest -> WebSocket send, and ingest -> Realtime commit.
    pub websocket_latency: Option<Duration>,
    pub realtime_latency: Option<Duration>,
}

#[derive(Debug, Clone, Copy)]
struct Sighting {
    at: Instant,
    checksum: Checksum,
}

#[derive(Debug)]
struct Entry {
    category: Category,
    ingest_at: Instant,
    offset: Option<u64>,
    websocket: Option<Sighting>,
    realtime: Option<Sighting>,
    late: bool,
    out_of_order: bool,
}

/// What the Realtime path still holds back: its events are pending, not missing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// This instance's backlog, spill or dead letter holds events (any of them may be one).
    pub backlog: bool,
    /// With the shared NATS work queue: its ack floor. A routed event at a higher offset is
    /// still in the queue or held by some instance (`RealtimePath::work_queue_floor`).
    pub above: Option<u64>,
}

impl Held {
    /// Whether an event at `offset` (as the WebSocket path showed it) may still be held back.
    fn holds(self, offset: Option<u64>) -> bool {
        self.backlog || self.above.zip(offset).is_some_and(|(floor, at)| at > floor)
    }
}

/// Only this instance's backlog (the in-process hub).
impl From<bool> for Held {
    fn from(backlog: bool) -> Self {
        Self {
            backlog,
            above: None,
        }
    }
}

/// When the validator's view of each path last fell behind.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gaps {
    pub websocket: Option<Instant>,
    pub realtime: Option<Instant>,
}

pub struct Tracker {
    entries: HashMap<Uuid, Entry>,
    /// (deadline, id), in deadline order.
    deadlines: VecDeque<(Instant, Uuid)>,
    resolved: HashSet<Uuid>,
    resolved_order: VecDeque<Uuid>,
    /// The highest offset committed to Realtime so far, per category.
    highest_committed: [Option<u64>; 5],
    capacity: usize,
    window: Duration,
    grace: Duration,
    unchecked: u64,
}

fn category_index(category: Category) -> usize {
    Category::ALL
        .iter()
        .position(|c| *c == category)
        .expect("listed")
}

impl Tracker {
    /// `window`: the order window; `grace`: added to it before a path that never showed an
    /// event is declared to have lost it.
    pub fn new(capacity: usize, window: Duration, grace: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            deadlines: VecDeque::new(),
            resolved: HashSet::new(),
            resolved_order: VecDeque::new(),
            highest_committed: [None; 5],
            capacity: capacity.max(1),
            window,
            grace,
            unchecked: 0,
        }
    }

    /// Events being tracked now (not yet resolved).
    pub fn pending(&self) -> usize {
        self.entries.len()
    }

    /// Events left unchecked: over capacity, or seen by neither path before a gap in the
    /// validator's own observation.
    pub fn unchecked(&self) -> u64 {
        self.unchecked
    }

    pub fn count_unchecked(&mut self, n: u64) {
        self.unchecked += n;
    }

    pub fn knows(&self, id: &Uuid) -> bool {
        self.entries.contains_key(id) || self.resolved.contains(id)
    }

    /// Ingest routed `id` to Realtime at `at`. False when over capacity (counted unchecked).
    pub fn expect(&mut self, id: Uuid, category: Category, at: Instant) -> bool {
        if self.entries.len() >= self.capacity {
            self.unchecked += 1;
            return false;
        }
        self.entries.insert(
            id,
            Entry {
                category,
                ingest_at: at,
                offset: None,
                websocket: None,
                realtime: None,
                late: false,
                out_of_order: false,
            },
        );
        self.deadlines
            .push_back((at + self.window + self.grace, id));
        true
    }

    /// The WebSocket path sent `id` (offset `offset`) at `at`.
    pub fn saw_websocket(
        &mut self,
        id: Uuid,
        category: Category,
        offset: u64,
        at: Instant,
        checksum: Checksum,
    ) -> Option<Resolution> {
        let Some(entry) = self.entries.get_mut(&id) else {
            return self.duplicate_if_resolved(id, category);
        };
        if entry.websocket.is_some() {
            return Some(duplicate(id, entry.category));
        }
        entry.offset = Some(offset);
        entry.websocket = Some(Sighting { at, checksum });
        self.resolve_if_complete(id)
    }

    /// The Realtime table holds `id` (read back), committed at `at`. The table's primary key
    /// makes a second row impossible, and a replay that finds its row already there (a write
    /// that timed out after committing) is not a second delivery, so a repeated sighting here
    /// is ignored rather than counted as a duplicate.
    pub fn saw_realtime(
        &mut self,
        id: Uuid,
        category: Category,
        offset: u64,
        at: Instant,
        checksum: Checksum,
    ) -> Option<Resolution> {
        let slot = category_index(category);
        let entry = self.entries.get_mut(&id)?;
        if entry.realtime.is_some() {
            return None;
        }
        let highest = self.highest_committed[slot];
        self.highest_committed[slot] = Some(highest.map_or(offset, |h| h.max(offset)));
        let within_window = at.saturating_duration_since(entry.ingest_at) <= self.window;
        entry.late = !within_window;
        entry.out_of_order = within_window && highest.is_some_and(|h| h > offset);
        entry.realtime = Some(Sighting { at, checksum });
        self.resolve_if_complete(id)
    }

    /// The commit of `id` was announced but its row is not in the table: it was removed (or
    /// never landed) after the write said it did.
    /// The Realtime path quarantined the event: it will never be in the table, and it is
    /// reported as `quarantined` at once rather than missing after the deadline.
    pub fn row_quarantined(&mut self, id: Uuid) -> Option<Resolution> {
        let entry = self.entries.get(&id)?;
        if entry.realtime.is_some() {
            return None;
        }
        let mut resolution = self.finish(id)?;
        resolution.discrepancies.push(Discrepancy::Quarantined);
        Some(resolution)
    }

    pub fn row_absent(&mut self, id: Uuid) -> Option<Resolution> {
        let entry = self.entries.get(&id)?;
        if entry.realtime.is_some() {
            return None;
        }
        let mut resolution = self.finish(id)?;
        resolution
            .discrepancies
            .push(Discrepancy::MissingInRealtime);
        Some(resolution)
    }

    /// Resolves every event whose deadline has passed by `now`. An event not yet in the table
    /// that the Realtime path still holds back (`held`) gets a new deadline instead of being
    /// declared missing. `gaps`: when the validator's own view of a path last lost notices (it
    /// fell behind); events ingested before that which it never saw on that path are
    /// unchecked rather than missing.
    pub fn expire(&mut self, now: Instant, held: impl Into<Held>, gaps: Gaps) -> Vec<Resolution> {
        let held = held.into();
        let mut resolutions = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            let Some(entry) = self.entries.get(&id) else {
                continue;
            };
            if entry.realtime.is_none() && held.holds(entry.offset) {
                self.deadlines
                    .push_back((now + self.window + self.grace, id));
                continue;
            }
            let before = |gap: Option<Instant>| gap.is_some_and(|gap| entry.ingest_at <= gap);
            let unseen_in_gap = (entry.websocket.is_none() && before(gaps.websocket))
                || (entry.realtime.is_none() && before(gaps.realtime));
            let (no_websocket, no_realtime) = (entry.websocket.is_none(), entry.realtime.is_none());
            let Some(mut resolution) = self.finish(id) else {
                continue;
            };
            if unseen_in_gap {
                self.unchecked += 1;
                continue;
            }
            if no_websocket {
                resolution
                    .discrepancies
                    .push(Discrepancy::MissingInWebsocket);
            }
            if no_realtime {
                resolution
                    .discrepancies
                    .push(Discrepancy::MissingInRealtime);
            }
            resolutions.push(resolution);
        }
        resolutions
    }

    fn resolve_if_complete(&mut self, id: Uuid) -> Option<Resolution> {
        let entry = self.entries.get(&id)?;
        let (Some(websocket), Some(realtime)) = (entry.websocket, entry.realtime) else {
            return None;
        };
        let (late, out_of_order) = (entry.late, entry.out_of_order);
        let mut resolution = self.finish(id)?;
        resolution.matched = websocket.checksum == realtime.checksum;
        if !resolution.matched {
            resolution.discrepancies.push(Discrepancy::PayloadMismatch);
        }
        if late {
            resolution.discrepancies.push(Discrepancy::Late);
        }
        if out_of_order {
            resolution.discrepancies.push(Discrepancy::OutOfOrder);
        }
        Some(resolution)
    }

    /// Stops tracking `id`, remembering it as resolved; its latencies so far.
    fn finish(&mut self, id: Uuid) -> Option<Resolution> {
        let entry = self.entries.remove(&id)?;
        self.resolved.insert(id);
        self.resolved_order.push_back(id);
        if self.resolved_order.len() > self.capacity
            && let Some(old) = self.resolved_order.pop_front()
        {
            self.resolved.remove(&old);
        }
        let since =
            |s: Option<Sighting>| s.map(|s| s.at.saturating_duration_since(entry.ingest_at));
        Some(Resolution {
            id,
            category: entry.category,
            counts_as_expected: true,
            matched: false,
            discrepancies: Vec::new(),
            websocket_latency: since(entry.websocket),
            realtime_latency: since(entry.realtime),
        })
    }

    /// A sighting of an id no longer tracked: a duplicate if it was resolved recently,
    /// otherwise an event the validator never expected (routed before it was enabled).
    fn duplicate_if_resolved(&self, id: Uuid, category: Category) -> Option<Resolution> {
        self.resolved.contains(&id).then(|| duplicate(id, category))
    }
}

fn duplicate(id: Uuid, category: Category) -> Resolution {
    Resolution {
        id,
        category,
        counts_as_expected: false,
        matched: false,
        discrepancies: vec![Discrepancy::Duplicate],
        websocket_latency: None,
        realtime_latency: None,
    }
}

#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;
