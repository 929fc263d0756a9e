//! The sink's fast path: `COPY monitoring.monitoring_events (...) FROM STDIN (FORMAT binary)`.
//!
//! Why: `COPY` is what the sink is measured against (issue 14 item 3: at least 85% of a
//! plain `COPY`), and it is the server's cheapest way in: no statement to plan, no nine bound
//! arrays to receive and unnest, rows handed to the heap in groups (heap_multi_insert). The
//! profile and figures are in docs/realtime-bench.md.
//!
//! `COPY` has no `ON CONFLICT`: a row whose id is already in the table fails the whole
//! statement with `unique_violation` (23505) and nothing of it is committed. That happens to a
//! replay of rows that committed before (a write that timed out after its commit, a back half
//! written again after its commit failed); the caller then writes the batch again with the
//! idempotent `INSERT ... ON CONFLICT (id) DO NOTHING` (which reports a 23505 of another
//! unique index itself). Every other error of the `COPY`, bar the target refusing `COPY` as
//! such (0A000), is the one the `INSERT` would have returned for the same rows (the same
//! receive functions, the same constraints and triggers, checked before the unique index in
//! both).
//!
//! Each value is encoded exactly as sqlx encodes it for the `UNNEST` arrays (binary: uuid
//! bytes, microseconds since 2000-01-01, the jsonb version byte then the JSON text), so both
//! paths store the same row.
//!
//! # Cancellation
//!
//! The breaker drops a write that outlives its timeout. sqlx does not count a `COPY` among the
//! responses a connection still owes, so a connection dropped mid-`COPY` would go back to the
//! pool out of step with its server. A [`Writer`] is therefore closed, not returned to the
//! pool, when dropped with a `COPY` or a transaction still open on it: the server rolls back
//! what it had.

use std::ops::Range;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};

use super::Gate;
use crate::store::dead_letter::RealtimeRows;

/// The statement; columns in the order [`encode_tuples`] writes them.
const COPY: &str = "COPY monitoring.monitoring_events
     (id, event_type, \"timestamp\", source, data, metadata, category, sequence_id, epoch)
     FROM STDIN (FORMAT binary)";

/// The binary COPY header: signature, flags, header extension length.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Columns per tuple.
const COLUMNS: i16 = 9;

/// Rows encoded into one `CopyData` message. The server parses and inserts each message as it
/// arrives, so while it works on one the next is being encoded: the client's encoding (the
/// JSON of `data` and `metadata`) overlaps the server's insert instead of coming before it.
const ROWS_PER_MESSAGE: usize = 128;

/// Appends the tuples of `range` in COPY's binary format (no header, no trailer) to `out`.
fn encode_tuples(out: &mut Vec<u8>, rows: &RealtimeRows, range: Range<usize>) {
    // Postgres's timestamp epoch; sqlx subtracts the same instant.
    let epoch = NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a valid date")
        .and_utc();
    for i in range {
        out.extend_from_slice(&COLUMNS.to_be_bytes());
        field(out, rows.ids[i].as_bytes());
        field(out, rows.event_types[i].as_bytes());
        field(out, &micros_since(rows.timestamps[i], epoch).to_be_bytes());
        field(out, rows.sources[i].as_bytes());
        jsonb(out, &rows.data[i]);
        jsonb(out, &rows.metadata[i]);
        field(out, rows.categories[i].as_bytes());
        field(out, &rows.sequence_ids[i].to_be_bytes());
        field(out, rows.epochs[i].as_bytes());
    }
}

/// The end of the binary COPY data.
const TRAILER: [u8; 2] = (-1i16).to_be_bytes();

/// Microseconds from `epoch`, as sqlx computes them (a timestamp beyond Postgres's range,
/// some 290,000 years away, saturates; the server refuses it either way).
fn micros_since(at: DateTime<Utc>, epoch: DateTime<Utc>) -> i64 {
    (at.naive_utc() - epoch.naive_utc())
        .num_microseconds()
        .unwrap_or(i64::MAX)
}

fn field(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(&len_i32(value.len()).to_be_bytes());
    out.extend_from_slice(value);
}

/// A jsonb value: its length, the format version (1), then the JSON text.
fn jsonb(out: &mut Vec<u8>, value: &serde_json::Value) {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0, 1]);
    serde_json::to_writer(&mut *out, value).expect("a Value always serializes");
    let len = len_i32(out.len() - start - 4);
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// A field's length; a field of 1 GiB or more is refused by the server anyway.
fn len_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// A connection of the sink's pool that is closed rather than returned to the pool if it is
/// dropped while `open` (module docs: a `COPY` or a transaction under way).
pub(super) struct Writer {
    conn: PoolConnection<Postgres>,
    open: bool,
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

impl Writer {
    pub async fn acquire(pool: &PgPool) -> Result<Self, sqlx::Error> {
        Ok(Self {
            conn: pool.acquire().await?,
            open: false,
        })
    }

