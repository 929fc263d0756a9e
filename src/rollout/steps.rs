//! Applying a plan's moves. Each move runs in one transaction holding the plan's row lock:
//! the flag write (if the move changes the percentage), the plan's new state and its event
//! row commit together or not at all. After the commit the write is announced, the move
//! logged and a `rollout_changed` system frame sent.

use chrono::Utc;
use sqlx::PgConnection;
use uuid::Uuid;

use super::deps::RolloutDeps;
use super::error::RolloutError;
use super::guardrails;
use super::model::{Plan, Status, Step, next_step};
use super::operations::{Operation, operate};
use super::parse::ValidPlan;
use crate::flags::Flag;
use crate::flagstore::record_from_store;
use crate::flagstore::writes::{self, Change, WriteContext, WriteError, Written};
use crate::hub::SystemFrame;
use crate::store::flags as flag_store;
use crate::store::rollouts as store;

/// Sets the plan's percentage on its flag, as the plan, over `if_match`. `enable` also turns
/// the flag on in the environment (a stage going up means the flag is meant to be on).
pub(super) async fn set_percentage(
    tx: &mut PgConnection,
    deps: &RolloutDeps,
    plan: &Plan,
    percentage: u8,
    enable: bool,
    if_match: Option<i64>,
) -> Result<Written, WriteError> {
    let (key, env) = (plan.flag.clone(), plan.environment.clone());
    let change = Change::Edit(Box::new(move |flag| {
        if flag.archived {
            return Err(WriteError::Conflict(format!("flag `{key}` is archived")));
        }
        let config = flag.environment_mut(&env);
        config.rollout.percentage = f64::from(percentage);
        config.enabled |= enable;
        Ok(())
    }));
    let actor = plan.actor();
    let reason = plan.reason.clone();
    let context = WriteContext {
        actor: &actor,
        reason: Some(&reason),
        if_match,
    };
    writes::write_in(tx, &deps.flags, &plan.flag, "rollout", &context, change).await
}

/// After a commit: the flag write announced, the move logged and told to subscribers.
pub(super) async fn announce(
    deps: &RolloutDeps,
    plan: &Plan,
    action: &str,
    written: Option<&Written>,
) {
    if let Some(written) = written.filter(|w| w.changed) {
        let actor = plan.actor();
        let context = WriteContext {
            actor: &actor,
            reason: Some(&plan.reason),
            if_match: None,
        };
        writes::announce(
            &deps.pool,
            &deps.flags,
            &plan.flag,
            "rollout",
            &context,
            written,
        )
        .await;
    }
    tracing::info!(
        rollout_id = %plan.id, flag = %plan.flag, environment = %plan.environment, action,
        status = plan.status.as_str(), stage = ?plan.stage, percentage = plan.percentage,
        reason = %plan.reason, "rollout {}: {}", plan.id, plan.reason
    );
    deps.hub.publish_system(&SystemFrame::RolloutChanged {
        id: plan.id,
        flag: plan.flag.clone(),
        environment: plan.environment.clone(),
        action: action.to_string(),
        status: plan.status,
        stage: plan.stage,
        percentage: plan.percentage,
        reason: plan.reason.clone(),
    });
}

/// Creates a plan and applies its first stage, all in one transaction.
pub async fn create(
    deps: &RolloutDeps,
    request: ValidPlan,
    actor: &str,
    if_match: Option<i64>,
) -> Result<Plan, RolloutError> {
    let mut tx = deps.pool.begin().await?;
    let Some(current) = flag_store::get_for_update(&mut tx, &request.flag).await? else {
        return Err(RolloutError::NotFound(format!(
            "no flag `{}`",
            request.flag
        )));
    };
    let record = record_from_store(&current).map_err(|e| RolloutError::Internal(e.into()))?;
    // What the environment exposed before the plan: its percentage, or 0 while switched off
    // (the plan switches it on; rolling back below the first stage lands on this).
    let config = record.flag.environment(&request.environment);
    let before = if config.enabled {
        config.rollout.percentage
    } else {
        0.0
    };
    let now = Utc::now();
    let mut plan = Plan {
        id: Uuid::now_v7(),
        flag: request.flag,
        environment: request.environment,
        percentage: request.stages[0].percentage,
        stages: request.stages,
        guardrails: request.guardrails,
        on_breach: request.on_breach,
        status: Status::Running,
        stage: Some(0),
        // A whole number 0-100: flag validation guarantees it.
        initial_percentage: before.clamp(0.0, 100.0) as u8,
        stage_since: now,
        flag_version: current.version,
        reason: String::new(),
        created_by: actor.to_string(),
        created_at: now,
        updated_at: now,
    };
    plan.reason = match &request.reason {
        Some(why) => format!(
            "created by {actor} ({why}); stage 1 ({}%) applied",
            plan.percentage
        ),
        None => format!("created by {actor}; stage 1 ({}%) applied", plan.percentage),
    };
    if !store::insert(&mut tx, &plan).await? {
        return Err(RolloutError::Conflict(format!(
            "flag `{}` already has a running or paused rollout plan in `{}`",
            plan.flag, plan.environment
        )));
    }
    let written = set_percentage(&mut tx, deps, &plan, plan.percentage, true, if_match).await?;
    plan.flag_version = written.record.version;
    if plan.stages.len() == 1 && plan.stages[0].hold_ms.is_none() {
        plan.status = Status::Completed;
    }
    store::update(&mut tx, &plan).await?;
    store::append_event(&mut tx, &plan, actor, "create", None).await?;
    tx.commit().await?;
    announce(deps, &plan, "created", Some(&written)).await;
    Ok(plan)
}

