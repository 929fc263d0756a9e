//! Breaker history: transitions (appended by the history writer) and operator actions
//! (audited before they take effect), each listed newest first.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, Row};
use utoipa::ToSchema;

use crate::breaker::{BreakerState, Transition};

/// A stored transition.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransitionRecord {
    pub id: i64,
    pub breaker: String,
    pub from: BreakerState,
    pub to: BreakerState,
    pub reason: String,
    pub actor: Option<String>,
    /// When the breaker changed.
    pub at: DateTime<Utc>,
    /// When the row was written.
    pub created_at: DateTime<Utc>,
}

fn state(row: &PgRow, column: &str) -> Result<BreakerState, sqlx::Error> {
    let raw: String = row.try_get(column)?;
    BreakerState::parse(&raw)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown breaker state `{raw}`").into()))
}

fn record(row: &PgRow) -> Result<TransitionRecord, sqlx::Error> {
    Ok(TransitionRecord {
        id: row.try_get("id")?,
        breaker: row.try_get("breaker")?,
        from: state(row, "from_state")?,
        to: state(row, "to_state")?,
        reason: row.try_get("reason")?,
        actor: row.try_get("actor")?,
        at: row.try_get("at")?,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn insert(db: impl PgExecutor<'_>, transition: &Transition) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO switchyard.breaker_transitions (breaker, from_state, to_state, reason, actor, at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&transition.breaker)
    .bind(transition.from.as_str())
    .bind(transition.to.as_str())
    .bind(&transition.reason)
    .bind(transition.actor.as_deref())
    .bind(transition.at)
    .execute(db)
    .await?;
    Ok(())
}

/// The latest `limit` transitions of `breaker`, newest first.
pub async fn list(
    db: impl PgExecutor<'_>,
    breaker: &str,
    limit: i64,
) -> Result<Vec<TransitionRecord>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, breaker, from_state, to_state, reason, actor, at, created_at
         FROM switchyard.breaker_transitions WHERE breaker = $1
         ORDER BY at DESC, id DESC LIMIT $2",
    )
    .bind(breaker)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter().map(record).collect()
}

/// An operator's action on a breaker, as audited.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionRecord {
    pub id: i64,
    pub breaker: String,
    /// `force_open`, `force_closed`, `disable`, `reset` or `auto`.
    pub action: String,
    /// The API key's name.
    pub actor: String,
    pub reason: Option<String>,
    pub before_state: BreakerState,
    pub after_state: BreakerState,
    pub created_at: DateTime<Utc>,
}

/// An action about to be applied.
pub struct NewAction<'a> {
    pub breaker: &'a str,
    pub action: &'a str,
    pub actor: &'a str,
    pub reason: Option<&'a str>,
    pub before_state: BreakerState,
    pub after_state: BreakerState,
}

/// Audits `action`; returns its id.
pub async fn insert_action(
    db: impl PgExecutor<'_>,
    action: &NewAction<'_>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO switchyard.breaker_actions
             (breaker, action, actor, reason, before_state, after_state)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(action.breaker)
    .bind(action.action)
    .bind(action.actor)
    .bind(action.reason)
    .bind(action.before_state.as_str())
    .bind(action.after_state.as_str())
    .fetch_one(db)
    .await
}

/// The latest `limit` actions on `breaker`, newest first.
pub async fn list_actions(
    db: impl PgExecutor<'_>,
    breaker: &str,
    limit: i64,
) -> Result<Vec<ActionRecord>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, breaker, action, actor, reason, before_state, after_state, created_at
         FROM switchyard.breaker_actions WHERE breaker = $1
         ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(breaker)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ActionRecord {
                id: row.try_get("id")?,
                breaker: row.try_get("breaker")?,
                action: row.try_get("action")?,
                actor: row.try_get("actor")?,
                reason: row.try_get("reason")?,
                before_state: state(row, "before_state")?,
                after_state: state(row, "after_state")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}
