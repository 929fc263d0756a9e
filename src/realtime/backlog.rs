//! The Realtime backlog: events that could not be written (the breaker is not closed, a write
//! failed or timed out, or the queue in front of the batcher was full), held in stream order
//! until they are replayed. Pure code; the path holds it behind a mutex that is never held
//! across an `.await`.
//!
//! # Semantics
//!
//! - **Order.** Entries are kept by stream offset, whatever order they arrive in: a failed
//!   batch re-entering the backlog goes back in front of younger events, and events that
//!   overflowed the queue straight into the backlog are sorted among the ones still queued.
//!   Replay takes from the front.
//! - **Bounded.** Beyond `capacity` events, or `byte_capacity` bytes (what each event holds in
//!   memory, [`crate::hub::Published::held_bytes`]; one event alone is always held), the
//!   youngest entries overflow (the backlog stays the oldest
//!   stretch of the stream, so replay stays in order). What happens to it depends on the
//!   [`Overflow`] mode:
//!   - [`Overflow::DeadLetter`] (the target is another database than the control store): it
//!     joins the *spill*, a buffer the path writes to the control store's dead-letter table.
//!     From then on the dead letter is the backlog's tail: every event younger than the
//!     backlog spills too (nothing overtakes the dead letter; an older one, from a failed
//!     batch, still goes in memory and pushes the youngest out) until the dead letter has been
//!     replayed, which happens after the memory part and in stream order. If the spill buffer
//!     itself is full (the control store is not keeping up), the event is dropped.
//!   - [`Overflow::Drop`] (target and control store are one database, so a dead letter there
//!     would fail with the target): it is dropped.
//!
//!   A drop is counted and reported by the path (status and a warning), never silent.

use std::collections::{BTreeMap, VecDeque};

use tokio::time::Instant;

use uuid::Uuid;

use super::Pending;

/// Where the backlog's overflow goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    DeadLetter,
    Drop,
}

/// What became of an event handed to the backlog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// In memory, waiting for replay.
    InMemory,
    /// The event (or a younger one it displaced) is on its way to the dead letter.
    Spilled,
    /// The event (or younger ones it displaced) is lost, and must be counted: these.
    Dropped(Vec<Uuid>),
}

#[derive(Debug)]
pub struct Backlog {
    capacity: usize,
    /// Bytes the memory part may hold; the spill buffer has the same budget of its own.
    byte_capacity: usize,
    bytes: usize,
    spill_capacity: usize,
    spill_bytes: usize,
    overflow: Overflow,
    entries: BTreeMap<u64, Pending>,
    spill: VecDeque<Pending>,
    /// True while the dead letter may hold events of this path: younger events spill behind
    /// them. Cleared when a replay finds the dead letter empty.
    spilled_tail: bool,
}

impl Backlog {
    #[cfg(test)]
    pub fn new(capacity: usize, spill_capacity: usize, overflow: Overflow) -> Self {
        Self::with_bytes(capacity, usize::MAX, spill_capacity, overflow)
    }

    /// A backlog bounded by bytes as well as by events.
    pub fn with_bytes(
        capacity: usize,
        byte_capacity: usize,
        spill_capacity: usize,
        overflow: Overflow,
    ) -> Self {
        Self {
            capacity: capacity.max(1),
            byte_capacity: byte_capacity.max(1),
            bytes: 0,
            spill_capacity: spill_capacity.max(1),
            spill_bytes: 0,
            overflow,
            entries: BTreeMap::new(),
            spill: VecDeque::new(),
            spilled_tail: false,
        }
    }

    /// Holds one event.
    pub fn push(&mut self, pending: Pending) -> Held {
        let offset = pending.published.offset;
        let younger_than_memory = self
            .entries
            .last_key_value()
            .is_none_or(|(youngest, _)| offset > *youngest);
        if self.spilled_tail && younger_than_memory {
            return self.spill(pending);
        }
        self.bytes = self.bytes.saturating_add(size_of(&pending));
        if let Some(replaced) = self.entries.insert(offset, pending) {
            self.bytes = self.bytes.saturating_sub(size_of(&replaced));
        }
        let mut held = Held::InMemory;
        while self.entries.len() > self.capacity
            || (self.bytes > self.byte_capacity && self.entries.len() > 1)
        {
            let (_, youngest) = self
                .entries
                .pop_last()
                .expect("the backlog is over capacity, so not empty");
            self.bytes = self.bytes.saturating_sub(size_of(&youngest));
            let overflowed = match self.overflow {
                Overflow::DeadLetter => self.spill(youngest),
                Overflow::Drop => Held::Dropped(vec![youngest.published.event.id]),
            };
            held = merge(held, overflowed);
        }
        held
    }