    /// Runs `statement` (`BEGIN`, `COMMIT`, `ROLLBACK`). The connection stays `open` from a
    /// `BEGIN` until a `COMMIT` or `ROLLBACK` has answered.
    pub async fn run(&mut self, statement: &'static str) -> Result<(), sqlx::Error> {
        self.open = true;
        sqlx::raw_sql(statement).execute(&mut *self.conn).await?;
        self.open = statement == "BEGIN";
        Ok(())
    }

    /// One `COPY` of the rows of `range`, encoded and sent [`ROWS_PER_MESSAGE`] at a time;
    /// returns the rows it wrote. In autocommit (outside `BEGIN`) it commits them. An error
    /// sqlx read from the server leaves the connection in step (and, inside a transaction,
    /// still `open` until `ROLLBACK`).
    pub async fn copy(
        &mut self,
        rows: &RealtimeRows,
        range: Range<usize>,
    ) -> Result<u64, sqlx::Error> {
        let in_transaction = self.open;
        self.open = true;
        let mut copy = match self.conn.copy_in_raw(COPY).await {
            Ok(copy) => copy,
            Err(error) => {
                // Refused before any data (sqlx read the server's answer to its end).
                self.open = in_transaction;
                return Err(error);
            }
        };
        let mut message = Vec::with_capacity(HEADER.len() + ROWS_PER_MESSAGE * 320 + 2);
        message.extend_from_slice(HEADER);
        let mut start = range.start;
        loop {
            let end = (start + ROWS_PER_MESSAGE).min(range.end);
            encode_tuples(&mut message, rows, start..end);
            if end == range.end {
                message.extend_from_slice(&TRAILER);
            }
            // A failed send drops the COPY mid-stream: the connection stays `open`, so it
            // closes.
            copy.send(message.as_slice()).await?;
            if end == range.end {
                break;
            }
            message.clear();
            start = end;
            // Let the other half of a split batch encode its next message meanwhile.
            tokio::task::yield_now().await;
        }
        let result = copy.finish().await;
        self.open = in_transaction;
        result
    }
}

/// `rows` by binary `COPY`: one autocommit `COPY` (in a transaction when `gate` is still
/// closed), or (`split`) two halves copied at once in two transactions on two connections,
/// committed front then back, only if both copied and once `gate` is open.
pub(super) async fn copy_rows(
    pool: &PgPool,
    rows: &RealtimeRows,
    split: bool,
    gate: &mut Gate,
) -> Result<u64, sqlx::Error> {
    if !split && gate.is_open() {
        return Writer::acquire(pool).await?.copy(rows, 0..rows.len()).await;
    }
    if !split {
        let mut writer = Writer::acquire(pool).await?;
        writer.run("BEGIN").await?;
        let new = match writer.copy(rows, 0..rows.len()).await {
            Ok(new) => new,
            Err(error) => {
                let _ = writer.run("ROLLBACK").await;
                return Err(error);
            }
        };
        gate.pass().await;
        writer.run("COMMIT").await?;
        return Ok(new);
    }
    let mid = rows.len() / 2;
    let (mut front, mut back) = tokio::try_join!(Writer::acquire(pool), Writer::acquire(pool))?;
    tokio::try_join!(front.run("BEGIN"), back.run("BEGIN"))?;
    let (front_new, back_new) =
        tokio::join!(front.copy(rows, 0..mid), back.copy(rows, mid..rows.len()));
    if front_new.is_err() || back_new.is_err() {
        // Nothing is committed; a connection whose ROLLBACK fails is closed as it drops.
        let _ = tokio::join!(front.run("ROLLBACK"), back.run("ROLLBACK"));
        return Err(front_new.and(back_new).expect_err("one failed"));
    }
    gate.pass().await;
    front.run("COMMIT").await?;
    back.run("COMMIT").await?;
    Ok(front_new? + back_new?)
}
