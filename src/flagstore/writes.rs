//! Every change to a flag goes through [`write`]: one transaction that locks the flag, checks
//! `If-Match`, applies the change, validates the result, bumps the flag's version and the
//! global revision, appends the audit row and queues the NOTIFY. Nothing is stored unless all
//! of it succeeds. A write that cannot happen says why with a [`WriteError`]: a refusal (the
//! flag is missing, pinned, in conflict, at another version, or invalid) or a failure of the
//! store, which a background job may retry ([`WriteError::is_transient`]).

use serde_json::json;
use sqlx::{PgConnection, PgPool};

use super::live::{LiveFlags, record_from_store};
use crate::event::FieldError;
use crate::flags::{Flag, FlagRecord, InvalidFields, validate};
use crate::store::flags::{self as flag_store, AuditEntry};

/// Why a flag write did not happen. The HTTP status each maps to is `api::error`'s concern.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// No such flag.
    #[error("{0}")]
    NotFound(String),
    /// An environment variable pins the flag: REST writes are refused.
    #[error("{0}")]
    Pinned(String),
    /// The change conflicts with the flag's state (exists already, archived).
    #[error("{0}")]
    Conflict(String),
    /// The flag is not at the version the writer read (`If-Match`).
    #[error("{0}")]
    VersionMismatch(String),
    /// The flag the change would leave behind is invalid: each bad field.
    #[error("{} invalid field(s)", .0.len())]
    Invalid(Vec<FieldError>),
    /// The control store failed (or could not be reached).
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    /// A bug or corrupt stored data.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl WriteError {
    /// A failure rather than a refusal: trying the same write again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, WriteError::Store(_) | WriteError::Internal(_))
    }
}

impl From<InvalidFields> for WriteError {
    fn from(InvalidFields(errors): InvalidFields) -> Self {
        WriteError::Invalid(errors)
    }
}

/// Who writes, why, and on which version.
pub struct WriteContext<'a> {
    pub actor: &'a str,
    pub reason: Option<&'a str>,
    /// The version the writer read (`If-Match`); `None` writes unconditionally.
    pub if_match: Option<i64>,
}

/// An edit of an existing flag; it may refuse with an error.
pub type Edit = Box<dyn FnOnce(&mut Flag) -> Result<(), WriteError> + Send>;

/// What a write does to the stored flag.
pub enum Change {
    /// A new flag (409 if the key exists, archived or not).
    Create(Box<Flag>),
    /// Edit the existing flag in place; the closure may refuse with an error.
    Edit(Edit),
}

/// Applies `change` to flag `key` as `action`; returns the stored result.
pub async fn write(
    pool: &PgPool,
    live: &LiveFlags,
    key: &str,
    action: &str,
    context: WriteContext<'_>,
    change: Change,
) -> Result<FlagRecord, WriteError> {
    let mut tx = pool.begin().await?;
    let written = write_in(&mut tx, live, key, action, &context, change).await?;
    tx.commit().await?;
    if written.changed {
        announce(pool, live, key, action, &context, &written).await;
    }
    Ok(written.record)
}

/// What [`write_in`] did.
pub struct Written {
    pub record: FlagRecord,
    /// False when the change left the flag as it was: no new version, no audit row.
    pub changed: bool,
    pub revision: i64,
}

/// [`write`] inside the caller's transaction, so that something else (a rollout plan's state,
/// a scheduled change's claim) commits or fails together with the flag write. After the
/// commit, call [`announce`] when `changed`.
pub async fn write_in(
    tx: &mut PgConnection,
    live: &LiveFlags,
    key: &str,
    action: &str,
    context: &WriteContext<'_>,
    change: Change,
) -> Result<Written, WriteError> {
    if let Some(pin) = live.pin(key) {
        return Err(WriteError::Pinned(format!(
            "flag `{key}` is pinned by the environment variable {} (= {}); unset it and restart to edit the flag over REST",
            pin.source_variable, pin.value
        )));
    }
    let (before, after, archived) = match change {
        Change::Create(flag) => {
            if context.if_match.is_some() {
                return Err(WriteError::VersionMismatch(format!(
                    "flag `{key}` does not exist yet"
                )));
            }
            check(&flag)?;
            (None, *flag, false)
        }
        Change::Edit(edit) => {
            let Some(current) = flag_store::get_for_update(&mut *tx, key).await? else {
                return Err(WriteError::NotFound(format!("no flag `{key}`")));
            };
            if let Some(expected) = context.if_match
                && expected != current.version
            {
                return Err(WriteError::VersionMismatch(format!(
                    "flag `{key}` is at version {}, not {expected}: read it again and retry",
                    current.version
                )));
            }
            let record = record_from_store(&current).map_err(|e| WriteError::Internal(e.into()))?;
            let mut flag = record.flag.clone();
            edit(&mut flag)?;
            check(&flag)?;
            let archived = flag.archived;
            if current.definition
                == serde_json::to_value(&flag).map_err(|e| WriteError::Internal(e.into()))?
            {
                // Nothing changes: no new version, no audit row, no notification.
                return Ok(Written {
                    record,
                    changed: false,
                    revision: 0,
                });
            }
            (Some(current.definition), flag, archived)
        }
    };
    let definition = serde_json::to_value(&after).map_err(|e| WriteError::Internal(e.into()))?;
    let stored = match before {
        None => flag_store::insert(&mut *tx, key, &definition)
            .await?
            .ok_or_else(|| {
                WriteError::Conflict(format!(
                    "flag `{key}` exists already (it may be archived: restore it instead)"
                ))
            })?,
        Some(_) => flag_store::update(&mut *tx, key, &definition, archived).await?,
    };
    let revision = flag_store::bump_revision(&mut *tx).await?;
    flag_store::append_audit(
        &mut *tx,
        AuditEntry {
            flag_key: key,
            actor: context.actor,
            action,
            reason: context.reason,
            before: before.as_ref(),
            after: Some(&definition),
            version: stored.version,
            revision,
        },
    )
    .await?;
    flag_store::notify(
        &mut *tx,
        &json!({"key": key, "version": stored.version, "revision": revision, "action": action}),
    )
    .await?;
    let record = record_from_store(&stored).map_err(|e| WriteError::Internal(e.into()))?;
    Ok(Written {
        record,
        changed: true,
        revision,
    })
}

/// After a committed write: the log line, and read-your-writes on this instance (other
/// instances follow the NOTIFY).
pub async fn announce(
    pool: &PgPool,
    live: &LiveFlags,
    key: &str,
    action: &str,
    context: &WriteContext<'_>,
    written: &Written,
) {
    tracing::info!(
        flag = key,
        action,
        actor = context.actor,
        version = written.record.version,
        revision = written.revision,
        "flag written"
    );
    if let Err(e) = live.reload(pool).await {
        tracing::warn!(error = %e, "reload after a flag write failed; the listener will catch up");
    }
}

/// Every bad field, from the pure validation.
fn check(flag: &Flag) -> Result<(), WriteError> {
    validate(flag).map_err(WriteError::Invalid)
}
