//! The worker's bookkeeping of each call's outcome: counters, latencies, the target's health
//! (logged once per change), and the commit announcements.

use std::time::Duration;

use super::{Worker, WriteFailure};
use crate::breaker::BreakerError;
use crate::realtime::CommitKind;
use crate::realtime::status::Counters;
use crate::store::dead_letter::RealtimeRows;

impl Worker {
    /// The target committed `rows` (`inserted` of them new) in `took`.
    pub(super) fn committed(
        &self,
        rows: &RealtimeRows,
        inserted: u64,
        took: Duration,
        kind: CommitKind,
    ) {
        let counters = &self.shared.counters;
        let counter = match kind {
            CommitKind::Live => &counters.written,
            CommitKind::Replay => &counters.replayed,
            CommitKind::DeadLetter => &counters.dead_letter_replayed,
            // Announced by the backlog when it drops events, and by the quarantine; never the
            // outcome of a write.
            CommitKind::Dropped | CommitKind::Quarantined => return,
        };
        Counters::add(counter, rows.len());
        Counters::add(
            &counters.skipped_duplicates,
            rows.len().saturating_sub(inserted as usize),
        );
        self.shared.observed.record_latency(took);
        self.target_is(true, None);
        let offsets = rows.sequence_ids.iter().map(|&o| o as u64).collect();
        self.shared.announce(rows.ids.clone(), offsets, kind);
    }

    /// A write of `events` did not commit: rejected by the breaker, failed or timed out, or
    /// its refused rows could not be quarantined.
    pub(super) fn failed(&self, error: &WriteFailure, events: usize) {
        let counters = &self.shared.counters;
        let error = match error {
            WriteFailure::Call(error) => error,
            WriteFailure::Quarantine(_) => {
                tracing::warn!(error = %error, events, "Realtime rows refused by the target cannot be quarantined yet; the batch is held and retried");
                return;
            }
        };
        match error {
            BreakerError::Rejected => Counters::add(&counters.rejected_batches, 1),
            BreakerError::Timeout | BreakerError::Failed(_) => {
                Counters::add(&counters.failed_batches, 1);
                tracing::debug!(error = %error, events, "Realtime write failed; its events are held for replay");
                self.target_is(false, Some(&error.to_string()));
            }
        }
    }

    /// Records the target's state; logs once per change.
    pub(super) fn target_is(&self, up: bool, error: Option<&str>) {
        if self.shared.observed.set_target(up) {
            if up {
                tracing::info!(target_database = %self.shared.target_database, "Realtime target is up");
            } else {
                tracing::warn!(target_database = %self.shared.target_database, error, "Realtime target is down: events are held in the backlog");
            }
        }
    }
}
