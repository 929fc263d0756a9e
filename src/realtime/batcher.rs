//! Adaptive batching: events wait in a per-class batch until it is full or its linger expires,
//! then go to the sink as one multi-row statement. Pure code with explicit instants, so the
//! adaptation rule is unit-tested without a clock or a database.
//!
//! # Classes (the legacy plan's presets, REFERENCE.md section 1)
//!
//! | class  | categories                | start size | start linger | size bounds | linger bounds |
//! |--------|---------------------------|-----------:|-------------:|------------:|--------------:|
//! | high   | performance               |        100 |        0.1 s |    10..1000 |  10 ms..0.2 s |
//! | medium | user_activity             |         50 |        0.5 s |      5..500 |  50 ms..1 s   |
//! | low    | critical, system, debug   |         10 |          2 s |      1..100 | 0.2 s..4 s    |
//!
//! Bounds are a tenth of the preset up to ten times it (size) and a tenth up to twice it
//! (linger). The legacy `MONITORING_BATCH_SIZE` replaces the high class's start size.
//!
//! Every class may grow further, to the largest batch (`RealtimeSettings::largest_batch`,
//! default 4,000, [`Batcher::with_largest_batch`]), so the size bounds `serve` runs with are
//! 10..4000, 5..4000 and 1..4000 (1,000 until session 6: a 20,000-event burst from a cold
//! start took ~33 writes; sink/COPY in five alternated passes 0.72-0.81 at 1,000 vs
//! 0.73-0.85 at 4,000, docs/benchmarks.md). A larger bound costs no latency: size only grows
//! when batches fill before their linger, that is when events arrive faster than the class
//! writes them; a sparse class still waits no longer than its linger. Under a burst it saves
//! commits: each write pays a commit (a WAL flush), a round trip and planning, and at the
//! legacy bound of 100 the low class (60% of a mixed stream) paid them ten times as often as
//! the high class (docs/realtime-bench.md has the profile).
//!
//! # Adaptation rule
//!
//! After each successful write of a live batch of `n` events that collected for `t` (first
//! event in to flush) and took `w` to write, that class's tuning moves:
//!
//! 1. **Linger follows write latency.** `ewma = 0.7 ewma + 0.3 w`. If `ewma` is above the slow
//!    threshold (default 100 ms, the Realtime latency target), the target is struggling:
//!    linger x 1.5, so it gets fewer, larger statements. If `ewma` is under a quarter of it,
//!    the target is healthy: linger x 0.8, so events spend less time waiting in a batch.
//!    Between the two, linger stays.
//! 2. **Size follows the arrival rate.** A batch that filled before its linger expired says
//!    the rate `n / t` outruns the batch: size grows to what one linger collects at that rate,
//!    `size x linger / t`, at most quadrupling per write (fewer round trips under load, and a
//!    burst reaches the largest batches in a few writes: the low class goes 10, 40, 160, 640,
//!    2,560, 4,000; doubling took nine writes, most of a 20,000-event burst). A batch whose
//!    linger expired less than half full says the rate is below `size / (2 linger)`: size
//!    moves halfway down to `n` (a sparse class stops waiting for events that are not
//!    coming). Between the two it stays, so a steady rate `r` settles between `r x linger`
//!    and `2 r x linger`.
//! 3. Both stay within the class's bounds. Failed writes do not adapt (the breaker judges
//!    them), nor do replays (their chunks are paced by the replay rate, not by arrivals).

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use utoipa::ToSchema;

use super::Pending;
use crate::event::Category;

/// Weight of the newest write in the latency average.
const LATENCY_WEIGHT: f64 = 0.3;

/// The most a class's size grows after one batch that filled before its linger (module docs).
const MAX_GROWTH: f64 = 4.0;

/// Which batch an event waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchClass {
    /// Frequent metrics: performance.
    High,
    /// Session traffic: user_activity.
    Medium,
    /// Rare events: critical, system, debug.
    Low,
}

impl BatchClass {
    pub const ALL: [BatchClass; 3] = [BatchClass::High, BatchClass::Medium, BatchClass::Low];

    pub fn of(category: Category) -> Self {
        match category {
            Category::Performance => BatchClass::High,
            Category::UserActivity => BatchClass::Medium,
            Category::Critical | Category::System | Category::Debug => BatchClass::Low,
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The legacy preset: (size, linger).
    pub fn preset(self) -> (usize, Duration) {
        match self {
            BatchClass::High => (100, Duration::from_millis(100)),
            BatchClass::Medium => (50, Duration::from_millis(500)),
            BatchClass::Low => (10, Duration::from_secs(2)),
        }
    }
}

/// A class's current size and linger, and the bounds they move in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    pub size: usize,
    pub linger: Duration,
    pub min_size: usize,
    pub max_size: usize,
    pub min_linger: Duration,
    pub max_linger: Duration,
    /// Average write latency of this class's batches; `None` before the first write.
    pub latency_ewma: Option<Duration>,
}

impl Tuning {
    /// Starts at `(size, linger)` with bounds a tenth to ten times the size and a tenth to
    /// twice the linger.
    pub fn starting_at(size: usize, linger: Duration) -> Self {
        let size = size.max(1);
        Self {
            size,
            linger,
            min_size: (size / 10).max(1),
            max_size: size * 10,
            min_linger: linger / 10,
            max_linger: linger * 2,
            latency_ewma: None,
        }
    }

