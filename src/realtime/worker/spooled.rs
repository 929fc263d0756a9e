//! The worker's side of the local spool (`crate::realtime::spool`): at start, the files an
//! earlier run left are written to the target through the breaker, oldest first, and deleted
//! once committed (retried at housekeeping while the target refuses); at shutdown, what
//! neither the target nor the dead letter took is written there rather than lost.

use tokio::time::Instant;

use super::Worker;
use crate::realtime::CommitKind;
use crate::realtime::spool;
use crate::realtime::status::Counters;
use crate::store::dead_letter::RealtimeRows;

impl Worker {
    /// Replays the spool files, if any; leaves `spool_pending` set while some remain.
    pub(super) async fn replay_spool(&mut self) {
        let Some(dir) = self.shared.settings.spool_dir.clone() else {
            self.spool_pending = false;
            return;
        };
        let files = match spool::files(&dir) {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "cannot read the Realtime spool directory");
                self.spool_pending = false;
                return;
            }
        };
        self.spool_pending = !files.is_empty();
        for path in files {
            let rows = match spool::read(&path) {
                Ok(rows) => rows,
                Err(e) => {
                    // Kept for an operator; the rest of the spool goes on.
                    tracing::error!(error = %e, file = %path.display(), "unreadable Realtime spool file left in place");
                    continue;
                }
            };
            let started = Instant::now();
            // Through the quarantine-aware writer: a row the target refuses for its content is
            // set aside like any other, not retried from the spool forever.
            match self.write_rows(&rows).await {
                Ok(written) => {
                    if let Err(e) = std::fs::remove_file(&path) {
                        // Written already; a second replay adds nothing (idempotent by id).
                        tracing::warn!(error = %e, file = %path.display(), "cannot delete a replayed spool file");
                    }
                    tracing::info!(events = rows.len(), inserted = written.inserted, file = %path.display(), "Realtime spool replayed");
                    Counters::add(&self.shared.counters.spool_replayed, rows.len());
                    self.committed(
                        &written.rows,
                        written.inserted,
                        started.elapsed(),
                        CommitKind::DeadLetter,
                    );
                }
                Err(error) => {
                    self.failed(&error, rows.len());
                    return;
                }
            }
        }
        self.spool_pending = false;
    }

    /// Writes `rows` to a new spool file; false (logged) when there is no spool or it failed.
    pub(super) fn spool(&self, rows: &RealtimeRows) -> bool {
        let Some(dir) = &self.shared.settings.spool_dir else {
            return false;
        };
        match spool::write(dir, rows) {
            Ok(path) => {
                Counters::add(&self.shared.counters.spooled, rows.len());
                tracing::info!(events = rows.len(), file = %path.display(), "Realtime events kept in the local spool for the next start");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, dir = %dir.display(), events = rows.len(), "cannot write the Realtime spool");
                false
            }
        }
    }
}
