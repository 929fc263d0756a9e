//! Every change to a flag goes through [`write`]: one transaction that locks the flag, checks
//! `If-Match`, applies the change, validates the result, bumps the flag's version and the
//! global revision, appends the audit row and queues the NOTIFY. Nothing is stored unless all
//! of it succeeds.

use serde_json::{Value, json};
use sqlx::PgPool;

use super::live::{LiveFlags, record_from_store};
use super::{Flag, FlagRecord, validate};
use crate::api::error::ApiError;
use crate::store::flags::{self as flag_store, AuditEntry};

/// Who writes, why, and on which version.
pub struct WriteContext<'a> {
    pub actor: &'a str,
    pub reason: Option<&'a str>,
    /// The version the writer read (`If-Match`); `None` writes unconditionally.
    pub if_match: Option<i64>,
}

/// What a write does to the stored flag.
pub enum Change {
    /// A new flag (409 if the key exists, archived or not).
    Create(Box<Flag>),
    /// Edit the existing flag in place; the closure may refuse with an error.
    Edit(Box<dyn FnOnce(&mut Flag) -> Result<(), ApiError> + Send>),
}

/// Applies `change` to flag `key` as `action`; returns the stored result.
pub async fn write(
    pool: &PgPool,
    live: &LiveFlags,
    key: &str,
    action: &str,
    context: WriteContext<'_>,
    change: Change,
) -> Result<FlagRecord, ApiError> {
    if let Some(pin) = live.pin(key) {
        return Err(ApiError::Conflict(format!(
            "flag `{key}` is pinned by the environment variable {} (= {}); unset it and restart to edit the flag over REST",
            pin.source_variable, pin.value
        )));
    }
    let mut tx = pool.begin().await?;
    let (before, after, archived) = match change {
        Change::Create(flag) => {
            if context.if_match.is_some() {
                return Err(ApiError::PreconditionFailed(format!(
                    "flag `{key}` does not exist yet"
                )));
            }
            check(&flag)?;
            (None, *flag, false)
        }
        Change::Edit(edit) => {
            let Some(current) = flag_store::get_for_update(&mut tx, key).await? else {
                return Err(ApiError::NotFound(format!("no flag `{key}`")));
            };
            if let Some(expected) = context.if_match {
                if expected != current.version {
                    return Err(ApiError::PreconditionFailed(format!(
                        "flag `{key}` is at version {}, not {expected}: read it again and retry",
                        current.version
                    )));
                }
            }
            let record = record_from_store(&current).map_err(|e| ApiError::Internal(e.into()))?;
            let mut flag = record.flag.clone();
            edit(&mut flag)?;
            check(&flag)?;
            let archived = flag.archived;
            (Some(current.definition), flag, archived)
        }
    };
    let definition = serde_json::to_value(&after).map_err(|e| ApiError::Internal(e.into()))?;
    if before.as_ref() == Some(&definition) {
        // Nothing changes: no new version, no audit row, no notification.
        tx.rollback().await?;
        let current = flag_store::get(pool, key)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no flag `{key}`")))?;
        return record_from_store(&current).map_err(|e| ApiError::Internal(e.into()));
    }
    let stored = match before {
        None => flag_store::insert(&mut tx, key, &definition)
            .await?
            .ok_or_else(|| {
                ApiError::Conflict(format!(
                    "flag `{key}` exists already (it may be archived: restore it instead)"
                ))
            })?,
        Some(_) => flag_store::update(&mut tx, key, &definition, archived).await?,
    };
    let revision = flag_store::bump_revision(&mut tx).await?;
    flag_store::append_audit(
        &mut tx,
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
        &mut tx,
        &json!({"key": key, "version": stored.version, "revision": revision, "action": action}),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(
        flag = key,
        action,
        actor = context.actor,
        version = stored.version,
        revision,
        "flag written"
    );
    // Read-your-writes on this instance; other instances follow the NOTIFY.
    if let Err(e) = live.reload(pool).await {
        tracing::warn!(error = %e, "reload after a flag write failed; the listener will catch up");
    }
    record_from_store(&stored).map_err(|e| ApiError::Internal(e.into()))
}

/// 400 with every bad field, from the pure validation.
fn check(flag: &Flag) -> Result<(), ApiError> {
    validate(flag).map_err(ApiError::Validation)
}

/// Parses a flag document from a request body, refusing unknown fields and bad types with
/// 400 naming the field.
pub fn parse_flag(document: Value) -> Result<Flag, ApiError> {
    serde_json::from_value(document).map_err(|e| {
        ApiError::Validation(vec![crate::event::FieldError {
            index: None,
            field: field_of_serde_error(&e.to_string()),
            message: e.to_string(),
        }])
    })
}

/// Best effort at naming the field a serde error is about (`unknown field `x``, `missing field `y``).
fn field_of_serde_error(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .filter(|_| message.contains("field"))
        .unwrap_or("")
        .to_string()
}
