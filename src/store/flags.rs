//! Flags, their audit log and the global revision. Definitions travel as JSON documents;
//! `crate::flags` gives them their type.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, Row};
use utoipa::ToSchema;

/// The channel every committed flag change is announced on.
pub const FLAG_CHANNEL: &str = "switchyard_flags";

/// A flag row.
#[derive(Debug, Clone)]
pub struct StoredFlag {
    pub key: String,
    pub definition: Value,
    pub version: i64,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One audit row.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditRow {
    pub id: i64,
    pub flag_key: String,
    pub actor: String,
    pub action: String,
    pub reason: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
    pub version: i64,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
}

/// What a write appends to the audit log.
pub struct AuditEntry<'a> {
    pub flag_key: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub reason: Option<&'a str>,
    pub before: Option<&'a Value>,
    pub after: Option<&'a Value>,
    pub version: i64,
    pub revision: i64,
}

fn stored(row: &PgRow) -> Result<StoredFlag, sqlx::Error> {
    Ok(StoredFlag {
        key: row.try_get("key")?,
        definition: row.try_get("definition")?,
        version: row.try_get("version")?,
        archived: row.try_get("archived")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const COLUMNS: &str = "key, definition, version, archived, created_at, updated_at";

/// The current revision and every flag, archived ones included, in one consistent read.
pub async fn load_all(conn: &mut PgConnection) -> Result<(i64, Vec<StoredFlag>), sqlx::Error> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let revision = current_revision(&mut *tx).await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM switchyard.flags ORDER BY key"
    )))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((revision, rows.iter().map(stored).collect::<Result<_, _>>()?))
}

pub async fn current_revision(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT revision FROM switchyard.flag_revision")
        .fetch_one(db)
        .await
}

pub async fn list(
    db: impl PgExecutor<'_>,
    include_archived: bool,
) -> Result<Vec<StoredFlag>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM switchyard.flags WHERE archived = false OR $1 ORDER BY key"
    )))
    .bind(include_archived)
    .fetch_all(db)
    .await?;
    rows.iter().map(stored).collect()
}

pub async fn get(db: impl PgExecutor<'_>, key: &str) -> Result<Option<StoredFlag>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM switchyard.flags WHERE key = $1"
    )))
    .bind(key)
    .fetch_optional(db)
    .await?;
    row.as_ref().map(stored).transpose()
}

/// The flag, locked until the transaction ends, so read-check-write is atomic per flag.
pub async fn get_for_update(
    conn: &mut PgConnection,
    key: &str,
) -> Result<Option<StoredFlag>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM switchyard.flags WHERE key = $1 FOR UPDATE"
    )))
    .bind(key)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(stored).transpose()
}

/// Inserts a new flag at version 1; `None` if the key exists (archived or not).
pub async fn insert(
    conn: &mut PgConnection,
    key: &str,
    definition: &Value,
) -> Result<Option<StoredFlag>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO switchyard.flags (key, definition) VALUES ($1, $2)
         ON CONFLICT (key) DO NOTHING RETURNING {COLUMNS}"
    )))
    .bind(key)
    .bind(definition)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(stored).transpose()
}

/// Writes a new definition as the next version.
pub async fn update(
    conn: &mut PgConnection,
    key: &str,
    definition: &Value,
    archived: bool,
) -> Result<StoredFlag, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE switchyard.flags SET definition = $2, archived = $3, version = version + 1, updated_at = now()
         WHERE key = $1 RETURNING {COLUMNS}"
    )))
    .bind(key)
    .bind(definition)
    .bind(archived)
    .fetch_one(conn)
    .await?;
    stored(&row)
}

/// Bumps the global revision (locking its row until commit) and returns the new value.
pub async fn bump_revision(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE switchyard.flag_revision SET revision = revision + 1, updated_at = now() RETURNING revision",
    )
    .fetch_one(conn)
    .await
}

pub async fn append_audit(
    conn: &mut PgConnection,
    entry: AuditEntry<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO switchyard.flag_audit (flag_key, actor, action, reason, before, after, version, revision)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(entry.flag_key)
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.reason)
    .bind(entry.before)
    .bind(entry.after)
    .bind(entry.version)
    .bind(entry.revision)
    .execute(conn)
    .await?;
    Ok(())
}

/// Queues the change announcement; Postgres delivers it when the transaction commits.
pub async fn notify(conn: &mut PgConnection, payload: &Value) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(FLAG_CHANNEL)
        .bind(payload.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// The audit rows of one flag, newest first.
pub async fn history(
    db: impl PgExecutor<'_>,
    key: &str,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, flag_key, actor, action, reason, before, after, version, revision, created_at
         FROM switchyard.flag_audit WHERE flag_key = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(key)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditRow {
                id: r.try_get("id")?,
                flag_key: r.try_get("flag_key")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                reason: r.try_get("reason")?,
                before: r.try_get("before")?,
                after: r.try_get("after")?,
                version: r.try_get("version")?,
                revision: r.try_get("revision")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// The definition a flag had at `version` (the `after` of the write that produced it).
pub async fn definition_at(
    db: impl PgExecutor<'_>,
    key: &str,
    version: i64,
) -> Result<Option<Value>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT after FROM switchyard.flag_audit
         WHERE flag_key = $1 AND version = $2 AND after IS NOT NULL ORDER BY id DESC LIMIT 1",
    )
    .bind(key)
    .bind(version)
    .fetch_optional(db)
    .await
}

/// Deletes audit rows older than `cutoff`, at most `batch` at a time; returns how many.
pub async fn prune_audit(
    db: impl PgExecutor<'_>,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM switchyard.flag_audit WHERE id IN (
             SELECT id FROM switchyard.flag_audit WHERE created_at < $1 ORDER BY id LIMIT $2)",
    )
    .bind(cutoff)
    .bind(batch)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
