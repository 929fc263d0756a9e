//! Live batches are written one behind the other, not one after the other: the worker keeps
//! one write in flight (its own task) and goes on taking events and building the next batch.
//! When the next batch is ready while the write before it is still under way, it starts at
//! once, copies its rows in a transaction, and waits at its [`Gate`] before committing: the
//! gate opens when the worker has seen the write before commit. So the next batch's rows are
//! built, encoded and copied while the one before commits (a WAL flush) and is accounted for,
//! instead of after it (docs/realtime-bench.md, issue 14 item 3), and rows still commit in
//! stream order.
//!
//! What keeps the order and exactly-once promises:
//!
//! - a write commits only after the write before it has committed (its gate);
//! - outcomes are taken in launch order, so commits are announced, counted and fed to the
//!   batcher in order;
//! - a write that does not commit (failed, rejected, or refused for its content and then
//!   split) takes the one waiting behind it along: that one is cancelled at its gate (nothing
//!   of it committed, no outcome recorded with the breaker: the failure is counted once) and
//!   is held behind it in the backlog, or written after it once the split is done;
//! - anything else the worker does (holding events, a replay step, housekeeping, a probe,
//!   shutdown) first waits for the write in flight ([`Worker::settle`]), so nothing is held,
//!   replayed or spilled ahead of rows still being written;
//! - only a healthy target gets two writes at once: the breaker closed and the class's
//!   writes faster than the slow-write threshold (a write's call timeout also covers its wait
//!   at the gate).

use std::borrow::Cow;
use std::time::Duration;

use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;

use super::quarantine::{Written, refused_for_content};
use super::{Worker, WriteFailure};
use crate::breaker::{BreakerError, BreakerState};
use crate::realtime::CommitKind;
use crate::realtime::batcher::Batch;
use crate::realtime::sink::Gate;
use crate::store::dead_letter::RealtimeRows;

/// A live write under way in its own task.
pub(super) struct InFlight {
    batch: Batch,
    task: JoinHandle<Finished>,
    /// The task's answer, once the worker's loop saw it end.
    ended: Option<Result<Finished, JoinError>>,
}

/// What a write's task comes back with.
struct Finished {
    rows: RealtimeRows,
    /// `Ok(Err(_))`: refused for its content (the target answered).
    result: Result<Result<u64, sqlx::Error>, BreakerError<sqlx::Error>>,
    /// The write's own time, without its wait at the gate.
    took: Duration,
}

/// How a write ended, before a content refusal is dealt with.
enum Landed {
    Committed,
    /// Refused whole for its content: nothing committed yet. Boxed: rare, and large.
    Refused(Box<(Batch, RealtimeRows, sqlx::Error)>),
    /// Failed or rejected; its events are held.
    Failed,
}

impl Worker {
    /// Writes a live batch behind the write in flight (module docs).
    pub(super) async fn write_batch(&mut self, batch: Batch) {
        let rows = self.rows(&batch.events);
        let Some(previous) = self.in_flight.take() else {
            self.in_flight = Some(self.launch(batch, rows, Gate::open()));
            return;
        };
        if !self.may_overlap(&previous) {
            if self.finish(previous).await {
                self.in_flight = Some(self.launch(batch, rows, Gate::open()));
            } else {
                self.shared.hold_all(batch.events);
                self.hold_open_batches();
            }
            return;
        }
        let (open, gate) = Gate::after();
        let next = self.launch(batch, rows, gate);
        match self.land(previous).await {
            Landed::Committed => {
                // The next write may be gone already (it failed before its gate): its
                // outcome is taken all the same.
                let _ = open.send(());
                self.in_flight = Some(next);
            }
            landed => {
                // Nothing of the write before is committed yet: the next one goes behind it.
                let batch = cancel(next).await;
                if self.settle_landed(landed).await {
                    let rows = self.rows(&batch.events);
                    self.in_flight = Some(self.launch(batch, rows, Gate::open()));
                } else {
                    self.shared.hold_all(batch.events);
                    self.hold_open_batches();
                }
            }
        }
    }

    /// Waits for the write in flight and accounts for it; if it did not commit, its events
    /// are held and the open batches join them behind.
    pub(super) async fn settle(&mut self) {
        if let Some(flight) = self.in_flight.take()
            && !self.finish(flight).await
        {
            self.hold_open_batches();
        }
    }

