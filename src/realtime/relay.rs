//! What each instance's Realtime path committed, told to the others (`SWITCHYARD_NATS_URL`
//! set): every instance writes its share of the routed events, but every instance's validator
//! expects all of them, and reads back only the rows it hears were committed. Without this,
//! a validator counted every event another instance wrote as `missing_in_realtime`.
//!
//! Each batch goes out on a core NATS subject beside the stream (`<stream>.committed`, not
//! stored: an instance that misses one, or starts later, counts those events unchecked or
//! missing only if it also never reads them, as with a lagging local announcement). The
//! commit time travels as wall-clock milliseconds and becomes a local instant on arrival
//! (instances' clocks are assumed NTP-close). Dropped batches are not relayed: a dropped event
//! is handed back to the work queue and written by some instance later.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{CommitKind, CommittedBatch, RealtimePath};
use crate::hub::jetstream::JetStream;

/// One committed batch on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct Relayed {
    /// The instance that committed it (its own relays are skipped).
    from: Uuid,
    kind: CommitKind,
    ids: Vec<Uuid>,
    offsets: Vec<u64>,
    /// Milliseconds since the Unix epoch.
    committed_at_ms: u64,
}

/// Publishes this instance's commits and relays the others' into `realtime`'s announcements.
pub fn spawn_relay(
    engine: JetStream,
    realtime: RealtimePath,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let me = Uuid::new_v4();
    let subject = engine.commits_subject();
    let client = engine.client().clone();
    let mut committed = realtime.subscribe_committed();
    tokio::spawn(async move {
        let mut theirs = loop {
            match client.subscribe(subject.clone()).await {
                Ok(subscriber) => break subscriber,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot subscribe to other instances' Realtime commits; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                ours = committed.recv() => match ours {
                    Ok(batch) if !batch.relayed && batch.kind != CommitKind::Dropped => {
                        let relayed = Relayed {
                            from: me,
                            kind: batch.kind,
                            ids: batch.ids,
                            offsets: batch.offsets,
                            committed_at_ms: wall_ms(batch.committed_at),
                        };
                        let payload = serde_json::to_vec(&relayed).expect("a batch serializes");
                        if let Err(e) = client.publish(subject.clone(), payload.into()).await {
                            tracing::debug!(error = %e, "cannot tell other instances of a Realtime commit");
                        }
                    }
                    Ok(_) => {}
                    // Missed announcements: the others' validators miss those rows as ours does.
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
                message = theirs.next() => {
                    let Some(message) = message else { return };
                    match serde_json::from_slice::<Relayed>(&message.payload) {
                        Ok(batch) if batch.from != me => realtime.relay_committed(CommittedBatch {
                            ids: batch.ids,
                            offsets: batch.offsets,
                            kind: batch.kind,
                            committed_at: local_instant(batch.committed_at_ms),
                            relayed: true,
                        }),
                        Ok(_) => {}
                        Err(e) => tracing::debug!(error = %e, "an unreadable Realtime commit relay; ignored"),
                    }
                }
            }
        }
    })
}

/// `at` as milliseconds since the Unix epoch.
fn wall_ms(at: Instant) -> u64 {
    let wall = SystemTime::now()
        .checked_sub(at.elapsed())
        .unwrap_or(UNIX_EPOCH);
    wall.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A wall-clock time as a local instant (never in the future).
fn local_instant(ms: u64) -> Instant {
    let now_ms = wall_ms(Instant::now());
    let ago = Duration::from_millis(now_ms.saturating_sub(ms));
    Instant::now().checked_sub(ago).unwrap_or_else(Instant::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_time_survives_the_trip_within_a_few_milliseconds() {
        let at = Instant::now()
            .checked_sub(Duration::from_millis(1_500))
            .unwrap();
        let back = local_instant(wall_ms(at));
        let error = back.max(at) - back.min(at);
        assert!(error < Duration::from_millis(5), "{error:?}");
    }
}
