//! Scheduled flag changes: turn a flag on or off, or set its percentage, in one environment
//! at a set time. Due changes are claimed (`pending` -> `applied`) in the transaction of the
//! flag write they cause, so each is applied once however many instances run and restart; a
//! change the flag refuses (archived, pinned, gone) is marked `failed` with the reason.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::deps::RolloutDeps;
use super::error::RolloutError;
use crate::event::FieldError;
use crate::flags::{is_valid_environment_name, parse_body};
use crate::flagstore::WriteError;
use crate::flagstore::writes::{self, Change, WriteContext};
use crate::store::schedules as store;

/// What a scheduled change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    On,
    Off,
    Percentage,
}

/// The change: `{"action": "on"}`, `{"action": "off"}`, `{"action": "percentage", "percentage": 25}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduledChange {
    pub action: ChangeAction,
    /// A whole number from 0 to 100, with (and only with) the `percentage` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 100, multiple_of = 1)]
    pub percentage: Option<f64>,
}

/// The body of `POST /v1/flags/{key}/schedule`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,127}$")]
    pub environment: String,
    /// RFC 3339; must be in the future.
    pub at: DateTime<Utc>,
    pub change: ScheduledChange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleStatus {
    Pending,
    Applied,
    Cancelled,
    Failed,
}

/// A scheduled change as stored and shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Schedule {
    pub id: uuid::Uuid,
    pub flag: String,
    pub environment: String,
    pub at: DateTime<Utc>,
    pub change: ScheduledChange,
    pub status: ScheduleStatus,
    /// Why it failed, or who cancelled it.
    pub reason: Option<String>,
    /// The flag version the applied change produced.
    pub flag_version: Option<i64>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn error(field: &str, message: &str) -> FieldError {
    FieldError {
        index: None,
        field: field.into(),
        message: message.into(),
    }
}

/// Parses a schedule request: 400 naming each bad field, 422 for a time not in the future.
pub fn parse_schedule(body: Value, now: DateTime<Utc>) -> Result<ScheduleRequest, RolloutError> {
    let request: ScheduleRequest = parse_body(body)?;
    let mut errors = Vec::new();
    if !is_valid_environment_name(&request.environment) {
        errors.push(error("environment", "not a valid environment name"));
    }
    match (request.change.action, request.change.percentage) {
        (ChangeAction::Percentage, None) => errors.push(error(
            "change.percentage",
            "required when the action is `percentage`",
        )),
        (ChangeAction::Percentage, Some(p)) if !(0.0..=100.0).contains(&p) || p.fract() != 0.0 => {
            errors.push(error(
                "change.percentage",
                "must be a whole number from 0 to 100",
            ))
        }
        (ChangeAction::On | ChangeAction::Off, Some(_)) => errors.push(error(
            "change.percentage",
            "only the `percentage` action takes a percentage",
        )),
        _ => {}
    }
    if !errors.is_empty() {
        return Err(RolloutError::Invalid(errors));
    }
    if request.at <= now {
        return Err(RolloutError::Unprocessable(format!(
            "`at` ({}) is not in the future",
            request.at.to_rfc3339()
        )));
    }
    Ok(request)
}

/// Applies every due change; returns how many were applied.
pub async fn apply_due(deps: &RolloutDeps) -> Result<usize, RolloutError> {
    let mut applied = 0;
    loop {
        let mut tx = deps.pool.begin().await?;
        let Some(due) = store::claim_due(&mut tx, Utc::now()).await? else {
            return Ok(applied);
        };
        let actor = format!("schedule:{}", due.id);
        let reason = format!(
            "scheduled by {} for {}",
            due.created_by,
            due.at.to_rfc3339()
        );
        let context = WriteContext {
            actor: &actor,
            reason: Some(&reason),
            if_match: None,
        };
        let (action, change) = flag_change(&due);
        match writes::write_in(&mut tx, &deps.flags, &due.flag, action, &context, change).await {
            Ok(written) => {
                store::set_applied_version(&mut tx, due.id, written.record.version).await?;
                tx.commit().await?;
                if written.changed {
                    writes::announce(
                        &deps.pool,
                        &deps.flags,
                        &due.flag,
                        action,
                        &context,
                        &written,
                    )
                    .await;
                }
                tracing::info!(schedule_id = %due.id, flag = %due.flag, environment = %due.environment,
                    action, version = written.record.version, "scheduled change {} applied", due.id);
                applied += 1;
            }
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(refused) => {
                drop(tx);
                let why = refused.to_string();
                tracing::warn!(schedule_id = %due.id, flag = %due.flag, reason = %why,
                    "scheduled change {} failed", due.id);
                store::mark_failed(&deps.pool, due.id, &why).await?;
            }
        }
    }
}

/// The flag write a scheduled change makes, with the action name the REST write would use.
fn flag_change(due: &Schedule) -> (&'static str, Change) {
    let (env, change, key) = (
        due.environment.clone(),
        due.change.clone(),
        due.flag.clone(),
    );
    let action = match change.action {
        ChangeAction::On => "flip_on",
        ChangeAction::Off => "flip_off",
        ChangeAction::Percentage => "rollout",
    };
    let edit = Change::Edit(Box::new(move |flag| {
        if flag.archived {
            return Err(WriteError::Conflict(format!("flag `{key}` is archived")));
        }
        let config = flag.environment_mut(&env);
        match change.action {
            ChangeAction::On => config.enabled = true,
            ChangeAction::Off => config.enabled = false,
            ChangeAction::Percentage => {
                config.rollout.percentage = change.percentage.unwrap_or(0.0)
            }
        }
        Ok(())
    }));
    (action, edit)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_change_in_the_past_is_unprocessable_and_bad_fields_are_named() {
        let now = Utc::now();
        let past = json!({"environment": "production", "at": "2020-01-01T00:00:00Z",
                          "change": {"action": "on"}});
        assert!(matches!(
            parse_schedule(past, now),
            Err(RolloutError::Unprocessable(_))
        ));
        let bad = json!({"environment": "Prod!", "at": "2999-01-01T00:00:00Z",
                         "change": {"action": "percentage", "percentage": 101}});
        let Err(RolloutError::Invalid(errors)) = parse_schedule(bad, now) else {
            panic!("expected a validation error");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["environment", "change.percentage"]);
        let shape = json!({"environment": "p", "at": "tomorrow", "change": {"action": "on"}});
        let Err(RolloutError::Invalid(errors)) = parse_schedule(shape, now) else {
            panic!("expected a validation error");
        };
        assert_eq!(errors[0].field, "at");
    }
}
