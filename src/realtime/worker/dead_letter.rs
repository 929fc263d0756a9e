//! The worker's dead-letter side: writing the spill to the control store, replaying the dead
//! letter once the memory backlog has drained, and adopting rows an earlier run left. Only
//! used when the target is another database (`Worker::control` is set).

use std::time::Duration;

use tokio::time::{Instant, timeout};

use super::{CONTROL_TIMEOUT, REPLAY_RETRY, SPILL_CHUNK, Worker};
use crate::realtime::CommitKind;
use crate::realtime::status::Counters;
use crate::store::dead_letter;

impl Worker {
    /// Replays one chunk of the dead letter: claimed in a control-store transaction, written to
    /// the target, deleted in the same transaction once the target has them.
    pub(super) async fn replay_dead_letter(&mut self, chunk: usize) {
        let Some(control) = self.control.clone() else {
            return;
        };
        self.next_replay = Instant::now() + Duration::from_secs(1);
        if !self.flush_spill().await {
            return;
        }
        let Ok(Ok(mut tx)) = timeout(CONTROL_TIMEOUT, control.begin()).await else {
            tracing::warn!("cannot reach the control store to replay the Realtime dead letter");
            return;
        };
        let claimed = timeout(
            CONTROL_TIMEOUT,
            dead_letter::claim_oldest(&mut tx, chunk as i64),
        );
        let claimed = match claimed.await {
            Ok(Ok(claimed)) => claimed,
            outcome => {
                tracing::warn!(error = %describe(outcome), "cannot read the Realtime dead letter");
                return;
            }
        };
        if claimed.rows.is_empty() {
            drop(tx);
            // Empty here may mean another instance holds the rest; only an empty table closes it.
            if let Ok(Ok(0)) = timeout(CONTROL_TIMEOUT, dead_letter::count(&control)).await
                && self.shared.lock_backlog().dead_letter_drained()
            {
                tracing::info!("Realtime dead letter replayed: new events go to the target again");
            }
            return;
        }
        let started = Instant::now();
        let rows = &claimed.rows;
        match self.write_rows(rows).await {
            Ok(written) => {
                let delete = async {
                    dead_letter::delete(&mut *tx, &claimed.dead_letter_ids).await?;
                    tx.commit().await
                };
                let deleted = timeout(CONTROL_TIMEOUT, delete).await;
                if !matches!(deleted, Ok(Ok(()))) {
                    // They are in the target; replaying them again later is harmless (idempotent).
                    tracing::warn!(error = %describe(deleted), rows = rows.len(), "replayed dead-letter rows could not be removed; they will be replayed again");
                }
                let took = started.elapsed();
                self.committed(
                    &written.rows,
                    written.inserted,
                    took,
                    CommitKind::DeadLetter,
                );
                self.pace(rows.len());
            }
            Err(error) => {
                self.failed(&error, rows.len());
                self.next_replay = Instant::now() + REPLAY_RETRY;
            }
        }
    }

    /// Writes the spill to the dead letter; true when the spill is empty afterwards.
    pub(super) async fn flush_spill(&mut self) -> bool {
        let Some(control) = &self.control else {
            return true;
        };
        loop {
            let events = self.shared.lock_backlog().take_spill(SPILL_CHUNK);
            if events.is_empty() {
                return true;
            }
            let rows = self.rows(&events);
            match timeout(CONTROL_TIMEOUT, dead_letter::insert(control, &rows)).await {
                Ok(Ok(_)) => Counters::add(&self.shared.counters.dead_lettered, events.len()),
                outcome => {
                    tracing::warn!(error = %describe(outcome), events = events.len(), "cannot write the Realtime dead letter; will retry");
                    self.shared.lock_backlog().return_spill(events);
                    return false;
                }
            }
        }
    }

    /// Reads whether an earlier run left rows in the dead letter: they go first.
    pub(super) async fn adopt_dead_letter(&mut self) {
        let Some(control) = &self.control else {
            return;
        };
        match timeout(CONTROL_TIMEOUT, dead_letter::count(control)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(rows)) => {
                self.shared.lock_backlog().mark_spilled_tail();
                tracing::info!(
                    rows,
                    "Realtime dead letter holds events from an earlier run; they are replayed first"
                );
            }
            outcome => {
                tracing::warn!(error = %describe(outcome), "cannot read the Realtime dead letter at start")
            }
        }
    }
}

/// The error of a control-store statement run under [`CONTROL_TIMEOUT`].
pub(super) fn describe<T>(
    outcome: Result<Result<T, sqlx::Error>, tokio::time::error::Elapsed>,
) -> String {
    match outcome {
        Ok(Ok(_)) => "none".into(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("timed out after {} s", CONTROL_TIMEOUT.as_secs()),
    }
}
