//! The Realtime sink: multi-row writes into `monitoring.monitoring_events` on the target, the
//! table Supabase Realtime streams to dashboards as postgres_changes.
//!
//! This SQL lives here rather than in `store` because it runs against the Realtime target, not
//! the control store (they are the same database only by default).
//!
//! A batch is written with a binary `COPY` ([`copy`]): the target's fastest way in. When the
//! `COPY` fails with `unique_violation` (a replay of rows that committed before: a write that
//! timed out after its commit), the batch is written again with `INSERT ... SELECT FROM
//! UNNEST(<one array per column>) ON CONFLICT (id) DO NOTHING`, which skips the rows already
//! there: a replay never duplicates a row, and a 23505 from the `COPY` never reaches the
//! worker's quarantine (a 23505 from the `INSERT`, another unique index refusing a row, does,
//! as before). A target that refuses `COPY` itself (`COPY FROM` under row-level security, a
//! pooler that does not pass it) is written with the `INSERT` from then on. The pool is lazy,
//! so a target that is down at start costs nothing until the first write, which then fails
//! (through the breaker) like any other.
//!
//! # Large batches go over two connections
//!
//! Most of a write's time is the server's (parsing the jsonb, the heap and six index
//! insertions per row; docs/realtime-bench.md), and one statement runs on one server core. A
//! batch of at least [`SPLIT_FROM`] rows (with `writers` = 2; the default is 1, see
//! `settings::DEFAULT_WRITERS` for why) is cut in two halves, each copied (or inserted) in its
//! own transaction on its own connection at once; the front half commits first, then the back
//! half, so rows still become visible (and reach Supabase Realtime, which follows commit order)
//! in stream order. Neither commits unless both inserted: a content refusal comes back for
//! the whole batch with nothing written, and the worker bisects it as before. If the front
//! commits and the back's commit fails (the connection died), the call fails and the whole
//! batch is written again later: `ON CONFLICT` absorbs the front, so no row is written twice.
//! A batch holding the same event id twice is written as one statement: with the id in both
//! halves, the back's insert would wait for the front's transaction to end, and the front
//! waits for the back's insert before committing.
//!
//! # A write may commit behind the one before it
//!
//! [`RealtimeSink::write_after`] takes a [`Gate`]: while it is shut (the worker's write before
//! this one has not committed yet), the rows are copied inside a transaction (two, split as
//! above) and the `COMMIT` waits for the gate. The worker uses it to copy a batch while the
//! batch before it commits (`worker::in_flight`); rows still commit in stream order.
//!
//! Nothing here retries or times out: every call goes through the breaker, which does both.

use std::borrow::Cow;
use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgExecutor, PgPool};
use uuid::Uuid;

use super::schema;
use crate::store::dead_letter::RealtimeRows;
use copy::copy_rows;
pub(super) use gate::Gate;

mod copy;
mod gate;

/// Connections the sink may hold on the target besides its writers: retention, a probe, and
/// one spare for a connection still draining a write that timed out.
const OTHER_CONNECTIONS: u32 = 3;

/// Writes the worker may have under way at once: one committing, the next copying behind its
/// gate ([`Gate`]).
const WRITES_IN_FLIGHT: u32 = 2;

/// The smallest batch split over two connections: below it, a second transaction's round
/// trips and commit cost more than the parallel insert saves.
pub const SPLIT_FROM: usize = 256;

/// The insert every write runs, on one connection, in whatever transaction it is given.
const INSERT: &str = "INSERT INTO monitoring.monitoring_events
         (id, event_type, \"timestamp\", source, data, metadata, category, sequence_id, epoch)
     SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::text[],
                          $5::jsonb[], $6::jsonb[], $7::text[], $8::int8[], $9::text[])
     ON CONFLICT (id) DO NOTHING";

