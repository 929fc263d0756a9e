//! The Realtime path: routed events, batched and written into the Realtime table on the
//! target database through the circuit breaker, with a backlog that holds them (in order)
//! while the target fails and replays them when it recovers.
//!
//! ```text
//! submit ─try_send─> queue (bounded) ──> worker ──> batcher ──> breaker.call(sink.write)
//!    │ full                                │  backlog not empty,       │ rejected, failed,
//!    └──────────────> backlog <────────────┘  breaker not closed       │ timed out
//!                       │  ^ <──────────────────────────────────────────┘
//!                       │  └─ replay at replay_rate_per_s, oldest first, before new events
//!                       └─ overflow ─> dead letter (control store) or dropped and counted
//! ```
//!
//! `submit` never waits: a full queue puts the event straight into the backlog (docs/architecture.md
//! invariant 4: a failing target never slows ingest). One worker task owns the batcher, the
//! writes and the replay, so writes of one class commit in order and the backlog drains
//! before newer events overtake it (invariant 2). See `batcher` for the batch classes and
//! the adaptation rule, `backlog` for ordering and overflow, `retention` for pruning.

mod backlog;
mod batcher;
pub mod feed;
pub mod relay;
mod retention;
mod schema;
mod settings;
mod sink;
mod spool;
mod status;
mod worker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use sqlx::PgPool;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::breaker::Breaker;
use crate::config::mask_url;
use crate::hub::Published;
use backlog::{Backlog, Held, Overflow};
use status::{Counters, Depths, Observed, OverflowPolicy, WorkQueueRead};

pub use batcher::BatchClass;
pub use settings::{DEFAULT_LARGEST_BATCH, DEFAULT_WRITERS, RealtimeSettings};
pub use sink::{RealtimeSink, StoredRow};
pub use spool::SpoolStatus;
pub use status::{ClassStatus, LatencyStatus, RealtimeStatus, TargetHealth, WorkQueueStatus};

/// The longest an event waits in an open batch: the low class's upper linger bound (see
/// `batcher`). The validator allows this much before it calls a row missing.
pub const LONGEST_LINGER: std::time::Duration = std::time::Duration::from_secs(4);

/// Batches announced to `subscribe_committed` that a slow receiver may fall behind.
const COMMITTED_QUEUE: usize = 1024;
/// Seconds between two warnings about dropped events (each warning carries the total).
const DROP_WARN_EVERY_S: u64 = 5;

/// An event on its way to the target, with when it was submitted.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub published: Arc<Published>,
    pub submitted_at: Instant,
}

/// How a committed batch reached the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitKind {
    /// A live batch.
    Live,
    /// Replayed from the in-memory backlog.
    Replay,
    /// Replayed from the dead letter (offsets may belong to an earlier epoch).
    DeadLetter,
    /// Not committed and never will be: lost to a full backlog (and spill). Counted as
    /// dropped; the validator reports them as missing from Realtime at once.
    Dropped,
    /// Refused by the target for their content and set aside in the quarantine (with the
    /// error). Counted as quarantined; the validator reports them as such, not as missing.
    Quarantined,
}

/// Events the target has committed (or, `CommitKind::Dropped`, that it never will), for
/// whoever compares the paths.
#[derive(Debug, Clone)]
pub struct CommittedBatch {
    pub ids: Vec<Uuid>,
    pub offsets: Vec<u64>,
    pub kind: CommitKind,
    pub committed_at: Instant,
    /// Committed by another instance on the same NATS stream and relayed here (`relay`), so
    /// this instance's validator reads those rows back too.
    pub relayed: bool,
}

/// The Realtime path of this instance. Cheap to clone.
#[derive(Clone)]
pub struct RealtimePath {
    shared: Arc<Shared>,
    sink: RealtimeSink,
    tasks: TaskTracker,
}

/// What `submit`, `status` and the worker share.
struct Shared {
    queue: mpsc::Sender<Pending>,
    settings: RealtimeSettings,
    target_database: String,
    backlog: Mutex<Backlog>,
    /// Wakes the worker when `submit` put something in the backlog.
    backlog_changed: Notify,
    /// Asks the worker to write its open batches without waiting for their linger.
    flush_requested: Notify,
    counters: Counters,
    observed: Observed,
    committed: broadcast::Sender<CommittedBatch>,
    started: Instant,
    /// Seconds since `started` before which no drop warning is logged again.
    next_drop_warning_s: AtomicU64,
    /// The shared NATS work queue as last read (`feed`); `None` with the in-process hub.
    work_queue: Mutex<Option<WorkQueueRead>>,
}