/// Moves one running plan if its time or a guardrail says so; pauses it when a human changed
/// its flag. Returns the plan when it moved.
pub async fn drive(deps: &RolloutDeps, id: Uuid) -> Result<Option<Plan>, RolloutError> {
    let mut tx = deps.pool.begin().await?;
    let Some(mut plan) = store::get_for_update(&mut tx, id).await? else {
        return Ok(None);
    };
    if plan.status != Status::Running {
        return Ok(None);
    }
    if let Some(reason) = changed_underneath(&mut tx, &mut plan).await? {
        plan.status = Status::Paused;
        plan.reason = reason;
        store::update(&mut tx, &plan).await?;
        let actor = plan.actor();
        store::append_event(&mut tx, &plan, &actor, "paused", Some(Status::Running)).await?;
        tx.commit().await?;
        announce(deps, &plan, "paused", None).await;
        return Ok(Some(plan));
    }
    let readings = guardrails::read(&deps.guardrails, &plan.guardrails);
    let now = Utc::now();
    let (action, percentage, enable) = match next_step(&plan, &readings, now) {
        Step::Wait => {
            // Keeps a version taken over from another environment's change, if any.
            tx.commit().await?;
            return Ok(None);
        }
        Step::Complete => {
            plan.status = Status::Completed;
            plan.reason = format!(
                "completed: the last stage ({}%) held with every guardrail healthy",
                plan.percentage
            );
            ("completed", None, false)
        }
        Step::Advance { stage, completes } => {
            let percentage = plan.stages[stage].percentage;
            plan.stage = Some(stage);
            plan.stage_since = now;
            plan.reason = format!(
                "advanced to stage {} ({percentage}%): the hold passed with every guardrail healthy",
                stage + 1
            );
            if completes {
                plan.status = Status::Completed;
                plan.reason
                    .push_str("; the last stage, so the plan is complete");
            }
            ("advanced", Some(percentage), true)
        }
        Step::Breach {
            stage,
            percentage,
            status,
            reason,
        } => {
            plan.stage = stage;
            plan.status = status;
            plan.reason = reason;
            plan.stage_since = now;
            ("breached", Some(percentage), false)
        }
    };
    let mut written = None;
    if let Some(percentage) = percentage {
        match set_percentage(
            &mut tx,
            deps,
            &plan,
            percentage,
            enable,
            Some(plan.flag_version),
        )
        .await
        {
            Ok(w) => {
                plan.percentage = percentage;
                plan.flag_version = w.record.version;
                written = Some(w);
            }
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(refused) => {
                drop(tx);
                let reason = format!("paused: the plan could not write its flag: {refused}");
                return pause_on_refusal(deps, id, reason).await.map(Some);
            }
        }
    }
    store::update(&mut tx, &plan).await?;
    store::append_event(&mut tx, &plan, &plan.actor(), action, Some(Status::Running)).await?;
    tx.commit().await?;
    announce(deps, &plan, action, written.as_ref()).await;
    Ok(Some(plan))
}

async fn pause_on_refusal(
    deps: &RolloutDeps,
    id: Uuid,
    reason: String,
) -> Result<Plan, RolloutError> {
    let actor = format!("rollout:{id}");
    operate(deps, id, &actor, Operation::PauseWith(reason)).await
}

/// Why the plan must pause because someone else changed its flag's environment since the
/// version it last wrote; `None` when nobody did. A change that leaves this environment as
/// it was (another environment's plan, a description edit) is accepted: the plan takes the
/// new version as its own. Locks the flag until the transaction ends, so nothing slips in
/// between this check and the plan's write.
async fn changed_underneath(
    tx: &mut PgConnection,
    plan: &mut Plan,
) -> Result<Option<String>, RolloutError> {
    let Some(current) = flag_store::get_for_update(&mut *tx, &plan.flag).await? else {
        return Ok(Some(format!("paused: flag `{}` is gone", plan.flag)));
    };
    if current.version == plan.flag_version {
        return Ok(None);
    }
    let now = record_from_store(&current).map_err(|e| RolloutError::Internal(e.into()))?;
    // Unknown when retention pruned the audit row: counted as changed.
    let then = flag_store::definition_at(&mut *tx, &plan.flag, plan.flag_version)
        .await?
        .and_then(|definition| serde_json::from_value::<Flag>(definition).ok());
    let same = then.is_some_and(|then| {
        !now.flag.archived
            && then.environment(&plan.environment) == now.flag.environment(&plan.environment)
    });
    if same {
        plan.flag_version = current.version;
        store::update(&mut *tx, plan).await?;
        return Ok(None);
    }
    let own = plan.actor();
    let history = flag_store::history(&mut *tx, &plan.flag, 50).await?;
    let who = history
        .iter()
        .find(|row| row.version > plan.flag_version && row.actor != own)
        .map_or("someone".to_string(), |row| row.actor.clone());
    Ok(Some(format!(
        "paused: {who} changed flag `{}` in `{}` underneath the plan (version {}; the plan last wrote {}); resume to continue from here",
        plan.flag, plan.environment, current.version, plan.flag_version
    )))
}
