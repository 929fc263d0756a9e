//! What operators (and the plan itself) do to a plan besides stepping it: pause, resume,
//! abort. Each is one transaction with the plan's row locked, audited in `rollout_events`
//! with the actor; an abort also writes the flag to 0% as the plan.

use chrono::Utc;
use uuid::Uuid;

use super::deps::RolloutDeps;
use super::error::RolloutError;
use super::model::{Plan, Status};
use super::steps::{announce, set_percentage};
use crate::store::flags as flag_store;
use crate::store::rollouts as store;

/// What an operator (or the plan itself) does to a plan.
pub enum Operation {
    Pause,
    PauseWith(String),
    Resume,
    Abort,
}

/// Pauses, resumes or aborts a plan (409 when its status does not allow it). Resuming accepts
/// the flag's current version and restarts the stage's hold; aborting sets 0%. A plan that a
/// guardrail rolled back can be resumed too, once the operator has seen the cause fixed: it
/// carries on from the stage it stepped back to (409 if the flag has another live plan by then).
pub async fn operate(
    deps: &RolloutDeps,
    id: Uuid,
    actor: &str,
    op: Operation,
) -> Result<Plan, RolloutError> {
    let mut tx = deps.pool.begin().await?;
    let mut plan = store::get_for_update(&mut tx, id)
        .await?
        .ok_or_else(|| RolloutError::NotFound(format!("no rollout plan `{id}`")))?;
    let from = plan.status;
    let (action, allowed) = match &op {
        Operation::Pause | Operation::PauseWith(_) => ("paused", from == Status::Running),
        Operation::Resume => (
            "resumed",
            matches!(from, Status::Paused | Status::RolledBack),
        ),
        Operation::Abort => ("aborted", from.is_live()),
    };
    if !allowed {
        return Err(RolloutError::Conflict(format!(
            "rollout plan `{id}` is {}: it cannot be {action}",
            from.as_str()
        )));
    }
    let now = Utc::now();
    let mut written = None;
    match op {
        Operation::Pause => {
            plan.status = Status::Paused;
            plan.reason = format!("paused by {actor}");
        }
        Operation::PauseWith(reason) => {
            plan.status = Status::Paused;
            plan.reason = reason;
        }
        Operation::Resume => {
            if from == Status::RolledBack
                && store::has_other_live_plan(&mut tx, &plan.flag, &plan.environment, id).await?
            {
                return Err(RolloutError::Conflict(format!(
                    "flag `{}` in `{}` has another live rollout plan: finish or abort it first",
                    plan.flag, plan.environment
                )));
            }
            let current = flag_store::get(&mut *tx, &plan.flag)
                .await?
                .ok_or_else(|| RolloutError::Conflict(format!("flag `{}` is gone", plan.flag)))?;
            plan.status = Status::Running;
            plan.flag_version = current.version;
            plan.stage_since = now;
            plan.reason = format!(
                "resumed by {actor} at flag version {}; the stage's hold starts again",
                current.version
            );
        }
        Operation::Abort => {
            plan.status = Status::Aborted;
            plan.stage = None;
            plan.reason = format!("aborted by {actor}; back to 0%");
            let w = set_percentage(&mut tx, deps, &plan, 0, false, None).await?;
            plan.percentage = 0;
            plan.flag_version = w.record.version;
            written = Some(w);
        }
    }
    store::update(&mut tx, &plan).await?;
    store::append_event(&mut tx, &plan, actor, action, Some(from)).await?;
    tx.commit().await?;
    announce(deps, &plan, action, written.as_ref()).await;
    Ok(plan)
}
