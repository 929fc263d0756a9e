//! The worker: the one task that batches, writes, replays and spills. Owning all of it in one
//! task keeps the order promises simple: one write at a time, so a class's batches commit in
//! order, and a new event is written directly only when nothing older is held.
//!
//! Each turn of the loop does the first thing due: a batch whose linger expired, a replay step
//! (paced at the replay rate; small trial batches while half-open), new events from the queue,
//! or housekeeping (spilling to the dead letter, trial probes). Breaker transitions only wake
//! it; what to do is read from the breaker's state each turn.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::backlog::Held;
use super::batcher::Batcher;
use super::{Pending, RealtimeSink, Shared};
use crate::breaker::{Breaker, BreakerError, BreakerState, Transition};
use crate::store::dead_letter::RealtimeRows;

mod dead_letter;
mod in_flight;
mod outcome;
mod quarantine;
mod replay;
mod shutdown;
mod spooled;

pub(super) use quarantine::WriteFailure;

/// How often housekeeping runs.
const HOUSEKEEPING: Duration = Duration::from_millis(250);
/// Events taken from the queue per turn.
const RECEIVE_AT_ONCE: usize = 256;
/// Rows per dead-letter insert.
const SPILL_CHUNK: usize = 1_000;
/// Longest a control-store statement may take before the worker moves on.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);
/// The most events one replay write carries (replays are paced; live batches may be larger).
const MAX_REPLAY_BATCH: usize = 1_000;

/// Pause before retrying a replay that failed while the breaker still admits calls.
const REPLAY_RETRY: Duration = Duration::from_millis(100);

pub(super) struct Worker {
    shared: Arc<Shared>,
    queue: mpsc::Receiver<Pending>,
    batcher: Batcher,
    sink: RealtimeSink,
    breaker: Breaker,
    /// The control store, when overflow goes to its dead letter.
    control: Option<PgPool>,
    /// The control store, always: rows the target refuses for their content go to its
    /// quarantine (even when it is the target: a refused row is refused there by content,
    /// not by availability).
    quarantine: PgPool,
    next_replay: Instant,
    last_call: Instant,
    /// Events that joined the backlog only because a replay was under way (the breaker
    /// admitting calls): each replay step takes them on top of its paced share, so the
    /// backlog drains at the replay rate even while arrivals outpace that rate.
    arrived_behind: usize,
    /// Spool files from an earlier run are still to be written.
    spool_pending: bool,
    /// The live write under way, if any (`in_flight`).
    in_flight: Option<in_flight::InFlight>,
}

