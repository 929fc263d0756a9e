//! The consistency validator's stored reports: one row per closed window and category.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use utoipa::ToSchema;

use crate::validator::window::ClosedWindow;

/// A stored report.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct ValidationReport {
    pub id: i64,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub category: String,
    pub expected: i64,
    pub matched: i64,
    pub consistency_percent: Option<f64>,
    pub threshold_percent: f64,
    pub breached: bool,
    #[schema(value_type = Object)]
    pub discrepancies: Value,
    #[schema(value_type = Object)]
    pub examples: Value,
    #[schema(value_type = Object)]
    pub latency_ms: Value,
}

/// Stores every category of a closed window, in one transaction.
pub async fn insert_reports(pool: &PgPool, closed: &ClosedWindow) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for summary in &closed.categories {
        let Some(category) = summary.category else {
            continue;
        };
        sqlx::query(
            "INSERT INTO switchyard.validation_reports (window_start, window_end, category,
                 expected, matched, consistency_percent, threshold_percent, breached,
                 discrepancies, examples, latency_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(closed.started_at)
        .bind(closed.ended_at)
        .bind(category.as_str())
        .bind(i64::try_from(summary.expected).unwrap_or(i64::MAX))
        .bind(i64::try_from(summary.matched).unwrap_or(i64::MAX))
        .bind(summary.consistency_percent)
        .bind(summary.threshold_percent.unwrap_or(0.0))
        .bind(summary.breached)
        .bind(to_json(&summary.discrepancies))
        .bind(to_json(&summary.examples))
        .bind(to_json(&summary.latency_ms))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

fn to_json(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// The newest `limit` reports, of one category or all.
pub async fn list_reports(
    db: impl PgExecutor<'_>,
    category: Option<&str>,
    limit: i64,
) -> Result<Vec<ValidationReport>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, window_start, window_end, category, expected, matched, consistency_percent,
                threshold_percent, breached, discrepancies, examples, latency_ms
         FROM switchyard.validation_reports
         WHERE $1::text IS NULL OR category = $1
         ORDER BY window_end DESC, id DESC LIMIT $2",
    )
    .bind(category)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Deletes reports whose window ended before `cutoff`; returns how many.
pub async fn delete_reports_before(
    db: impl PgExecutor<'_>,
    cutoff: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM switchyard.validation_reports WHERE window_end < $1")
        .bind(cutoff)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}
