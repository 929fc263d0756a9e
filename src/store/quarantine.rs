//! The Realtime quarantine in the control store: rows the Realtime target refused for their
//! content, kept with the target's error (see the migration `realtime_quarantine`). Also the
//! two [`RealtimeRows`] operations the worker needs to split a refused batch.

use std::ops::Range;

use serde_json::json;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::dead_letter::RealtimeRows;

/// One refused row, ready to be set aside.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantinedRow {
    pub event_id: Uuid,
    pub epoch: String,
    pub sequence_id: i64,
    /// The row as compact JSON text (a NUL stays escaped, so `text` can hold it).
    pub row_json: String,
    pub sqlstate: Option<String>,
    pub error: String,
}

impl RealtimeRows {
    /// The rows in `range` (clamped to the rows there are), as a batch of their own.
    pub fn slice(&self, range: Range<usize>) -> RealtimeRows {
        let end = range.end.min(self.len());
        let range = range.start.min(end)..end;
        RealtimeRows {
            ids: self.ids[range.clone()].to_vec(),
            event_types: self.event_types[range.clone()].to_vec(),
            timestamps: self.timestamps[range.clone()].to_vec(),
            sources: self.sources[range.clone()].to_vec(),
            data: self.data[range.clone()].to_vec(),
            metadata: self.metadata[range.clone()].to_vec(),
            categories: self.categories[range.clone()].to_vec(),
            sequence_ids: self.sequence_ids[range.clone()].to_vec(),
            epochs: self.epochs[range].to_vec(),
        }
    }

    /// Appends `other`'s rows after these.
    pub fn append(&mut self, other: RealtimeRows) {
        self.ids.extend(other.ids);
        self.event_types.extend(other.event_types);
        self.timestamps.extend(other.timestamps);
        self.sources.extend(other.sources);
        self.data.extend(other.data);
        self.metadata.extend(other.metadata);
        self.categories.extend(other.categories);
        self.sequence_ids.extend(other.sequence_ids);
        self.epochs.extend(other.epochs);
    }

    /// Row `i`, refused with `error`, as the quarantine keeps it.
    pub fn quarantined(&self, i: usize, sqlstate: Option<String>, error: &str) -> QuarantinedRow {
        let row = json!({
            "id": self.ids[i],
            "event_type": self.event_types[i],
            "timestamp": self.timestamps[i],
            "source": self.sources[i],
            "data": self.data[i],
            "metadata": self.metadata[i],
            "category": self.categories[i],
            "sequence_id": self.sequence_ids[i],
            "epoch": self.epochs[i],
        });
        QuarantinedRow {
            event_id: self.ids[i],
            epoch: without_nul(&self.epochs[i]),
            sequence_id: self.sequence_ids[i],
            row_json: row.to_string(),
            sqlstate: sqlstate.map(|s| without_nul(&s)),
            error: without_nul(error),
        }
    }
}

/// `text` cannot hold NUL either: an error message quoting the bad value must not fail too.
fn without_nul(text: &str) -> String {
    text.replace('\0', "\\u0000")
}

/// Sets `rows` aside; an event already there is skipped. Returns rows added.
pub async fn insert(db: impl PgExecutor<'_>, rows: &[QuarantinedRow]) -> Result<u64, sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.event_id).collect();
    let epochs: Vec<&str> = rows.iter().map(|r| r.epoch.as_str()).collect();
    let sequence_ids: Vec<i64> = rows.iter().map(|r| r.sequence_id).collect();
    let json: Vec<&str> = rows.iter().map(|r| r.row_json.as_str()).collect();
    let sqlstates: Vec<Option<&str>> = rows.iter().map(|r| r.sqlstate.as_deref()).collect();
    let errors: Vec<&str> = rows.iter().map(|r| r.error.as_str()).collect();
    let done = sqlx::query(
        "INSERT INTO switchyard.realtime_quarantine
             (event_id, epoch, sequence_id, row_json, sqlstate, error)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[])
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(ids)
    .bind(epochs)
    .bind(sequence_ids)
    .bind(json)
    .bind(sqlstates)
    .bind(errors)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Rows in the quarantine.
pub async fn count(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM switchyard.realtime_quarantine")
        .fetch_one(db)
        .await
}
