//! The worker's replay of the in-memory backlog: oldest first, paced at the replay rate
//! (small trial batches while half-open), taking along the events that joined the backlog
//! only because a replay was under way. The dead letter's replay is in `dead_letter`.

use std::time::Duration;

use tokio::time::Instant;

use super::{MAX_REPLAY_BATCH, REPLAY_RETRY, Worker};
use crate::breaker::BreakerState;
use crate::realtime::CommitKind;

impl Worker {
    /// When the next replay step may run: `None` when nothing is held or the breaker admits
    /// nothing (a transition wakes the loop).
    pub(super) fn replay_due(&self) -> Option<Instant> {
        let work = {
            let backlog = self.shared.lock_backlog();
            !backlog.is_empty() || (backlog.spilled_tail() && self.control.is_some())
        };
        (work && self.breaker.permits_calls()).then_some(self.next_replay)
    }

    /// Writes the oldest held events (or, with the memory part empty, the dead letter's).
    pub(super) async fn replay_step(&mut self) {
        // Replayed rows go behind the live write under way (`in_flight`).
        self.settle().await;
        let (paced, extra) = if self.breaker.state() == BreakerState::HalfOpen {
            (self.shared.settings.half_open_batch.max(1), 0)
        } else {
            let paced = self.shared.settings.replay_chunk();
            (
                paced,
                self.arrived_behind
                    .min(MAX_REPLAY_BATCH.saturating_sub(paced)),
            )
        };
        let chunk = paced + extra;
        let front = self.shared.lock_backlog().front(chunk);
        if front.is_empty() {
            return self.replay_dead_letter(chunk).await;
        }
        let rows = self.rows(&front);
        let started = Instant::now();
        match self.write_rows(&rows).await {
            Ok(written) => {
                self.shared
                    .lock_backlog()
                    .remove(front.iter().map(|p| p.published.offset));
                let took = started.elapsed();
                self.committed(&written.rows, written.inserted, took, CommitKind::Replay);
                // The arrivals taken along do not count against the pace.
                let taken_extra = front.len().saturating_sub(paced).min(extra);
                self.arrived_behind -= taken_extra;
                if self.shared.lock_backlog().is_empty() {
                    self.arrived_behind = 0;
                }
                self.pace(front.len() - taken_extra);
            }
            Err(error) => {
                self.failed(&error, front.len());
                self.next_replay = Instant::now() + REPLAY_RETRY;
            }
        }
    }

    /// Spaces replay writes so they average the replay rate.
    pub(super) fn pace(&mut self, events: usize) {
        let rate = f64::from(self.shared.settings.replay_rate_per_s.max(1));
        self.next_replay = Instant::now() + Duration::from_secs_f64(events as f64 / rate);
    }
}