    /// The adaptation rule (module docs): `events` collected for `collecting`, `filled` when
    /// they filled the batch before its linger, written in `write`; `slow` is the write
    /// latency above which the target counts as struggling.
    pub fn adapt(
        &mut self,
        events: usize,
        collecting: Duration,
        filled: bool,
        write: Duration,
        slow: Duration,
    ) {
        let ewma = match self.latency_ewma {
            None => write,
            Some(old) => old.mul_f64(1.0 - LATENCY_WEIGHT) + write.mul_f64(LATENCY_WEIGHT),
        };
        self.latency_ewma = Some(ewma);
        if ewma > slow {
            self.linger = self.linger.mul_f64(1.5).min(self.max_linger);
        } else if ewma < slow / 4 {
            self.linger = self.linger.mul_f64(0.8).max(self.min_linger);
        }
        if filled {
            let lingers = self.linger.as_secs_f64() / collecting.as_secs_f64().max(1e-6);
            let grown = (self.size as f64 * lingers.clamp(1.0, MAX_GROWTH)).round() as usize;
            self.size = grown.min(self.max_size);
        } else if events < self.size / 2 {
            self.size = (self.size + events).div_ceil(2).max(self.min_size);
        }
    }
}

/// Why a batch left the batcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushReason {
    Full,
    Linger,
    /// Shutdown or a forced drain.
    Drain,
}

/// A batch ready for the sink.
#[derive(Debug)]
pub struct Batch {
    pub class: BatchClass,
    pub events: Vec<Pending>,
    pub reason: FlushReason,
    /// From the first event in to the flush.
    pub collecting: Duration,
}

#[derive(Debug)]
struct ClassBatch {
    tuning: Tuning,
    events: Vec<Pending>,
    opened_at: Option<Instant>,
}

/// The three class batches.
#[derive(Debug)]
pub struct Batcher {
    classes: [ClassBatch; 3],
    slow_write: Duration,
}

impl Batcher {
    /// The legacy presets; `high_size` replaces the high class's start size when given.
    pub fn new(high_size: Option<usize>, slow_write: Duration) -> Self {
        let class = |class: BatchClass| {
            let (mut size, linger) = class.preset();
            if class == BatchClass::High {
                size = high_size.unwrap_or(size);
            }
            ClassBatch {
                tuning: Tuning::starting_at(size, linger),
                events: Vec::new(),
                opened_at: None,
            }
        };
        Self {
            classes: BatchClass::ALL.map(class),
            slow_write,
        }
    }

    /// Lets every class grow to at least `largest` events a batch (module docs); a class whose
    /// own bound is larger keeps it.
    pub fn with_largest_batch(mut self, largest: usize) -> Self {
        for slot in &mut self.classes {
            slot.tuning.max_size = slot.tuning.max_size.max(largest);
        }
        self
    }

    /// Adds an event; returns its class's batch when that made it full.
    pub fn push(&mut self, pending: Pending, now: Instant) -> Option<Batch> {
        let class = BatchClass::of(pending.published.event.category);
        let slot = &mut self.classes[class.index()];
        slot.opened_at.get_or_insert(now);
        slot.events.push(pending);
        (slot.events.len() >= slot.tuning.size)
            .then(|| Self::take(slot, class, FlushReason::Full, now))
    }

    /// When the earliest open batch's linger expires.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.classes
            .iter()
            .filter_map(|slot| slot.opened_at.map(|at| at + slot.tuning.linger))
            .min()
    }

    /// The batches whose linger has expired by `now`.
    pub fn take_due(&mut self, now: Instant) -> Vec<Batch> {
        let mut due = Vec::new();
        for class in BatchClass::ALL {
            let slot = &mut self.classes[class.index()];
            if slot
                .opened_at
                .is_some_and(|at| at + slot.tuning.linger <= now)
            {
                due.push(Self::take(slot, class, FlushReason::Linger, now));
            }
        }
        due
    }

    /// Every open batch, whatever its linger.
    pub fn drain(&mut self, now: Instant) -> Vec<Batch> {
        let mut all = Vec::new();
        for class in BatchClass::ALL {
            let slot = &mut self.classes[class.index()];
            if !slot.events.is_empty() {
                all.push(Self::take(slot, class, FlushReason::Drain, now));
            }
        }
        all
    }

    /// Feeds a successful write back into its class's tuning. A drained batch (shutdown, a
    /// forced flush) says nothing about the arrival rate and does not adapt.
    pub fn record_write(&mut self, batch: &Batch, write: Duration) {
        if batch.reason == FlushReason::Drain {
            return;
        }
        let filled = batch.reason == FlushReason::Full;
        let slow = self.slow_write;
        self.classes[batch.class.index()].tuning.adapt(
            batch.events.len(),
            batch.collecting,
            filled,
            write,
            slow,
        );
    }

    pub fn tuning(&self, class: BatchClass) -> Tuning {
        self.classes[class.index()].tuning
    }

    /// Events waiting in `class`'s open batch.
    pub fn waiting(&self, class: BatchClass) -> usize {
        self.classes[class.index()].events.len()
    }

    fn take(slot: &mut ClassBatch, class: BatchClass, reason: FlushReason, now: Instant) -> Batch {
        let opened = slot.opened_at.take().unwrap_or(now);
        Batch {
            class,
            events: std::mem::take(&mut slot.events),
            reason,
            collecting: now.saturating_duration_since(opened),
        }
    }
}

#[cfg(test)]
#[path = "batcher_tests.rs"]
mod tests;
