//! Retention: rows the target has held longer than the retention (by `created_at`, when they
//! were written) are deleted in small batches with a pause between them, so the Realtime table
//! does not grow without bound and no statement holds long locks.
//!
//! Deletes are Realtime writes like any other: they go through the breaker (a failing target
//! fails them, and they count), and a run is skipped while the breaker is not closed, so
//! retention never competes with recovery for half-open trial calls.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::status::Counters;
use super::{RealtimeSink, Shared};
use crate::breaker::{Breaker, BreakerState};

pub(super) async fn run(
    shared: Arc<Shared>,
    sink: RealtimeSink,
    breaker: Breaker,
    shutdown: CancellationToken,
) {
    let settings = &shared.settings;
    let Ok(retention) = chrono::Duration::from_std(settings.retention) else {
        return;
    };
    let start = tokio::time::Instant::now() + settings.retention_interval;
    let mut every = tokio::time::interval_at(start, settings.retention_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        if !matches!(
            breaker.state(),
            BreakerState::Closed | BreakerState::ForcedClosed | BreakerState::Disabled
        ) {
            continue;
        }
        let Some(cutoff) = chrono::Utc::now().checked_sub_signed(retention) else {
            continue;
        };
        let mut deleted = 0;
        loop {
            let batch = settings.retention_batch;
            match breaker
                .call(|| sink.delete_written_before(cutoff, batch))
                .await
            {
                Ok(n) => {
                    deleted += n;
                    Counters::add(&shared.counters.retention_deleted, n as usize);
                    if n < batch as u64 {
                        break;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "Realtime retention stopped; it runs again next interval");
                    break;
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(settings.retention_pause) => {}
            }
        }
        if deleted > 0 {
            tracing::info!(
                rows = deleted,
                retention_days = settings.retention.as_secs() / 86_400,
                "deleted Realtime rows past retention"
            );
        }
    }
}