    fn spill(&mut self, pending: Pending) -> Held {
        let size = size_of(&pending);
        if self.spill.len() >= self.spill_capacity
            || (!self.spill.is_empty()
                && self.spill_bytes.saturating_add(size) > self.byte_capacity)
        {
            return Held::Dropped(vec![pending.published.event.id]);
        }
        self.spilled_tail = true;
        self.spill_bytes = self.spill_bytes.saturating_add(size);
        self.spill.push_back(pending);
        Held::Spilled
    }

    /// The oldest `n` entries, left in place (a failed replay changes nothing).
    pub fn front(&self, n: usize) -> Vec<Pending> {
        self.entries.values().take(n).cloned().collect()
    }

    /// Removes entries once the target has them. Entries already gone are ignored.
    pub fn remove(&mut self, offsets: impl IntoIterator<Item = u64>) {
        for offset in offsets {
            if let Some(gone) = self.entries.remove(&offset) {
                self.bytes = self.bytes.saturating_sub(size_of(&gone));
            }
        }
    }

    /// Bytes held in memory (not counting the spill).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Events in memory.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when a new event must not bypass the backlog: it holds events, or the dead letter
    /// is its tail.
    pub fn holds_back(&self) -> bool {
        !self.entries.is_empty() || self.spilled_tail
    }

    /// When the first event in stream order was submitted (the age an operator watches).
    pub fn oldest_submitted(&self) -> Option<Instant> {
        self.entries.first_key_value().map(|(_, p)| p.submitted_at)
    }

    /// Takes up to `n` events bound for the dead letter, oldest first.
    pub fn take_spill(&mut self, n: usize) -> Vec<Pending> {
        let n = n.min(self.spill.len());
        let taken: Vec<Pending> = self.spill.drain(..n).collect();
        let size: usize = taken.iter().map(size_of).sum();
        self.spill_bytes = self.spill_bytes.saturating_sub(size);
        taken
    }

    /// Puts events back at the front of the spill after a failed dead-letter write.
    pub fn return_spill(&mut self, events: Vec<Pending>) {
        for pending in events.into_iter().rev() {
            self.spill_bytes = self.spill_bytes.saturating_add(size_of(&pending));
            self.spill.push_front(pending);
        }
    }

    pub fn spill_len(&self) -> usize {
        self.spill.len()
    }

    /// True while the dead letter is (or may be) the backlog's tail.
    pub fn spilled_tail(&self) -> bool {
        self.spilled_tail
    }

    /// Marks the dead letter as holding events (rows left by an earlier run).
    pub fn mark_spilled_tail(&mut self) {
        if self.overflow == Overflow::DeadLetter {
            self.spilled_tail = true;
        }
    }

    /// A replay found the dead letter empty. The tail closes unless events are still on their
    /// way there; returns whether it closed.
    pub fn dead_letter_drained(&mut self) -> bool {
        if self.spill.is_empty() {
            self.spilled_tail = false;
        }
        !self.spilled_tail
    }

    /// Everything still held in memory, oldest first (for a final spill at shutdown).
    pub fn take_all(&mut self) -> Vec<Pending> {
        self.bytes = 0;
        std::mem::take(&mut self.entries).into_values().collect()
    }

    pub fn overflow(&self) -> Overflow {
        self.overflow
    }
}

fn size_of(pending: &Pending) -> usize {
    pending.published.held_bytes()
}

/// What a push amounted to when it also displaced younger events.
fn merge(so_far: Held, overflowed: Held) -> Held {
    match (so_far, overflowed) {
        (Held::Dropped(mut ids), Held::Dropped(more)) => {
            ids.extend(more);
            Held::Dropped(ids)
        }
        (Held::Dropped(ids), _) | (_, Held::Dropped(ids)) => Held::Dropped(ids),
        (_, Held::Spilled) | (Held::Spilled, _) => Held::Spilled,
        _ => Held::InMemory,
    }
}

#[cfg(test)]
#[path = "backlog_tests.rs"]
mod tests;
