//! The worker at shutdown: a last write for what is queued and batched, the backlog replayed
//! while the target takes it, and what is still held kept in the dead letter (another target
//! database), else in the local spool (the target is the control store, or the control store
//! does not answer), else counted as dropped. Nothing is cancelled midway, so nothing is lost
//! unseen.

use tokio::time::{Instant, timeout};

use super::dead_letter::describe;
use super::{CONTROL_TIMEOUT, SPILL_CHUNK, Worker};
use crate::realtime::status::Counters;
use crate::store::dead_letter;

impl Worker {
    /// At shutdown: what is queued joins the batches, and open batches get one write each;
    /// a healthy target also takes the backlog (unpaced). Nothing starts after `grace`, and
    /// nothing is cancelled midway (each write is bounded by the breaker's call timeout), so
    /// no event is in flight when the rest is kept or counted.
    pub(super) async fn write_what_is_left(&mut self, grace: Instant) {
        self.queue.close();
        while let Ok(pending) = self.queue.try_recv() {
            if Instant::now() < grace {
                self.accept(pending).await;
            } else {
                // Held behind the rows of the write in flight, whatever they come to.
                self.settle().await;
                self.shared.hold(pending);
            }
        }
        for batch in self.batcher.drain(Instant::now()) {
            if Instant::now() < grace {
                self.write_batch(batch).await;
            } else {
                self.settle().await;
                self.shared.hold_all(batch.events);
            }
        }
        self.settle().await;
        while Instant::now() < grace
            && !self.shared.lock_backlog().is_empty()
            && self.breaker.permits_calls()
        {
            let before = self.shared.lock_backlog().len();
            self.replay_step().await;
            if self.shared.lock_backlog().len() >= before {
                break;
            }
        }
    }

    /// At shutdown, after the grace: the dead letter keeps what is still held (a restart
    /// replays it), or it is counted as dropped.
    pub(super) async fn keep_or_count_the_rest(&mut self) {
        let mut left = self.shared.lock_backlog().take_all();
        left.extend(
            self.batcher
                .drain(Instant::now())
                .into_iter()
                .flat_map(|b| b.events),
        );
        left.extend(self.shared.lock_backlog().take_spill(usize::MAX));
        if let Some(control) = &self.control {
            let mut kept = 0;
            for chunk in left.chunks(SPILL_CHUNK) {
                let rows = self.rows(chunk);
                match timeout(CONTROL_TIMEOUT, dead_letter::insert(control, &rows)).await {
                    Ok(Ok(_)) => kept += chunk.len(),
                    outcome => {
                        tracing::warn!(error = %describe(outcome), "cannot keep the Realtime backlog in the dead letter at shutdown");
                        break;
                    }
                }
            }
            Counters::add(&self.shared.counters.dead_lettered, kept);
            if kept > 0 {
                tracing::info!(
                    events = kept,
                    "Realtime backlog kept in the dead letter for the next start"
                );
            }
            left.drain(..kept);
        }
        if !left.is_empty() && self.spool(&self.rows(&left)) {
            left.clear();
        }
        if !left.is_empty() {
            self.shared.count_dropped(left.len());
            tracing::error!(
                events = left.len(),
                "shutting down with Realtime events neither written nor kept; they are lost to the Realtime table"
            );
        }
    }
}
