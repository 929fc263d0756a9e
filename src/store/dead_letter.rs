//! The Realtime dead letter in the control store, and the columnar row shape it shares with
//! the Realtime table.
//!
//! Rows travel as [`RealtimeRows`], one array per column, so a batch of any size is one
//! statement with nine parameters (`INSERT ... SELECT FROM UNNEST(...)`), never one statement
//! per row and never near Postgres's bind-parameter limit. The Realtime sink writes the same
//! shape into `monitoring.monitoring_events` on the target.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor, Row};
use uuid::Uuid;

use crate::event::Event;

/// A batch of Realtime rows, column by column, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RealtimeRows {
    pub ids: Vec<Uuid>,
    pub event_types: Vec<String>,
    pub timestamps: Vec<DateTime<Utc>>,
    pub sources: Vec<String>,
    pub data: Vec<Value>,
    pub metadata: Vec<Value>,
    pub categories: Vec<String>,
    /// The stream offset of each event within its epoch.
    pub sequence_ids: Vec<i64>,
    pub epochs: Vec<String>,
}

impl RealtimeRows {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            ids: Vec::with_capacity(n),
            event_types: Vec::with_capacity(n),
            timestamps: Vec::with_capacity(n),
            sources: Vec::with_capacity(n),
            data: Vec::with_capacity(n),
            metadata: Vec::with_capacity(n),
            categories: Vec::with_capacity(n),
            sequence_ids: Vec::with_capacity(n),
            epochs: Vec::with_capacity(n),
        }
    }

    /// Appends the row of `event`, published at `offset` in `epoch`.
    pub fn push(&mut self, event: &Event, offset: u64, epoch: &str) {
        self.ids.push(event.id);
        self.event_types.push(event.event_type.clone());
        self.timestamps.push(event.timestamp);
        self.sources.push(event.source.clone());
        self.data.push(Value::Object(event.data.clone()));
        self.metadata.push(Value::Object(event.metadata.clone()));
        self.categories.push(event.category.as_str().to_string());
        // Offsets count events of one run; they never come near i64::MAX.
        self.sequence_ids
            .push(i64::try_from(offset).unwrap_or(i64::MAX));
        self.epochs.push(epoch.to_string());
    }

    /// Binds the nine columns, in this order, as `$1`..`$9` of a `UNNEST` statement (the
    /// dead letter's insert here, the Realtime sink's on the target).
    pub fn bind_columns<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(&self.ids)
            .bind(&self.event_types)
            .bind(&self.timestamps)
            .bind(&self.sources)
            .bind(&self.data)
            .bind(&self.metadata)
            .bind(&self.categories)
            .bind(&self.sequence_ids)
            .bind(&self.epochs)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Rows claimed for replay: their dead-letter ids (to delete once the target has them) and
/// the rows themselves.
#[derive(Debug, Default)]
pub struct Claimed {
    pub dead_letter_ids: Vec<i64>,
    pub rows: RealtimeRows,
}

/// Appends `rows` in their order; an event already spilled is skipped. Returns rows added.
pub async fn insert(db: impl PgExecutor<'_>, rows: &RealtimeRows) -> Result<u64, sqlx::Error> {
    let query = sqlx::query(
        "INSERT INTO switchyard.realtime_dead_letter
             (event_id, event_type, \"timestamp\", source, data, metadata, category, sequence_id, epoch)
         SELECT event_id, event_type, ts, source, data, metadata, category, sequence_id, epoch
         FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::jsonb[],
                     $6::jsonb[], $7::text[], $8::int8[], $9::text[])
              WITH ORDINALITY AS r(event_id, event_type, ts, source, data, metadata, category,
                                   sequence_id, epoch, ord)
         ORDER BY ord
         ON CONFLICT (event_id) DO NOTHING",
    );
    let done = rows.bind_columns(query).execute(db).await?;
    Ok(done.rows_affected())
}

/// Locks and returns up to `limit` rows in stream order: from the epoch that spilled first
/// (the oldest row's), by offset. Rows another instance is replaying are skipped rather than
/// waited for. Call inside a transaction, and [`delete`] them in it once the target has
/// committed them.
pub async fn claim_oldest(conn: &mut PgConnection, limit: i64) -> Result<Claimed, sqlx::Error> {
    let found = sqlx::query(
        "SELECT id, event_id, event_type, \"timestamp\", source, data, metadata, category,
                sequence_id, epoch
         FROM switchyard.realtime_dead_letter
         WHERE epoch = (SELECT epoch FROM switchyard.realtime_dead_letter ORDER BY id LIMIT 1)
         ORDER BY sequence_id
         LIMIT $1
         FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?;
    let mut claimed = Claimed {
        dead_letter_ids: Vec::with_capacity(found.len()),
        rows: RealtimeRows::with_capacity(found.len()),
    };
    for row in &found {
        let rows = &mut claimed.rows;
        claimed.dead_letter_ids.push(row.try_get("id")?);
        rows.ids.push(row.try_get("event_id")?);
        rows.event_types.push(row.try_get("event_type")?);
        rows.timestamps.push(row.try_get("timestamp")?);
        rows.sources.push(row.try_get("source")?);
        rows.data.push(row.try_get("data")?);
        rows.metadata.push(row.try_get("metadata")?);
        rows.categories.push(row.try_get("category")?);
        rows.sequence_ids.push(row.try_get("sequence_id")?);
        rows.epochs.push(row.try_get("epoch")?);
    }
    Ok(claimed)
}

/// Deletes replayed rows.
pub async fn delete(db: impl PgExecutor<'_>, ids: &[i64]) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM switchyard.realtime_dead_letter WHERE id = ANY($1)")
        .bind(ids)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Rows waiting for replay.
pub async fn count(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM switchyard.realtime_dead_letter")
        .fetch_one(db)
        .await
}
