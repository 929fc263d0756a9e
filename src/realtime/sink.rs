//! The Realtime sink: multi-row writes into `monitoring.monitoring_events` on the target, the
//! table Supabase Realtime streams to dashboards as postgres_changes.
//!
//! This SQL lives here rather than in `store` because it runs against the Realtime target, not
//! the control store (they are the same database only by default).
//!
//! A batch is one statement, `INSERT ... SELECT FROM UNNEST(<one array per column>)`, whatever
//! its size, and `ON CONFLICT (id) DO NOTHING` makes it idempotent by event id: a replay of a
//! batch whose first write timed out after committing never duplicates a row. The pool is
//! lazy, so a target that is down at start costs nothing until the first write, which then
//! fails (through the breaker) like any other.
//!
//! Nothing here retries or times out: every call goes through the breaker, which does both.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use uuid::Uuid;

use super::schema;
use crate::store::dead_letter::RealtimeRows;

/// Connections the sink may hold on the target: one writer, retention, a probe, and one spare
/// for a connection still draining a write that timed out.
const MAX_CONNECTIONS: u32 = 4;

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
}

impl RealtimeSink {
    /// A sink for `database_url`. With `apply_schema` (the target is not the control store),
    /// the `monitoring` schema is applied before the first write that reaches the target. A
    /// URL that does not parse makes every write fail (and is reported by the caller).
    pub fn new(database_url: &str, apply_schema: bool) -> Self {
        let target = PgConnectOptions::from_str(database_url)
            .map(|options| {
                let options = options
                    .log_statements(tracing::log::LevelFilter::Trace)
                    .log_slow_statements(tracing::log::LevelFilter::Debug, Duration::from_secs(1));
                // No ping before each write: the pool already pings a connection when it
                // comes back, and a broken one fails the write, which the breaker counts.
                let pool = PgPoolOptions::new()
                    .max_connections(MAX_CONNECTIONS)
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

    /// Writes the rows in one statement; returns how many were new (the rest were there).
    pub async fn write(&self, rows: &RealtimeRows) -> Result<u64, sqlx::Error> {
        self.ensure_schema().await?;
        let query = sqlx::query(
            "INSERT INTO monitoring.monitoring_events
                 (id, event_type, \"timestamp\", source, data, metadata, category, sequence_id, epoch)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::text[],
                                  $5::jsonb[], $6::jsonb[], $7::text[], $8::int8[], $9::text[])
             ON CONFLICT (id) DO NOTHING",
        );
        let done = rows.bind_columns(query).execute(self.pool()?).await?;
        Ok(done.rows_affected())
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