impl RealtimePath {
    /// Starts the worker and the retention task. Never fails because the target is down: the
    /// sink's pool is lazy, the schema is applied when the target first answers, and until
    /// then the breaker sees the failures and events wait in the backlog. `control_url` tells
    /// whether the target is the control store (then overflow is dropped, not dead-lettered).
    pub async fn start(
        settings: RealtimeSettings,
        control_pool: PgPool,
        control_url: &str,
        breaker: Breaker,
        shutdown: CancellationToken,
    ) -> Self {
        let separate = !settings::same_database(control_url, &settings.database_url);
        let overflow = if separate {
            Overflow::DeadLetter
        } else {
            Overflow::Drop
        };
        let sink = RealtimeSink::new(&settings.database_url, separate, settings.writers);
        if let Some(error) = sink.configuration_error() {
            tracing::error!(
                error,
                "REALTIME_DATABASE_URL is unusable: every Realtime write will fail"
            );
        }
        let batcher = batcher::Batcher::new(settings.high_batch_size, settings.slow_write)
            .with_largest_batch(settings.largest_batch);
        let (queue, receiver) = mpsc::channel(settings.queue_capacity.max(1));
        let shared = Arc::new(Shared {
            queue,
            target_database: mask_url(&settings.database_url),
            backlog: Mutex::new(Backlog::with_bytes(
                settings.backlog_capacity,
                settings.backlog_bytes,
                settings.queue_capacity,
                overflow,
            )),
            backlog_changed: Notify::new(),
            flush_requested: Notify::new(),
            counters: Counters::default(),
            observed: Observed::new(BatchClass::ALL.map(|c| (c, batcher.tuning(c)))),
            committed: broadcast::channel(COMMITTED_QUEUE).0,
            started: Instant::now(),
            next_drop_warning_s: AtomicU64::new(0),
            work_queue: Mutex::new(None),
            settings,
        });
        let tasks = TaskTracker::new();
        let control = separate.then(|| control_pool.clone());
        let worker = worker::Worker::new(
            shared.clone(),
            receiver,
            batcher,
            sink.clone(),
            breaker.clone(),
            control,
            control_pool,
        );
        tasks.spawn(worker.run(shutdown.clone()));
        if !shared.settings.retention.is_zero() {
            tasks.spawn(retention::run(
                shared.clone(),
                sink.clone(),
                breaker,
                shutdown,
            ));
        }
        tasks.close();
        tracing::info!(
            target_database = %shared.target_database,
            overflow = if separate { "dead_letter" } else { "drop" },
            "Realtime path started"
        );
        Self {
            shared,
            sink,
            tasks,
        }
    }

    /// Reads the rows of `ids` back from the target (the validator's view of what Realtime
    /// streams). Not through the breaker: a read never counts against the write path.
    pub async fn read_rows(&self, ids: &[Uuid]) -> Result<Vec<StoredRow>, sqlx::Error> {
        self.sink.read_rows(ids).await
    }

    /// True while events wait in the backlog, the spill or the dead letter: events routed to
    /// Realtime but not yet committed are pending there, not missing. (Events in the queue or
    /// an open batch are younger than the longest linger; the validator allows for that.)
    pub fn holds_backlog(&self) -> bool {
        let s = self.status();
        s.backlog_depth > 0 || s.spill_depth > 0 || s.dead_letter_waiting
    }

    /// With the shared NATS work queue (`SWITCHYARD_NATS_URL`), its ack floor as last read: every
    /// routed event at a higher stream offset is still in the queue or held by some instance
    /// (an event is acknowledged only once committed, quarantined or terminated), so it is
    /// pending, not missing, whichever instance holds it. `None` with the in-process hub.
    pub fn work_queue_floor(&self) -> Option<u64> {
        self.shared.work_queue().map(|read| read.ack_floor)
    }

    /// Records what the feed read of the work queue: events not yet handed out, handed out
    /// and not acknowledged, and the ack floor.
    pub(crate) fn read_work_queue(&self, waiting: u64, unacknowledged: u64, ack_floor: u64) {
        let read = WorkQueueRead {
            waiting,
            unacknowledged,
            ack_floor,
            at: std::time::Instant::now(),
        };
        *self
            .shared
            .work_queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(read);
    }

