//! Rollout plans and their event trail. A plan's state row and the flag write of each step
//! commit in one transaction, which the caller owns.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::rollout::{OnBreach, Plan, Stage, Status};

const COLUMNS: &str = "id, flag_key, environment, stages, guardrails, on_breach, status, stage, \
     percentage, initial_percentage, stage_since, flag_version, reason, created_by, created_at, updated_at";

fn decode<T: serde::de::DeserializeOwned>(row: &PgRow, column: &str) -> Result<T, sqlx::Error> {
    let value: serde_json::Value = row.try_get(column)?;
    serde_json::from_value(value).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn small(row: &PgRow, column: &str) -> Result<u8, sqlx::Error> {
    let n: i32 = row.try_get(column)?;
    u8::try_from(n).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn plan(row: &PgRow) -> Result<Plan, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let on_breach: String = row.try_get("on_breach")?;
    let stage: Option<i32> = row.try_get("stage")?;
    Ok(Plan {
        id: row.try_get("id")?,
        flag: row.try_get("flag_key")?,
        environment: row.try_get("environment")?,
        stages: decode::<Vec<Stage>>(row, "stages")?,
        guardrails: decode(row, "guardrails")?,
        on_breach: if on_breach == "abort" {
            OnBreach::Abort
        } else {
            OnBreach::Rollback
        },
        status: Status::parse(&status).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown rollout status `{status}`").into())
        })?,
        stage: stage.and_then(|s| usize::try_from(s).ok()),
        percentage: small(row, "percentage")?,
        initial_percentage: small(row, "initial_percentage")?,
        stage_since: row.try_get("stage_since")?,
        flag_version: row.try_get("flag_version")?,
        reason: row.try_get("reason")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn stage_column(stage: Option<usize>) -> Option<i32> {
    stage.and_then(|s| i32::try_from(s).ok())
}

/// Inserts a new plan; `false` when the flag and environment already have a live plan.
pub async fn insert(conn: &mut PgConnection, plan: &Plan) -> Result<bool, sqlx::Error> {
    let stages =
        serde_json::to_value(&plan.stages).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let guardrails =
        serde_json::to_value(&plan.guardrails).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let done = sqlx::query(
        "INSERT INTO switchyard.rollouts (id, flag_key, environment, stages, guardrails, on_breach,
             status, stage, percentage, initial_percentage, stage_since, flag_version, reason, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT DO NOTHING",
    )
    .bind(plan.id)
    .bind(&plan.flag)
    .bind(&plan.environment)
    .bind(stages)
    .bind(guardrails)
    .bind(plan.on_breach.as_str())
    .bind(plan.status.as_str())
    .bind(stage_column(plan.stage))
    .bind(i32::from(plan.percentage))
    .bind(i32::from(plan.initial_percentage))
    .bind(plan.stage_since)
    .bind(plan.flag_version)
    .bind(&plan.reason)
    .bind(&plan.created_by)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether `flag` in `environment` has a live (running or paused) plan other than `id`.
pub async fn has_other_live_plan(
    conn: &mut PgConnection,
    flag: &str,
    environment: &str,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM switchyard.rollouts WHERE flag_key = $1
             AND environment = $2 AND status IN ('running', 'paused') AND id <> $3)",
    )
    .bind(flag)
    .bind(environment)
    .bind(id)
    .fetch_one(conn)
    .await
}

/// Writes the plan's moving parts: status, stage, percentage, since, flag version, reason.
pub async fn update(conn: &mut PgConnection, plan: &Plan) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE switchyard.rollouts SET status = $2, stage = $3, percentage = $4, stage_since = $5,
             flag_version = $6, reason = $7, updated_at = now()
         WHERE id = $1",
    )
    .bind(plan.id)
    .bind(plan.status.as_str())
    .bind(stage_column(plan.stage))
    .bind(i32::from(plan.percentage))
    .bind(plan.stage_since)
    .bind(plan.flag_version)
    .bind(&plan.reason)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Plan>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM switchyard.rollouts WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?;
    row.as_ref().map(plan).transpose()
}

/// The plan, locked until the transaction ends: whoever steps it sees the latest state.
pub async fn get_for_update(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<Plan>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM switchyard.rollouts WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(plan).transpose()
}

/// Plans, newest first.
pub async fn list(db: impl PgExecutor<'_>, limit: i64) -> Result<Vec<Plan>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM switchyard.rollouts ORDER BY created_at DESC, id LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter().map(plan).collect()
}

/// The plans the driver moves.
pub async fn running(db: impl PgExecutor<'_>) -> Result<Vec<Plan>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM switchyard.rollouts WHERE status = 'running' ORDER BY created_at"
    )))
    .fetch_all(db)
    .await?;
    rows.iter().map(plan).collect()
}

/// One change of a plan's state, as stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RolloutEvent {
    pub actor: String,
    pub action: String,
    pub from_status: Option<Status>,
    pub to_status: Status,
    pub stage: Option<usize>,
    pub percentage: u8,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// Appends what just happened to `plan` (its state after the change).
pub async fn append_event(
    conn: &mut PgConnection,
    plan: &Plan,
    actor: &str,
    action: &str,
    from: Option<Status>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO switchyard.rollout_events
             (rollout_id, actor, action, from_status, to_status, stage, percentage, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(plan.id)
    .bind(actor)
    .bind(action)
    .bind(from.map(Status::as_str))
    .bind(plan.status.as_str())
    .bind(stage_column(plan.stage))
    .bind(i32::from(plan.percentage))
    .bind(&plan.reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// A plan's events, oldest first.
pub async fn events(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<RolloutEvent>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT actor, action, from_status, to_status, stage, percentage, reason, created_at
         FROM switchyard.rollout_events WHERE rollout_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|row| {
            let from: Option<String> = row.try_get("from_status")?;
            let to: String = row.try_get("to_status")?;
            let stage: Option<i32> = row.try_get("stage")?;
            Ok(RolloutEvent {
                actor: row.try_get("actor")?,
                action: row.try_get("action")?,
                from_status: from.as_deref().and_then(Status::parse),
                to_status: Status::parse(&to)
                    .ok_or_else(|| sqlx::Error::Decode(format!("unknown status `{to}`").into()))?,
                stage: stage.and_then(|s| usize::try_from(s).ok()),
                percentage: small(row, "percentage")?,
                reason: row.try_get("reason")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}

/// Holds the rollout driver's leadership on this session until it ends (or is unlocked):
/// `true` if this session holds it now.
pub async fn try_lead(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(DRIVER_LOCK)
        .fetch_one(conn)
        .await
}

/// The advisory lock key of the rollout driver (`'switchyd'` as bytes).
const DRIVER_LOCK: i64 = 0x7377_6974_6368_7964;