/// A row of `monitoring.monitoring_events`, read back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredRow {
    pub id: Uuid,
    pub event_type: String,
    pub timestamp: DateTime<Utc>,
    pub source: String,
    pub data: serde_json::Value,
    pub metadata: serde_json::Value,
    pub category: Option<String>,
    pub sequence_id: Option<i64>,
}

/// Writes Realtime rows to the target. Cheap to clone.
#[derive(Clone)]
pub struct RealtimeSink {
    inner: Arc<Inner>,
}

struct Inner {
    target: Result<(PgConnectOptions, PgPool), String>,
    /// False until the `monitoring` schema is known to exist on the target.
    schema_ready: AtomicBool,
    /// Connections a large batch is written over (1 or 2).
    writers: usize,
    /// False once the target refused `COPY` itself (module docs).
    copy: AtomicBool,
}

impl RealtimeSink {
    /// A sink for `database_url`. With `apply_schema` (the target is not the control store),
    /// the `monitoring` schema is applied before the first write that reaches the target. A
    /// URL that does not parse makes every write fail (and is reported by the caller).
    /// `writers` (1 or 2, clamped) is how many connections a large batch is written over.
    pub fn new(database_url: &str, apply_schema: bool, writers: usize) -> Self {
        let writers = writers.clamp(1, 2);
        let target = PgConnectOptions::from_str(database_url)
            .map(|options| {
                let options = options
                    .log_statements(tracing::log::LevelFilter::Trace)
                    .log_slow_statements(tracing::log::LevelFilter::Debug, Duration::from_secs(1));
                // No ping before each write: the pool already pings a connection when it
                // comes back, and a broken one fails the write, which the breaker counts.
                let pool = PgPoolOptions::new()
                    .max_connections(OTHER_CONNECTIONS + WRITES_IN_FLIGHT * writers as u32)
                    .acquire_timeout(Duration::from_secs(5))
                    .test_before_acquire(false)
                    .connect_lazy_with(options.clone());
                (options, pool)
            })
            .map_err(|e| e.to_string());
        Self {
            inner: Arc::new(Inner {
                target,
                schema_ready: AtomicBool::new(!apply_schema),
                writers,
                copy: AtomicBool::new(true),
            }),
        }
    }

    /// Why the sink can never write, if its URL is unusable.
    pub fn configuration_error(&self) -> Option<&str> {
        self.inner.target.as_ref().err().map(String::as_str)
    }

    fn pool(&self) -> Result<&PgPool, sqlx::Error> {
        match &self.inner.target {
            Ok((_, pool)) => Ok(pool),
            Err(e) => Err(sqlx::Error::Configuration(e.clone().into())),
        }
    }

