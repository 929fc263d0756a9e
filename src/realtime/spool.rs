//! The local spool: where the Realtime events still held at shutdown go when the control
//! store cannot keep them (it is the target itself, so the target's outage is its outage, or
//! it does not answer), and where the next start finds them (`SWITCHYARD_SPOOL_DIR`).
//!
//! One file per shutdown, one JSON row per line, written to a `.tmp` name, synced, then
//! renamed: a file with the final name is whole. The next start writes each file's rows to
//! the target (idempotent by event id, so a file replayed twice adds nothing) and deletes the
//! file once they are committed. [`SpoolStatus`] is what `GET /v1/realtime` (`spool`) and
//! `/metrics` (`switchyard_realtime_spool_*`) show of it.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::store::dead_letter::RealtimeRows;

const EXTENSION: &str = "jsonl";

/// One Realtime row as the spool keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct SpooledRow {
    id: Uuid,
    event_type: String,
    timestamp: DateTime<Utc>,
    source: String,
    data: Value,
    metadata: Value,
    category: String,
    sequence_id: i64,
    epoch: String,
}

/// The local spool now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SpoolStatus {
    /// The spool directory (`SWITCHYARD_SPOOL_DIR`); absent when this path has none.
    pub directory: Option<String>,
    /// Whole spool files in it, waiting to be written to the target: left by an earlier run
    /// and not replayed yet (the target refused, or a file is unreadable and kept for an
    /// operator: its error is logged).
    pub files_waiting: usize,
    /// Events this run kept in the spool (at shutdown, when neither the target nor the dead
    /// letter took them).
    pub spooled: u64,
    /// Events this run replayed from spool files into the target.
    pub replayed: u64,
}

impl SpoolStatus {
    /// The status of the spool in `dir`, with this run's counts. Reads the directory: cheap
    /// (one listing), and what is on disk is the truth an operator asks about.
    pub(super) fn of(dir: Option<&Path>, spooled: u64, replayed: u64) -> Self {
        Self {
            directory: dir.map(|d| d.display().to_string()),
            files_waiting: dir.and_then(|d| files(d).ok()).map_or(0, |f| f.len()),
            spooled,
            replayed,
        }
    }
}

/// Writes `rows` into a new spool file in `dir` (created if missing); returns its path.
pub fn write(dir: &Path, rows: &RealtimeRows) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let name = format!("realtime-{}", Uuid::now_v7().simple());
    let tmp = dir.join(format!("{name}.tmp"));
    let done = dir.join(format!("{name}.{EXTENSION}"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    for i in 0..rows.len() {
        let row = SpooledRow {
            id: rows.ids[i],
            event_type: rows.event_types[i].clone(),
            timestamp: rows.timestamps[i],
            source: rows.sources[i].clone(),
            data: rows.data[i].clone(),
            metadata: rows.metadata[i].clone(),
            category: rows.categories[i].clone(),
            sequence_id: rows.sequence_ids[i],
            epoch: rows.epochs[i].clone(),
        };
        serde_json::to_writer(&mut file, &row)?;
        file.write_all(b"\n")?;
    }
    let file = file.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&tmp, &done)?;
    // The rename is durable once the directory is synced.
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(done)
}

/// The whole spool files in `dir`, oldest first (names sort by time). A missing directory is
/// an empty spool.
pub fn files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == EXTENSION))
        .collect();
    found.sort();
    Ok(found)
}

/// The rows of one spool file. A line that does not parse is an error naming the line: the
/// file is kept for an operator rather than half replayed and deleted.
pub fn read(path: &Path) -> std::io::Result<RealtimeRows> {
    let text = std::fs::read_to_string(path)?;
    let mut rows = RealtimeRows::default();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let row: SpooledRow = serde_json::from_str(line).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} line {}: {e}", path.display(), n + 1),
            )
        })?;
        rows.ids.push(row.id);
        rows.event_types.push(row.event_type);
        rows.timestamps.push(row.timestamp);
        rows.sources.push(row.source);
        rows.data.push(row.data);
        rows.metadata.push(row.metadata);
        rows.categories.push(row.category);
        rows.sequence_ids.push(row.sequence_id);
        rows.epochs.push(row.epoch);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> RealtimeRows {
        let mut rows = RealtimeRows::default();
        for i in 0..n {
            let value =
                serde_json::json!({"event_type": "stats", "source": "spool", "data": {"i": i}});
            let event = crate::event::parse_event(&value, None, Utc::now()).expect("valid");
            rows.push(&event, i as u64 + 1, "epoch-a");
        }
        rows
    }

    #[test]
    fn rows_written_to_the_spool_read_back_the_same_and_in_order() {
        let dir = std::env::temp_dir().join(format!("spool-test-{}", Uuid::new_v4().simple()));
        let first = rows(3);
        let second = rows(2);
        write(&dir, &first).unwrap();
        write(&dir, &second).unwrap();
        let found = files(&dir).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(read(&found[0]).unwrap(), first);
        assert_eq!(read(&found[1]).unwrap(), second);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_spool_directory_is_an_empty_spool() {
        let dir = std::env::temp_dir().join(format!("spool-none-{}", Uuid::new_v4().simple()));
        assert!(files(&dir).unwrap().is_empty());
    }

    #[test]
    fn a_torn_line_is_refused_naming_the_line() {
        let dir = std::env::temp_dir().join(format!("spool-torn-{}", Uuid::new_v4().simple()));
        let path = write(&dir, &rows(1)).unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"id\": \n");
        std::fs::write(&path, text).unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
