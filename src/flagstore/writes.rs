//! Every change to a flag goes through [`write`]: one transaction that locks the flag, checks
//! `If-Match`, applies the change, validates the result, bumps the flag's version and the
//! global revision, appends the audit row and queues the NOTIFY. Nothing is stored unless all
//! of it succeeds.

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};

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

/// An edit of an existing flag; it may refuse with an error.
pub type Edit = Box<dyn FnOnce(&mut Flag) -> Result<(), ApiError> + Send>;

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
) -> Result<FlagRecord, ApiError> {
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
) -> Result<Written, ApiError> {
    if let Some(pin) = live.pin(key) {
        return Err(ApiError::Conflict(format!(
            "flag `{key}` is pinned by the environment variable {} (= {}); unset it and restart to edit the flag over REST",
            pin.source_variable, pin.value
        )));
    }
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
            let Some(current) = flag_store::get_for_update(&mut *tx, key).await? else {
                return Err(ApiError::NotFound(format!("no flag `{key}`")));
            };
            if let Some(expected) = context.if_match
                && expected != current.version
            {
                return Err(ApiError::PreconditionFailed(format!(
                    "flag `{key}` is at version {}, not {expected}: read it again and retry",
                    current.version
                )));
            }
            let record = record_from_store(&current).map_err(|e| ApiError::Internal(e.into()))?;
            let mut flag = record.flag.clone();
            edit(&mut flag)?;
            check(&flag)?;
            let archived = flag.archived;
            if current.definition
                == serde_json::to_value(&flag).map_err(|e| ApiError::Internal(e.into()))?
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
    let definition = serde_json::to_value(&after).map_err(|e| ApiError::Internal(e.into()))?;
    let stored = match before {
        None => flag_store::insert(&mut *tx, key, &definition)
            .await?
            .ok_or_else(|| {
                ApiError::Conflict(format!(
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
    let record = record_from_store(&stored).map_err(|e| ApiError::Internal(e.into()))?;
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

/// 400 with every bad field, from the pure validation.
fn check(flag: &Flag) -> Result<(), ApiError> {
    validate(flag).map_err(ApiError::Validation)
}

/// Parses a flag document from a request body, refusing unknown fields and bad types with
/// 400 naming the field.
pub fn parse_flag(document: Value) -> Result<Flag, ApiError> {
    parse_body(document)
}

/// Parses a request body, refusing unknown fields and bad types with 400 naming the field by
/// its dotted path in the body (`type`, `rules[0].constraints[0].operator`), the way
/// [`validate`] names fields.
pub fn parse_body<T: DeserializeOwned>(document: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(document).map_err(|e| {
        ApiError::Validation(vec![crate::event::FieldError {
            index: None,
            field: field_of(&e),
            message: e.inner().to_string(),
        }])
    })
}

/// The path of the field a serde error is about. An unknown or missing field is reported at
/// the object that holds it, so its name (between backticks in the message) completes the path.
fn field_of(error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = error.path().to_string();
    let path = if path == "." { String::new() } else { path };
    let message = error.inner().to_string();
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix)?.split('`').next());
    match named {
        Some(name) if !path.ends_with(name) => {
            if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}.{name}")
            }
        }
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::flags::Rule;

    fn field(result: Result<impl Sized, ApiError>) -> String {
        match result {
            Err(ApiError::Validation(errors)) => errors[0].field.clone(),
            Err(other) => panic!("expected a validation error, got {other}"),
            Ok(_) => panic!("expected a validation error"),
        }
    }

    #[test]
    fn shape_errors_name_the_field_by_its_path() {
        let flag = |doc| field(parse_flag(doc));
        assert_eq!(flag(json!({"key": "f", "type": "float"})), "type");
        assert_eq!(
            flag(json!({"key": "f", "type": "boolean", "colour": 1})),
            "colour"
        );
        assert_eq!(flag(json!({"type": "boolean"})), "key");
        assert_eq!(
            flag(json!({"key": "f", "type": "boolean",
                        "environments": {"production": {"enabled": "yes"}}})),
            "environments.production.enabled"
        );
        assert_eq!(
            flag(json!({"key": "f", "type": "boolean",
                        "environments": {"production": {"enabeld": true}}})),
            "environments.production.enabeld"
        );
        let rules = json!([{"variant": "on",
            "constraints": [{"attribute": "a", "operator": "greater", "values": ["1"]}]}]);
        assert_eq!(
            field(parse_body::<Vec<Rule>>(rules)),
            "[0].constraints[0].operator"
        );
    }
}
