//! Scheduled flag changes. A due change is claimed in the caller's transaction, the one that
//! also writes the flag, so a change is applied once or not at all.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, Row};
use uuid::Uuid;

use crate::rollout::schedule::{Schedule, ScheduleStatus, ScheduledChange};

const COLUMNS: &str = "id, flag_key, environment, at, change, status, reason, flag_version, created_by, created_at, updated_at";

fn schedule(row: &PgRow) -> Result<Schedule, sqlx::Error> {
    let change: serde_json::Value = row.try_get("change")?;
    let status: String = row.try_get("status")?;
    Ok(Schedule {
        id: row.try_get("id")?,
        flag: row.try_get("flag_key")?,
        environment: row.try_get("environment")?,
        at: row.try_get("at")?,
        change: serde_json::from_value::<ScheduledChange>(change)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        status: serde_json::from_value::<ScheduleStatus>(serde_json::Value::String(status))
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        reason: row.try_get("reason")?,
        flag_version: row.try_get("flag_version")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    id: Uuid,
    flag: &str,
    environment: &str,
    at: DateTime<Utc>,
    change: &ScheduledChange,
    created_by: &str,
) -> Result<Schedule, sqlx::Error> {
    let change = serde_json::to_value(change).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO switchyard.flag_schedules (id, flag_key, environment, at, change, created_by)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(flag)
    .bind(environment)
    .bind(at)
    .bind(change)
    .bind(created_by)
    .fetch_one(db)
    .await?;
    schedule(&row)
}

/// A flag's scheduled changes, by time.
pub async fn list(db: impl PgExecutor<'_>, flag: &str) -> Result<Vec<Schedule>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM switchyard.flag_schedules WHERE flag_key = $1 ORDER BY at, id"
    )))
    .bind(flag)
    .fetch_all(db)
    .await?;
    rows.iter().map(schedule).collect()
}

pub async fn get(
    db: impl PgExecutor<'_>,
    flag: &str,
    id: Uuid,
) -> Result<Option<Schedule>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM switchyard.flag_schedules WHERE flag_key = $1 AND id = $2"
    )))
    .bind(flag)
    .bind(id)
    .fetch_optional(db)
    .await?;
    row.as_ref().map(schedule).transpose()
}

/// Cancels a pending change; `None` when it is not pending (any more).
pub async fn cancel(
    db: impl PgExecutor<'_>,
    flag: &str,
    id: Uuid,
    actor: &str,
) -> Result<Option<Schedule>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE switchyard.flag_schedules
         SET status = 'cancelled', cancelled_by = $3, reason = 'cancelled by ' || $3, updated_at = now()
         WHERE flag_key = $1 AND id = $2 AND status = 'pending' RETURNING {COLUMNS}"
    )))
    .bind(flag)
    .bind(id)
    .bind(actor)
    .fetch_optional(db)
    .await?;
    row.as_ref().map(schedule).transpose()
}

/// Claims the earliest due pending change (skipping any another instance holds) by marking it
/// applied; the caller's transaction commits the claim with the flag write, or neither.
pub async fn claim_due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
) -> Result<Option<Schedule>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE switchyard.flag_schedules SET status = 'applied', updated_at = now()
         WHERE id = (SELECT id FROM switchyard.flag_schedules WHERE status = 'pending' AND at <= $1
                     ORDER BY at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    )))
    .bind(now)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(schedule).transpose()
}

pub async fn set_applied_version(
    conn: &mut PgConnection,
    id: Uuid,
    version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE switchyard.flag_schedules SET flag_version = $2 WHERE id = $1")
        .bind(id)
        .bind(version)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks a pending change failed, with why.
pub async fn mark_failed(
    db: impl PgExecutor<'_>,
    id: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE switchyard.flag_schedules SET status = 'failed', reason = $2, updated_at = now()
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(reason)
    .execute(db)
    .await?;
    Ok(())
}
