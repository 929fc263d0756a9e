//! The worker's answer to a batch the target refuses for its content: a data error (SQLSTATE
//! class 22, e.g. a NUL in jsonb), a constraint (class 23) or a trigger's `raise exception`
//! (P0001). One multi-row INSERT fails whole on one bad row, so retrying the batch would fail
//! for ever and wedge the path. Instead the batch is split in halves, left before right (so
//! rows still commit in stream order), until each refused part is one row: those rows are set
//! aside in the control store's quarantine with the error, everything else is written.
//!
//! A content refusal is the target answering, so it counts as a success for the breaker;
//! only a failure to reach the target (connection, timeout, server unavailable) counts
//! against it. Finding one bad row among n costs about 2·log2(n) writes.

use std::borrow::Cow;
use std::ops::Range;

use tokio::time::timeout;

use super::{CONTROL_TIMEOUT, Worker};
use crate::breaker::BreakerError;
use crate::realtime::CommitKind;
use crate::realtime::status::Counters;
use crate::store::dead_letter::RealtimeRows;
use crate::store::quarantine::{self, QuarantinedRow};

/// Why a write did not complete: its rows are held (or left in the dead letter) and retried.
#[derive(Debug)]
pub(in crate::realtime) enum WriteFailure {
    /// The breaker rejected the call, or the call failed or timed out.
    Call(BreakerError<sqlx::Error>),
    /// The target refused rows for their content and the control store could not take them
    /// into the quarantine: nothing is dropped, the batch is retried.
    Quarantine(String),
}

impl std::fmt::Display for WriteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteFailure::Call(error) => error.fmt(f),
            WriteFailure::Quarantine(error) => {
                write!(f, "cannot write the Realtime quarantine: {error}")
            }
        }
    }
}

/// What a completed write came to.
pub(in crate::realtime) struct Written<'a> {
    /// The rows the target committed (all of them, less the quarantined), in order: the
    /// caller's own when all went in (no copy of every row's data per write), a new set when
    /// some were quarantined.
    pub rows: Cow<'a, RealtimeRows>,
    /// How many of those were new to the target.
    pub inserted: u64,
}

/// Whether the target refused the statement for what the rows hold, rather than failing.
pub(in crate::realtime) fn refused_for_content(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = error else {
        return false;
    };
    db.code()
        .is_some_and(|code| code.starts_with("22") || code.starts_with("23") || code == "P0001")
}

impl Worker {
    /// Writes `rows` through the breaker; a content refusal splits them and quarantines the
    /// rows the target will not take. `Err` means nothing is known to be written for good
    /// (parts may be: the caller retries the whole, which the target's primary key absorbs).
    pub(super) async fn write_rows<'a>(
        &mut self,
        rows: &'a RealtimeRows,
    ) -> Result<Written<'a>, WriteFailure> {
        match self.attempt(rows).await? {
            Ok(inserted) => Ok(Written {
                rows: Cow::Borrowed(rows),
                inserted,
            }),
            Err(refusal) => self.write_refused(rows, &refusal).await,
        }
    }

    /// `rows`, which the target refused whole for their content (`refusal`): split until
    /// each refused part is one row, which is quarantined; the rest is written, in order.
    pub(super) async fn write_refused<'a>(
        &mut self,
        rows: &'a RealtimeRows,
        refusal: &sqlx::Error,
    ) -> Result<Written<'a>, WriteFailure> {
        Counters::add(&self.shared.counters.content_refusals, 1);
        tracing::warn!(rows = rows.len(), error = %refusal, "the Realtime target refused a batch for its content; splitting it to find the rows it will not take");
        let mut written = RealtimeRows::with_capacity(rows.len());
        let mut inserted = 0;
        let mut refused: Vec<QuarantinedRow> = Vec::new();
        let mid = rows.len() / 2;
        // A stack of parts still to write, the leftmost on top.
        let mut parts: Vec<Range<usize>> = vec![mid..rows.len(), 0..mid];
        while let Some(range) = parts.pop() {
            if range.is_empty() {
                continue;
            }
            let part = rows.slice(range.clone());
            match self.attempt(&part).await? {
                Ok(n) => {
                    inserted += n;
                    written.append(part);
                }
                Err(refusal) if range.len() == 1 => {
                    let sqlstate = match &refusal {
                        sqlx::Error::Database(db) => db.code().map(|c| c.to_string()),
                        _ => None,
                    };
                    refused.push(rows.quarantined(range.start, sqlstate, &refusal.to_string()));
                }
                Err(_) => {
                    let mid = range.start + range.len() / 2;
                    parts.push(mid..range.end);
                    parts.push(range.start..mid);
                }
            }
        }
        self.quarantine(refused).await?;
        Ok(Written {
            rows: Cow::Owned(written),
            inserted,
        })
    }

    /// One call through the breaker. A content refusal is `Ok(Err(_))`: the target answered,
    /// so the breaker records a success.
    async fn attempt(
        &mut self,
        rows: &RealtimeRows,
    ) -> Result<Result<u64, sqlx::Error>, WriteFailure> {
        let sink = &self.sink;
        let result = self
            .breaker
            .call(|| async {
                match sink.write(rows).await {
                    Err(error) if refused_for_content(&error) => Ok(Err(error)),
                    other => other.map(Ok),
                }
            })
            .await;
        self.last_call = tokio::time::Instant::now();
        result.map_err(WriteFailure::Call)
    }

    /// Keeps refused rows in the control store, counts them, logs each and tells the
    /// validator (they are quarantined, not missing).
    async fn quarantine(&mut self, refused: Vec<QuarantinedRow>) -> Result<(), WriteFailure> {
        if refused.is_empty() {
            return Ok(());
        }
        let kept = timeout(
            CONTROL_TIMEOUT,
            quarantine::insert(&self.quarantine, &refused),
        )
        .await;
        match kept {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return Err(WriteFailure::Quarantine(error.to_string())),
            Err(_) => return Err(WriteFailure::Quarantine("timed out".into())),
        }
        Counters::add(&self.shared.counters.quarantined, refused.len());
        for row in &refused {
            tracing::warn!(event_id = %row.event_id, sqlstate = row.sqlstate.as_deref(), error = %row.error, "Realtime event {} quarantined: the target refused it for its content", row.event_id);
        }
        let ids = refused.iter().map(|r| r.event_id).collect();
        let offsets = refused.iter().map(|r| r.sequence_id as u64).collect();
        self.shared.announce(ids, offsets, CommitKind::Quarantined);
        Ok(())
    }
}
