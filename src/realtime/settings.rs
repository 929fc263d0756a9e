//! The Realtime path's settings: the operator-facing ones from `Config` (env names and
//! defaults are in `config.rs`), plus tuning that has sane fixed defaults and is public so
//! tests and benchmarks can shorten it.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use crate::config::Config;

#[derive(Debug, Clone)]
pub struct RealtimeSettings {
    /// The target (`REALTIME_DATABASE_URL`, default `DATABASE_URL`).
    pub database_url: String,
    /// The hub's epoch, written into every row with the event's offset.
    pub epoch: String,
    /// Events waiting in front of the batcher (`SWITCHYARD_REALTIME_QUEUE`).
    pub queue_capacity: usize,
    /// Events held in memory while the target fails (`SWITCHYARD_REALTIME_BACKLOG`).
    pub backlog_capacity: usize,
    /// Bytes the backlog's events may hold in memory (`SWITCHYARD_REALTIME_BACKLOG_BYTES`,
    /// counted by [`crate::hub::Published::held_bytes`]).
    pub backlog_bytes: usize,
    /// Events per second the backlog and the dead letter are replayed at
    /// (`SWITCHYARD_REALTIME_REPLAY_RATE`).
    pub replay_rate_per_s: u32,
    /// Rows older than this are deleted from the target (`SWITCHYARD_REALTIME_RETENTION_DAYS`);
    /// zero keeps everything.
    pub retention: Duration,
    /// Rows one retention statement deletes.
    pub retention_batch: i64,
    /// The pause between two retention statements.
    pub retention_pause: Duration,
    /// How often retention runs (the first run is one interval after start).
    pub retention_interval: Duration,
    /// The high class's start size (the legacy `MONITORING_BATCH_SIZE`; preset 100).
    pub high_batch_size: Option<usize>,
    /// Every class's batches may grow to this many events (see `batcher`; 4,000;
    /// `SWITCHYARD_REALTIME_LARGEST_BATCH`).
    pub largest_batch: usize,
    /// Connections a batch of `sink::SPLIT_FROM` events or more is written over at once, 1 or
    /// 2 (see `sink`; 1; `SWITCHYARD_REALTIME_WRITERS`).
    pub writers: usize,
    /// Write latency above which the target counts as struggling (see `batcher`).
    pub slow_write: Duration,
    /// Events per half-open trial write: trials are small batches from the backlog.
    pub half_open_batch: usize,
    /// While the breaker admits trials and nothing else is to be written, a trial call is
    /// made this often so the breaker can close (and the schema be applied) without traffic.
    pub probe_interval: Duration,
    /// Longest the worker spends at shutdown writing open batches and spilling the backlog.
    pub shutdown_grace: Duration,
    /// Where events still held at shutdown go when the control store cannot keep them
    /// (`SWITCHYARD_SPOOL_DIR`); `None`: they are counted as dropped.
    pub spool_dir: Option<std::path::PathBuf>,
}

/// The largest batch by default (`SWITCHYARD_REALTIME_LARGEST_BATCH`; see `batcher`).
pub const DEFAULT_LARGEST_BATCH: usize = 4_000;
/// Connections a large batch is written over by default (`SWITCHYARD_REALTIME_WRITERS`).
/// One since the worker copies the next batch while the one before commits: two halves
/// inserted at once contend for the same hot index pages (the ends of the time-ordered
/// indexes), which cost the backends more CPU per row than the second connection gained on
/// the benchmark machine (sink/COPY 0.93 / 0.93 / 0.93 with 1 against 0.87 / 0.90 / 0.92
/// with 2, alternated; docs/realtime-bench.md).
pub const DEFAULT_WRITERS: usize = 1;

impl RealtimeSettings {
    /// The defaults for a target: queue 10,000, backlog 100,000, replay 5,000 events/s,
    /// retention 7 days.
    pub fn new(database_url: impl Into<String>, epoch: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            epoch: epoch.into(),
            queue_capacity: 10_000,
            backlog_capacity: 100_000,
            backlog_bytes: 256 * 1024 * 1024,
            replay_rate_per_s: 5_000,
            retention: Duration::from_secs(7 * 86_400),
            retention_batch: 1_000,
            retention_pause: Duration::from_millis(100),
            retention_interval: Duration::from_secs(600),
            high_batch_size: None,
            largest_batch: DEFAULT_LARGEST_BATCH,
            writers: DEFAULT_WRITERS,
            slow_write: Duration::from_millis(100),
            half_open_batch: 10,
            probe_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(5),
            spool_dir: None,
        }
    }

    /// The settings `serve` runs with.
    pub fn from_config(config: &Config, epoch: &str) -> Self {
        let realtime = &config.realtime;
        let target = realtime
            .database_url
            .clone()
            .unwrap_or_else(|| config.database_url.clone());
        Self {
            queue_capacity: realtime.queue as usize,
            backlog_capacity: realtime.backlog as usize,
            backlog_bytes: usize::try_from(config.limits.realtime_backlog_bytes)
                .unwrap_or(usize::MAX),
            replay_rate_per_s: realtime.replay_rate,
            retention: Duration::from_secs(u64::from(realtime.retention_days) * 86_400),
            high_batch_size: config.legacy.batch_size.map(|n| n.max(1) as usize),
            largest_batch: realtime.largest_batch as usize,
            writers: realtime.writers as usize,
            spool_dir: Some(config.spool_dir.clone()),
            // Within the whole shutdown's deadline, leaving room to spool what is left.
            shutdown_grace: Duration::from_secs(
                config.shutdown_deadline_s.saturating_sub(2).clamp(1, 10),
            ),
            ..Self::new(target, epoch)
        }
    }

    /// Events one replay write carries while the breaker is closed: a tenth of a second's
    /// worth at the replay rate, at most 1,000.
    pub(super) fn replay_chunk(&self) -> usize {
        (self.replay_rate_per_s as usize / 10).clamp(1, 1_000)
    }
}

/// Whether two URLs name the same database (host, port and database name), so the target
/// is the control store. A URL that does not parse is compared as text.
pub(super) fn same_database(a: &str, b: &str) -> bool {
    match (PgConnectOptions::from_str(a), PgConnectOptions::from_str(b)) {
        (Ok(a), Ok(b)) => {
            a.get_host() == b.get_host()
                && a.get_port() == b.get_port()
                && a.get_database() == b.get_database()
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::same_database;

    #[test]
    fn the_same_database_is_recognised_whatever_else_the_urls_say() {
        assert!(same_database(
            "postgres://app:x@db:5432/switchyard",
            "postgres://other@db/switchyard?sslmode=disable"
        ));
        assert!(!same_database(
            "postgres://db:5432/switchyard",
            "postgres://db:5432/realtime"
        ));
        assert!(!same_database(
            "postgres://db:5432/switchyard",
            "postgres://127.0.0.1:6543/switchyard"
        ));
    }
}
