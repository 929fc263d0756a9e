//! What the Realtime path reports: counters the worker and `submit` bump, a window of recent
//! write latencies, each class's batching now, and the [`RealtimeStatus`] document built from
//! them for `GET /v1/realtime`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use super::batcher::{BatchClass, Tuning};
use super::spool::SpoolStatus;
use crate::event::Category;

/// Write latencies kept for the percentiles.
const LATENCY_WINDOW: usize = 1024;

/// Counters, all since start.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub submitted: AtomicU64,
    pub written: AtomicU64,
    pub replayed: AtomicU64,
    pub dead_letter_replayed: AtomicU64,
    pub skipped_duplicates: AtomicU64,
    pub dropped: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub failed_batches: AtomicU64,
    pub rejected_batches: AtomicU64,
    pub retention_deleted: AtomicU64,
    pub quarantined: AtomicU64,
    pub content_refusals: AtomicU64,
    pub spooled: AtomicU64,
    pub spool_replayed: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The last writes' latencies and each class's tuning, as the worker last saw them.
#[derive(Debug)]
pub(super) struct Observed {
    latencies: Mutex<VecDeque<f64>>,
    classes: Mutex<[ClassStatus; 3]>,
    /// The outcome of the latest call that reached the target: one of the `TARGET_*`.
    target: AtomicU8,
    /// Every successful write's duration, for `/metrics`.
    pub write_seconds: crate::metrics::LatencyHistogram,
}

const TARGET_UNKNOWN: u8 = 0;
const TARGET_UP: u8 = 1;
const TARGET_DOWN: u8 = 2;

impl Observed {
    pub fn new(tunings: [(BatchClass, Tuning); 3]) -> Self {
        Self {
            latencies: Mutex::new(VecDeque::with_capacity(LATENCY_WINDOW)),
            classes: Mutex::new(tunings.map(|(class, tuning)| ClassStatus::new(class, tuning, 0))),
            target: AtomicU8::new(TARGET_UNKNOWN),
            write_seconds: Default::default(),
        }
    }

    /// Records the outcome of a call that reached the target; true when that changed what
    /// is known (the first outcome, or up <-> down).
    pub fn set_target(&self, up: bool) -> bool {
        let new = if up { TARGET_UP } else { TARGET_DOWN };
        self.target.swap(new, Ordering::Relaxed) != new
    }

    pub fn target_up(&self) -> bool {
        self.target.load(Ordering::Relaxed) == TARGET_UP
    }

    pub fn record_latency(&self, write: Duration) {
        self.write_seconds.observe(write);
        let mut window = lock(&self.latencies);
        if window.len() == LATENCY_WINDOW {
            window.pop_front();
        }
        window.push_back(write.as_secs_f64() * 1000.0);
    }

    pub fn record_class(&self, class: BatchClass, tuning: Tuning, waiting: usize) {
        let mut classes = lock(&self.classes);
        if let Some(slot) = classes.iter_mut().find(|c| c.class == class) {
            *slot = ClassStatus::new(class, tuning, waiting);
        }
    }