    /// Applies the `monitoring` schema if it is not known to be there yet.
    async fn ensure_schema(&self) -> Result<(), sqlx::Error> {
        if self.inner.schema_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let (options, pool) = match &self.inner.target {
            Ok(target) => target,
            Err(e) => return Err(sqlx::Error::Configuration(e.clone().into())),
        };
        schema::apply(options, pool).await?;
        self.inner.schema_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Writes the rows (a `COPY`, or the `INSERT` for a replay; over two connections when the
    /// batch is large, module docs); returns how many were new (the rest were there).
    pub async fn write(&self, rows: &RealtimeRows) -> Result<u64, sqlx::Error> {
        self.write_after(rows, &mut Gate::open()).await
    }

    /// [`write`](Self::write), committing only once `gate` is open (the write before has
    /// committed): until then the rows are written inside a transaction and wait.
    pub async fn write_after(
        &self,
        rows: &RealtimeRows,
        gate: &mut Gate,
    ) -> Result<u64, sqlx::Error> {
        self.ensure_schema().await?;
        let pool = self.pool()?;
        // A batch holding an id twice would always fail the COPY (straight to the INSERT), and
        // is inserted as one statement (module docs).
        let duplicates = has_duplicate_ids(rows);
        let split = self.inner.writers >= 2 && rows.len() >= SPLIT_FROM && !duplicates;
        if self.inner.copy.load(Ordering::Acquire) && !duplicates {
            match copy_rows(pool, rows, split, gate).await {
                Ok(written) => return Ok(written),
                // Some rows are there already: the INSERT skips them.
                Err(error) if sqlstate(&error).as_deref() == Some("23505") => {}
                Err(error) if sqlstate(&error).is_some_and(|c| c.starts_with("0A")) => {
                    tracing::warn!(%error, "the Realtime target refuses COPY; writing with INSERT from now on");
                    self.inner.copy.store(false, Ordering::Release);
                }
                Err(error) => return Err(error),
            }
        }
        if !split && gate.is_open() {
            return insert(pool, rows).await;
        }
        if !split {
            let mut tx = pool.begin().await?;
            let new = insert(&mut *tx, rows).await?;
            gate.pass().await;
            tx.commit().await?;
            return Ok(new);
        }
        let mid = rows.len() / 2;
        let (front, back) = (rows.slice(0..mid), rows.slice(mid..rows.len()));
        let (mut front_tx, mut back_tx) = tokio::try_join!(pool.begin(), pool.begin())?;
        let (front_new, back_new) =
            tokio::join!(insert(&mut *front_tx, &front), insert(&mut *back_tx, &back));
        // Either failed: both transactions roll back as they drop, nothing is committed.
        let (front_new, back_new) = (front_new?, back_new?);
        gate.pass().await;
        front_tx.commit().await?;
        back_tx.commit().await?;
        Ok(front_new + back_new)
    }

    /// Checks the target answers (applying the schema first if needed): a trial call that
    /// carries no events.
    pub async fn probe(&self) -> Result<(), sqlx::Error> {
        self.ensure_schema().await?;
        sqlx::query("SELECT 1").execute(self.pool()?).await?;
        Ok(())
    }

    /// Deletes up to `limit` rows written before `cutoff`; returns how many went.
    pub async fn delete_written_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64, sqlx::Error> {
        self.ensure_schema().await?;
        let done = sqlx::query(
            "DELETE FROM monitoring.monitoring_events WHERE id IN (
                 SELECT id FROM monitoring.monitoring_events WHERE created_at < $1 LIMIT $2)",
        )
        .bind(cutoff)
        .bind(limit)
        .execute(self.pool()?)
        .await?;
        Ok(done.rows_affected())
    }

    /// The rows of `ids` as the table holds them now (absent ids have no row), for the
    /// consistency validator: what Supabase Realtime actually streams, not what was sent.
    pub async fn read_rows(&self, ids: &[Uuid]) -> Result<Vec<StoredRow>, sqlx::Error> {
        self.ensure_schema().await?;
        sqlx::query_as::<_, StoredRow>(
            "SELECT id, event_type, \"timestamp\", source, data, metadata, category, sequence_id
             FROM monitoring.monitoring_events WHERE id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(self.pool()?)
        .await
    }

    /// Closes the target's connections.
    pub async fn close(&self) {
        if let Ok((_, pool)) = &self.inner.target {
            pool.close().await;
        }
    }
}

/// One `INSERT ... SELECT FROM UNNEST` of `rows`; returns how many were new.
async fn insert(db: impl PgExecutor<'_>, rows: &RealtimeRows) -> Result<u64, sqlx::Error> {
    let done = rows.bind_columns(sqlx::query(INSERT)).execute(db).await?;
    Ok(done.rows_affected())
}

fn sqlstate(error: &sqlx::Error) -> Option<Cow<'_, str>> {
    error.as_database_error().and_then(|db| db.code())
}

/// Whether an event id appears twice in `rows` (a replay of rows that were written twice to
/// the dead letter or a spool; never in a live batch).
fn has_duplicate_ids(rows: &RealtimeRows) -> bool {
    let mut seen = HashSet::with_capacity(rows.len());
    !rows.ids.iter().all(|id| seen.insert(id))
}