impl Worker {
    pub fn new(
        shared: Arc<Shared>,
        queue: mpsc::Receiver<Pending>,
        batcher: Batcher,
        sink: RealtimeSink,
        breaker: Breaker,
        control: Option<PgPool>,
        quarantine: PgPool,
    ) -> Self {
        Self {
            shared,
            queue,
            batcher,
            sink,
            breaker,
            control,
            quarantine,
            next_replay: Instant::now(),
            last_call: Instant::now(),
            arrived_behind: 0,
            spool_pending: false,
            in_flight: None,
        }
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        self.adopt_dead_letter().await;
        self.probe().await;
        self.replay_spool().await;
        let mut transitions = Some(self.breaker.subscribe());
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut received = Vec::with_capacity(RECEIVE_AT_ONCE);
        loop {
            let linger = self.batcher.next_deadline();
            let replay = self.replay_due();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = Self::in_flight_ended(&mut self.in_flight) => self.settle().await,
                () = sleep_until_some(linger) => self.flush_due().await,
                () = sleep_until_some(replay) => self.replay_step().await,
                n = self.queue.recv_many(&mut received, RECEIVE_AT_ONCE) => {
                    if n == 0 {
                        break;
                    }
                    for pending in received.drain(..) {
                        self.accept(pending).await;
                    }
                }
                // After the queue: with `biased`, only once what was queued has been taken.
                () = self.shared.flush_requested.notified() => self.flush_all().await,
                () = self.shared.backlog_changed.notified() => {}
                () = next_transition(&mut transitions) => {}
                _ = housekeeping.tick() => self.housekeeping().await,
            }
        }
        let grace = Instant::now() + self.shared.settings.shutdown_grace;
        self.write_what_is_left(grace).await;
        self.keep_or_count_the_rest().await;
        self.sink.close().await;
    }

    /// A new event: written through the batcher when nothing older is held and the breaker
    /// admits calls, else held in the backlog behind the older ones.
    async fn accept(&mut self, mut pending: Pending) {
        loop {
            // Held events go behind the rows still being written, whatever they come to.
            if self.in_flight.is_some() && self.holds_back() {
                self.settle().await;
            }
            match self.hold_unless_admitted(pending) {
                Admitted::Yes(admitted) => {
                    pending = admitted;
                    break;
                }
                Admitted::Held => return,
                Admitted::AfterTheWriteInFlight(waiting) => pending = waiting,
            }
        }
        if let Some(batch) = self.batcher.push(pending, Instant::now()) {
            self.write_batch(batch).await;
        }
    }

    /// Holds `pending` in the backlog if something older is held or the breaker admits no
    /// call, with the open batches; not while a write is in flight (the breaker may have
    /// changed since [`holds_back`](Self::holds_back) asked).
    fn hold_unless_admitted(&mut self, pending: Pending) -> Admitted {
        let mut backlog = self.shared.lock_backlog();
        let admitting = self.breaker.permits_calls();
        if !backlog.holds_back() && admitting {
            return Admitted::Yes(pending);
        }
        if self.in_flight.is_some() {
            return Admitted::AfterTheWriteInFlight(pending);
        }
        let held = backlog.push(pending);
        drop(backlog);
        if admitting {
            self.arrived_behind += 1;
        }
        if let Held::Dropped(ids) = held {
            self.shared.lost(ids);
        }
        self.hold_open_batches();
        Admitted::Held
    }

    /// Whether a new event would be held rather than batched.
    fn holds_back(&self) -> bool {
        self.shared.lock_backlog().holds_back() || !self.breaker.permits_calls()
    }

    /// Once events are held, open batches join them: they are older than what is held now,
    /// and a batch flushing live after the breaker closes would overtake the replay of younger
    /// events of its class.
    fn hold_open_batches(&mut self) {
        for batch in self.batcher.drain(Instant::now()) {
            self.shared.hold_all(batch.events);
        }
    }

    /// Flushes the batches whose linger expired, after they take what already waits in the
    /// queue (those events arrived before the deadline): a worker busy writing one class's
    /// batches must not turn a burst into half-empty linger flushes of the others. Bounded by
    /// the queue's length now, so a sustained flood cannot postpone the flush for ever.
    async fn flush_due(&mut self) {
        for _ in 0..self.queue.len() {
            let Ok(pending) = self.queue.try_recv() else {
                break;
            };
            self.accept(pending).await;
        }
        for batch in self.batcher.take_due(Instant::now()) {
            self.write_batch(batch).await;
        }
    }

    /// Writes every open batch now (`RealtimePath::flush`).
    async fn flush_all(&mut self) {
        for batch in self.batcher.drain(Instant::now()) {
            self.write_batch(batch).await;
        }
    }

    async fn housekeeping(&mut self) {
        self.settle().await;
        self.flush_spill().await;
        if self.spool_pending && self.breaker.permits_calls() {
            self.replay_spool().await;
        }
        for class in super::BatchClass::ALL {
            let (tuning, waiting) = (self.batcher.tuning(class), self.batcher.waiting(class));
            self.shared.observed.record_class(class, tuning, waiting);
        }
        let idle =
            self.batcher.next_deadline().is_none() && !self.shared.lock_backlog().holds_back();
        let due = self.last_call.elapsed() >= self.shared.settings.probe_interval;
        let wanted = self.breaker.state() == BreakerState::HalfOpen
            || (!self.shared.observed.target_up() && self.breaker.permits_calls());
        if idle && due && wanted {
            self.probe().await;
        }
    }

    /// A call with no events: applies the schema if needed and lets a half-open breaker close
    /// (or an unknown target be known) without waiting for traffic.
    async fn probe(&mut self) {
        self.settle().await;
        let sink = &self.sink;
        let result = self.breaker.call(|| sink.probe()).await;
        self.last_call = Instant::now();
        match result {
            Ok(()) => self.target_is(true, None),
            Err(BreakerError::Rejected) => {}
            Err(error) => self.target_is(false, Some(&error.to_string())),
        }
    }

    fn rows(&self, events: &[Pending]) -> RealtimeRows {
        let epoch = &self.shared.settings.epoch;
        let mut rows = RealtimeRows::with_capacity(events.len());
        for pending in events {
            rows.push(&pending.published.event, pending.published.offset, epoch);
        }
        rows
    }
}

/// What [`Worker::hold_unless_admitted`] did with an event.
enum Admitted {
    /// To the batcher.
    Yes(Pending),
    /// Into the backlog.
    Held,
    /// To be held once the write in flight is accounted for.
    AfterTheWriteInFlight(Pending),
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Resolves on the next transition (or when the breaker is gone, never again).
async fn next_transition(transitions: &mut Option<broadcast::Receiver<Transition>>) {
    let Some(receiver) = transitions else {
        return std::future::pending().await;
    };
    if let Err(broadcast::error::RecvError::Closed) = receiver.recv().await {
        *transitions = None;
    }
}