    fn latency(&self) -> LatencyStatus {
        let mut sorted: Vec<f64> = lock(&self.latencies).iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| -> Option<f64> {
            let last = sorted.len().checked_sub(1)?;
            let index = ((last as f64) * q).round() as usize;
            Some((sorted[index] * 100.0).round() / 100.0)
        };
        LatencyStatus {
            samples: sorted.len(),
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section here is a plain read or write; a panic cannot leave half a value.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One batch class now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClassStatus {
    pub class: BatchClass,
    pub categories: Vec<Category>,
    /// Events that fill a batch now.
    pub batch_size: usize,
    /// How long a batch waits for more events now, in milliseconds.
    pub linger_ms: u64,
    pub min_batch_size: usize,
    pub max_batch_size: usize,
    pub min_linger_ms: u64,
    pub max_linger_ms: u64,
    /// Average write latency of this class's batches, if any was written.
    pub write_latency_ewma_ms: Option<f64>,
    /// Events in the open batch (as of the worker's last change to it).
    pub waiting: usize,
}

impl ClassStatus {
    fn new(class: BatchClass, tuning: Tuning, waiting: usize) -> Self {
        let ms = |d: Duration| d.as_millis() as u64;
        Self {
            class,
            categories: Category::ALL
                .into_iter()
                .filter(|c| BatchClass::of(*c) == class)
                .collect(),
            batch_size: tuning.size,
            linger_ms: ms(tuning.linger),
            min_batch_size: tuning.min_size,
            max_batch_size: tuning.max_size,
            min_linger_ms: ms(tuning.min_linger),
            max_linger_ms: ms(tuning.max_linger),
            write_latency_ewma_ms: tuning
                .latency_ewma
                .map(|d| (d.as_secs_f64() * 100_000.0).round() / 100.0),
            waiting,
        }
    }
}

/// Percentiles of the latest successful writes (up to 1024), in milliseconds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LatencyStatus {
    pub samples: usize,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// `up` after the latest call that reached the target succeeded, `down` otherwise (also before
/// the first one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetHealth {
    Up,
    Down,
}

/// Where the backlog's overflow goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OverflowPolicy {
    /// The target is another database: overflow waits in the control store's dead letter.
    DeadLetter,
    /// The target is the control store: overflow is dropped and counted.
    Drop,
}

/// The Realtime path now: `GET /v1/realtime`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RealtimeStatus {
    pub target: TargetHealth,
    /// The target database, password masked.
    pub target_database: String,
    pub overflow: OverflowPolicy,
    /// Events waiting in the queue in front of the batcher.
    pub queue_depth: usize,
    pub queue_capacity: usize,
    /// Events held in memory for replay.
    pub backlog_depth: usize,
    pub backlog_capacity: usize,
    /// Bytes the events held in memory for replay hold (parsed event, encodings, allocations).
    pub backlog_bytes: usize,
    pub backlog_bytes_capacity: usize,
    /// Seconds since the backlog's first event (in stream order) was submitted.
    pub oldest_backlog_age_s: Option<f64>,
    /// Events on their way to the dead letter.
    pub spill_depth: usize,
    /// True while the dead letter holds (or may hold) events waiting for replay.
    pub dead_letter_waiting: bool,
    /// Events handed to the path (routed to Realtime) since start.
    pub submitted: u64,
    /// Events committed by live batches.
    pub written: u64,
    /// Events committed by backlog replay.
    pub replayed: u64,
    /// Events committed from the dead letter.
    pub dead_letter_replayed: u64,
    /// Committed events the target already had (a replay after a write that timed out late).
    pub skipped_duplicates: u64,
    /// Events lost to a full backlog (and full spill); each one also logged at warn.
    pub dropped: u64,
    /// Events written to the dead letter.
    pub dead_lettered: u64,
    /// Writes that failed or timed out (their events went to the backlog).
    pub failed_batches: u64,
    /// Writes the breaker did not admit (their events went to the backlog).
    pub rejected_batches: u64,
    /// Rows deleted by retention.
    pub retention_deleted: u64,
    /// Events the target refused for their content (a data error, a constraint, a trigger),
    /// found by splitting their batch and set aside in the control store's
    /// `switchyard.realtime_quarantine` with the error; the rest of the batch was written.
    pub quarantined: u64,
    /// Writes the target refused for their content (each one then split to find the bad
    /// rows). Not breaker failures: the target answered.
    pub content_refusals: u64,
    /// Events per second the backlog and dead letter replay at.
    pub replay_rate_per_s: u32,
    /// The local spool: what this run kept there and replayed, what waits in it.
    pub spool: SpoolStatus,
    /// With a shared NATS stream (`SWITCHYARD_NATS_URL`): the Realtime work queue every
    /// instance pulls from, as this instance's feed last read it (every second). There, while
    /// breakers are open, routed events wait in the stream rather than in `backlog_depth`.
    /// Absent with the in-process hub.
    pub work_queue: Option<WorkQueueStatus>,
    pub classes: Vec<ClassStatus>,
    pub write_latency: LatencyStatus,
}