    /// Hands an event to the Realtime path. Never waits: when the queue is full the event
    /// goes straight to the backlog.
    pub fn submit(&self, published: Arc<Published>) {
        Counters::add(&self.shared.counters.submitted, 1);
        let pending = Pending {
            published,
            submitted_at: Instant::now(),
        };
        match self.shared.queue.try_send(pending) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(pending)) => {
                self.shared.hold(pending);
                self.shared.backlog_changed.notify_one();
            }
            // The worker has stopped (shutdown): nothing will write or spill it any more.
            Err(mpsc::error::TrySendError::Closed(_)) => self.shared.count_dropped(1),
        }
    }

    /// Writes the open batches once the worker has taken what is queued now, without waiting
    /// for their linger: for a producer that knows its stream has paused (the sink bench ends
    /// its burst with it, so it measures writing, not the last batches' linger).
    pub fn flush(&self) {
        self.shared.flush_requested.notify_one();
    }

    /// The path now.
    pub fn status(&self) -> RealtimeStatus {
        let shared = &self.shared;
        let (backlog_depth, backlog_bytes, oldest, spill_depth, dead_letter_waiting, overflow) = {
            let backlog = shared.lock_backlog();
            (
                backlog.len(),
                backlog.bytes(),
                backlog.oldest_submitted(),
                backlog.spill_len(),
                backlog.spilled_tail(),
                backlog.overflow(),
            )
        };
        let settings = &shared.settings;
        let depths = Depths {
            target_database: shared.target_database.clone(),
            overflow: match overflow {
                Overflow::DeadLetter => OverflowPolicy::DeadLetter,
                Overflow::Drop => OverflowPolicy::Drop,
            },
            queue_depth: shared.queue.max_capacity() - shared.queue.capacity(),
            queue_capacity: shared.queue.max_capacity(),
            backlog_depth,
            backlog_capacity: settings.backlog_capacity,
            backlog_bytes,
            backlog_bytes_capacity: settings.backlog_bytes,
            oldest_backlog_age: oldest.map(|at| at.elapsed()),
            spill_depth,
            dead_letter_waiting,
            replay_rate_per_s: settings.replay_rate_per_s,
            spool_dir: settings.spool_dir.clone(),
            work_queue: shared.work_queue(),
        };
        status::status(depths, &shared.counters, &shared.observed)
    }

    /// Successful writes' durations, as a histogram (for `/metrics`).
    pub fn write_latency(&self) -> &crate::metrics::LatencyHistogram {
        &self.shared.observed.write_seconds
    }

    /// Every batch the target commits from now on.
    pub fn subscribe_committed(&self) -> broadcast::Receiver<CommittedBatch> {
        self.shared.committed.subscribe()
    }

    /// Announces a batch another instance committed (`relay`), beside this instance's.
    pub(crate) fn relay_committed(&self, batch: CommittedBatch) {
        let _ = self.shared.committed.send(batch);
    }

    /// Waits until the worker and retention have stopped (after the shutdown token fired):
    /// open batches written or held, the backlog spilled to the dead letter or counted.
    pub async fn stopped(&self) {
        self.tasks.wait().await;
    }
}

impl Shared {
    /// The work queue as last read (a copy: the lock is held for no more than that).
    fn work_queue(&self) -> Option<WorkQueueRead> {
        *self
            .work_queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_backlog(&self) -> MutexGuard<'_, Backlog> {
        // Backlog operations are single collection calls; a panic cannot leave one half done.
        self.backlog
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Puts an event in the backlog, counting it if it (or one it displaced) is dropped.
    fn hold(&self, pending: Pending) {
        let held = self.lock_backlog().push(pending);
        if let Held::Dropped(ids) = held {
            self.lost(ids);
        }
    }

    /// Events the backlog had to drop: counted, warned about, and announced (the validator
    /// reports them missing from Realtime).
    pub(super) fn lost(&self, ids: Vec<Uuid>) {
        self.count_dropped(ids.len());
        self.announce(ids, Vec::new(), CommitKind::Dropped);
    }

    fn hold_all(&self, events: Vec<Pending>) {
        let mut dropped = Vec::new();
        {
            let mut backlog = self.lock_backlog();
            for pending in events {
                if let Held::Dropped(ids) = backlog.push(pending) {
                    dropped.extend(ids);
                }
            }
        }
        if !dropped.is_empty() {
            self.lost(dropped);
        }
    }

    /// Counts lost events and warns, at most every few seconds, with the running total.
    fn count_dropped(&self, n: usize) {
        Counters::add(&self.counters.dropped, n);
        let now_s = self.started.elapsed().as_secs();
        let due = self.next_drop_warning_s.load(Ordering::Relaxed);
        if now_s >= due
            && self
                .next_drop_warning_s
                .compare_exchange(
                    due,
                    now_s + DROP_WARN_EVERY_S,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            tracing::warn!(
                dropped_total = self.counters.dropped.load(Ordering::Relaxed),
                backlog_capacity = self.settings.backlog_capacity,
                "Realtime backlog full: events dropped (they reached WebSocket subscribers, not the Realtime table)"
            );
        }
    }

    fn announce(&self, ids: Vec<Uuid>, offsets: Vec<u64>, kind: CommitKind) {
        if self.committed.receiver_count() == 0 {
            return;
        }
        let _ = self.committed.send(CommittedBatch {
            ids,
            offsets,
            kind,
            committed_at: Instant::now(),
            relayed: false,
        });
    }
}

/// Events for unit tests, stamped by a real hub.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::hub::Hub;

    /// Publishes an event of `event_type` on `hub` and returns it as the path receives it.
    pub fn pending(hub: &Hub, event_type: &str) -> Pending {
        let value = serde_json::json!({"event_type": event_type, "source": "unit"});
        let event = crate::event::parse_event(&value, None, chrono::Utc::now()).expect("valid");
        hub.publish(event);
        Pending {
            published: hub.recent(1).pop().expect("just published"),
            submitted_at: Instant::now(),
        }
    }
}
