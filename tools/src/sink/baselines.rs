//! The sink bench's two references, written on one plain connection into the same table:
//! a single `COPY ... FROM STDIN` of all the rows (text format, what `psql \copy` sends), and
//! one awaited `INSERT` per event (what the legacy adapter did).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgConnection;
use tokio::time::Instant;

use switchyard::hub::Published;

/// The nine columns the sink writes, in the order both references send them.
const COLUMNS: &str =
    "id, event_type, \"timestamp\", source, data, metadata, category, sequence_id, epoch";

/// The rows of `events` as `COPY` text: one line per row, tab-separated, escaped.
pub fn copy_text(events: &[Arc<Published>], epoch: &str) -> Vec<u8> {
    let mut text = String::with_capacity(events.len() * 256);
    for published in events {
        let event = &published.event;
        let data = serde_json::Value::Object(event.data.clone()).to_string();
        let metadata = serde_json::Value::Object(event.metadata.clone()).to_string();
        let fields = [
            event.id.to_string(),
            event.event_type.clone(),
            event.timestamp.to_rfc3339(),
            event.source.clone(),
            data,
            metadata,
            event.category.as_str().to_string(),
            published.offset.to_string(),
            epoch.to_string(),
        ];
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                text.push('\t');
            }
            escape_into(&mut text, field);
        }
        text.push('\n');
    }
    text.into_bytes()
}

/// COPY's text format: backslash, tab, newline and carriage return are escaped.
fn escape_into(out: &mut String, field: &str) {
    for c in field.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => {
                let _ = out.write_char(c);
            }
        }
    }
}

/// One `COPY` of `text` (from [`copy_text`], encoded beforehand, as `psql` reads a file) in
/// its own transaction; times the statement alone.
pub async fn copy_rows(conn: &mut PgConnection, text: &[u8]) -> anyhow::Result<(Duration, u64)> {
    let started = Instant::now();
    let statement = format!("COPY monitoring.monitoring_events ({COLUMNS}) FROM STDIN");
    let mut copy = conn.copy_in_raw(&statement).await?;
    copy.send(text).await?;
    let rows = copy.finish().await?;
    Ok((started.elapsed(), rows))
}

/// The legacy way: one awaited INSERT per event.
pub async fn insert_one_by_one(
    conn: &mut PgConnection,
    events: &[Arc<Published>],
    epoch: &str,
) -> anyhow::Result<Duration> {
    let statement = format!(
        "INSERT INTO monitoring.monitoring_events ({COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (id) DO NOTHING"
    );
    let started = Instant::now();
    for published in events {
        let event = &published.event;
        sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
            .bind(event.id)
            .bind(&event.event_type)
            .bind(event.timestamp)
            .bind(&event.source)
            .bind(serde_json::Value::Object(event.data.clone()))
            .bind(serde_json::Value::Object(event.metadata.clone()))
            .bind(event.category.as_str())
            .bind(published.offset as i64)
            .bind(epoch)
            .execute(&mut *conn)
            .await?;
    }
    Ok(started.elapsed())
}

/// Empties the table, so every measurement starts from the same state.
pub async fn empty_table(conn: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::query("TRUNCATE monitoring.monitoring_events")
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::escape_into;

    #[test]
    fn copy_text_escapes_what_the_format_reserves() {
        let mut out = String::new();
        escape_into(&mut out, "a\\b\tc\nd\re {\"k\":\"\\n\"}");
        assert_eq!(out, "a\\\\b\\tc\\nd\\re {\"k\":\"\\\\n\"}");
    }
}