/// The shared Realtime work queue (a JetStream consumer) as last read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct WorkQueueStatus {
    /// Routed events in the stream not yet handed to any instance.
    pub waiting: u64,
    /// Events handed to an instance and not yet acknowledged (acknowledged once committed,
    /// quarantined or terminated).
    pub unacknowledged: u64,
    /// The stream offset up to which every routed event is acknowledged: above it, events are
    /// still held somewhere (the validator counts them pending, not missing).
    pub ack_floor: u64,
    /// Seconds since it was read.
    pub read_age_s: f64,
}

/// [`WorkQueueStatus`] as the feed reads it.
#[derive(Debug, Clone, Copy)]
pub(super) struct WorkQueueRead {
    pub waiting: u64,
    pub unacknowledged: u64,
    pub ack_floor: u64,
    pub at: std::time::Instant,
}

impl WorkQueueRead {
    fn status(self) -> WorkQueueStatus {
        WorkQueueStatus {
            waiting: self.waiting,
            unacknowledged: self.unacknowledged,
            ack_floor: self.ack_floor,
            read_age_s: (self.at.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        }
    }
}

/// The parts of the status that are not counters.
pub(super) struct Depths {
    pub target_database: String,
    pub overflow: OverflowPolicy,
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub backlog_depth: usize,
    pub backlog_capacity: usize,
    pub backlog_bytes: usize,
    pub backlog_bytes_capacity: usize,
    pub oldest_backlog_age: Option<Duration>,
    pub spill_depth: usize,
    pub dead_letter_waiting: bool,
    pub replay_rate_per_s: u32,
    pub spool_dir: Option<std::path::PathBuf>,
    pub work_queue: Option<WorkQueueRead>,
}

pub(super) fn status(depths: Depths, counters: &Counters, observed: &Observed) -> RealtimeStatus {
    let c = Counters::get;
    RealtimeStatus {
        target: if observed.target_up() {
            TargetHealth::Up
        } else {
            TargetHealth::Down
        },
        target_database: depths.target_database,
        overflow: depths.overflow,
        queue_depth: depths.queue_depth,
        queue_capacity: depths.queue_capacity,
        backlog_depth: depths.backlog_depth,
        backlog_capacity: depths.backlog_capacity,
        backlog_bytes: depths.backlog_bytes,
        backlog_bytes_capacity: depths.backlog_bytes_capacity,
        oldest_backlog_age_s: depths
            .oldest_backlog_age
            .map(|age| (age.as_secs_f64() * 1000.0).round() / 1000.0),
        spill_depth: depths.spill_depth,
        dead_letter_waiting: depths.dead_letter_waiting,
        submitted: c(&counters.submitted),
        written: c(&counters.written),
        replayed: c(&counters.replayed),
        dead_letter_replayed: c(&counters.dead_letter_replayed),
        skipped_duplicates: c(&counters.skipped_duplicates),
        dropped: c(&counters.dropped),
        dead_lettered: c(&counters.dead_lettered),
        failed_batches: c(&counters.failed_batches),
        rejected_batches: c(&counters.rejected_batches),
        retention_deleted: c(&counters.retention_deleted),
        quarantined: c(&counters.quarantined),
        content_refusals: c(&counters.content_refusals),
        replay_rate_per_s: depths.replay_rate_per_s,
        spool: SpoolStatus::of(
            depths.spool_dir.as_deref(),
            c(&counters.spooled),
            c(&counters.spool_replayed),
        ),
        work_queue: depths.work_queue.map(WorkQueueRead::status),
        classes: lock(&observed.classes).to_vec(),
        write_latency: observed.latency(),
    }
}