    /// Resolves when the write in flight has ended (never when there is none); its answer
    /// waits in it for [`settle`](Self::settle).
    pub(super) async fn in_flight_ended(in_flight: &mut Option<InFlight>) {
        match in_flight {
            Some(flight) if flight.ended.is_none() => {
                flight.ended = Some((&mut flight.task).await);
            }
            Some(_) => {}
            None => std::future::pending().await,
        }
    }

    fn may_overlap(&self, previous: &InFlight) -> bool {
        let healthy = self
            .batcher
            .tuning(previous.batch.class)
            .latency_ewma
            .is_none_or(|ewma| ewma < self.shared.settings.slow_write);
        let closed = matches!(
            self.breaker.state(),
            BreakerState::Closed | BreakerState::ForcedClosed | BreakerState::Disabled
        );
        healthy && closed
    }

    fn launch(&self, batch: Batch, rows: RealtimeRows, mut gate: Gate) -> InFlight {
        let (sink, breaker) = (self.sink.clone(), self.breaker.clone());
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let (written, gate_ref) = (&rows, &mut gate);
            let result = breaker
                .call(move || async move {
                    match sink.write_after(written, gate_ref).await {
                        Err(error) if refused_for_content(&error) => Ok(Err(error)),
                        other => other.map(Ok),
                    }
                })
                .await;
            let took = started.elapsed().saturating_sub(gate.waited());
            Finished { rows, result, took }
        });
        InFlight {
            batch,
            task,
            ended: None,
        }
    }

    /// Waits for `flight` and accounts for it, splitting a content refusal; whether it
    /// committed (if not, its events are held).
    async fn finish(&mut self, flight: InFlight) -> bool {
        let landed = self.land(flight).await;
        self.settle_landed(landed).await
    }

    /// Waits for `flight`; a commit is accounted for, a failure held.
    async fn land(&mut self, flight: InFlight) -> Landed {
        let InFlight { batch, task, ended } = flight;
        let ended = match ended {
            Some(ended) => ended,
            None => task.await,
        };
        let finished = match ended {
            Ok(finished) => finished,
            Err(error) => {
                // Only a panic: the worker never cancels a write it waits for.
                tracing::error!(%error, events = batch.events.len(), "a Realtime write task ended without an answer; its events are held for replay");
                self.shared.hold_all(batch.events);
                return Landed::Failed;
            }
        };
        self.last_call = Instant::now();
        let Finished { rows, result, took } = finished;
        match result {
            Ok(Ok(inserted)) => {
                let written = Written {
                    rows: Cow::Borrowed(&rows),
                    inserted,
                };
                self.live_committed(&batch, &written, took);
                Landed::Committed
            }
            Ok(Err(refusal)) => Landed::Refused(Box::new((batch, rows, refusal))),
            Err(error) => {
                self.failed(&WriteFailure::Call(error), batch.events.len());
                self.shared.hold_all(batch.events);
                Landed::Failed
            }
        }
    }

    /// Splits a refused write (committing what the target takes, quarantining the rest);
    /// whether it is done.
    async fn settle_landed(&mut self, landed: Landed) -> bool {
        let (batch, rows, refusal) = match landed {
            Landed::Committed => return true,
            Landed::Failed => return false,
            Landed::Refused(refused) => *refused,
        };
        let started = Instant::now();
        match self.write_refused(&rows, &refusal).await {
            Ok(written) => {
                self.live_committed(&batch, &written, started.elapsed());
                true
            }
            Err(error) => {
                self.failed(&error, batch.events.len());
                self.shared.hold_all(batch.events);
                false
            }
        }
    }

    fn live_committed(&mut self, batch: &Batch, written: &Written<'_>, took: Duration) {
        self.batcher.record_write(batch, took);
        let tuning = self.batcher.tuning(batch.class);
        let waiting = self.batcher.waiting(batch.class);
        self.shared
            .observed
            .record_class(batch.class, tuning, waiting);
        self.committed(&written.rows, written.inserted, took, CommitKind::Live);
    }
}

/// Cancels a write waiting at its gate (module docs): nothing of it is committed. Its batch
/// comes back.
async fn cancel(flight: InFlight) -> Batch {
    if flight.ended.is_none() {
        flight.task.abort();
        // Either cancelled, or ended on its own before its gate (a failure the breaker
        // counted): in both cases nothing of it committed.
        let _ = flight.task.await;
    }
    flight.batch
}
