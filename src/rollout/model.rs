//! A guarded rollout plan and the pure rule that moves it: given the plan, the guardrail
//! readings and the time, [`next_step`] says whether to wait, advance a stage, complete, or
//! step back because a guardrail broke. No I/O here; `driver` applies the decision.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::parse::format_hold;

/// One stage: the percentage to hold, and for how long before the next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub percentage: u8,
    /// `None` on a last stage that completes the plan as soon as it is applied.
    pub hold_ms: Option<u64>,
}

impl Stage {
    pub fn hold(&self) -> Option<Duration> {
        self.hold_ms.map(Duration::from_millis)
    }
}

/// What must stay healthy while the plan runs. An absent guardrail is not checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Guardrails {
    /// Breakers (by name) that must be closed (or forced closed, or disabled: letting calls
    /// through).
    #[serde(default)]
    pub breaker_closed: Vec<String>,
    /// The lowest acceptable dual-path consistency, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 100)]
    pub min_consistency: Option<f64>,
    /// The highest acceptable p99 of Realtime writes, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(exclusive_minimum = 0)]
    pub max_realtime_p99_ms: Option<f64>,
}

/// What a breach does: step back one stage (`rollback`), or go to 0% (`abort`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnBreach {
    #[default]
    Rollback,
    Abort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Paused,
    Completed,
    RolledBack,
    Aborted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Completed => "completed",
            Status::RolledBack => "rolled_back",
            Status::Aborted => "aborted",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Status::Running,
            Status::Paused,
            Status::Completed,
            Status::RolledBack,
            Status::Aborted,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }

    /// Running or paused: the plan may still change the flag.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

impl OnBreach {
    pub fn as_str(self) -> &'static str {
        match self {
            OnBreach::Rollback => "rollback",
            OnBreach::Abort => "abort",
        }
    }
}

/// A plan as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub id: Uuid,
    pub flag: String,
    pub environment: String,
    pub stages: Vec<Stage>,
    pub guardrails: Guardrails,
    pub on_breach: OnBreach,
    pub status: Status,
    /// The stage in force; `None` when rolled back to the flag's percentage before the plan.
    pub stage: Option<usize>,
    pub percentage: u8,
    pub initial_percentage: u8,
    pub stage_since: DateTime<Utc>,
    pub flag_version: i64,
    pub reason: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Plan {
    /// The actor its flag writes are audited under.
    pub fn actor(&self) -> String {
        format!("rollout:{}", self.id)
    }

    /// When a running plan's current hold ends.
    pub fn next_step_at(&self) -> Option<DateTime<Utc>> {
        if self.status != Status::Running {
            return None;
        }
        let hold = self.stages.get(self.stage?)?.hold()?;
        // Checked: a hold stored before holds were bounded must not panic the driver.
        self.stage_since
            .checked_add_signed(chrono::Duration::from_std(hold).ok()?)
            .or(Some(DateTime::<Utc>::MAX_UTC))
    }

    fn describe(&self, stage: Option<usize>) -> String {
        match stage {
            Some(i) => format!("stage {} ({}%)", i + 1, self.stages[i].percentage),
            None => format!(
                "the percentage before the plan ({}%)",
                self.initial_percentage
            ),
        }
    }
}

/// How one guardrail reads now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Ok,
    Breached,
    /// No reading: neither breaches nor blocks.
    NoData,
}

/// A guardrail, its limit, what it reads now and whether that is healthy.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GuardrailReading {
    /// `breaker_closed:<name>`, `min_consistency` or `max_realtime_p99_ms`.
    pub guardrail: String,
    /// A number, or `true` for `breaker_closed:<name>`.
    pub limit: Value,
    pub reading: Option<Value>,
    pub health: Health,
}

/// What the plan does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Hold the current stage.
    Wait,
    /// Apply `stage`; the plan completes with it when it is the last and has no hold.
    Advance { stage: usize, completes: bool },
    /// The last stage held its time: done, without another flag write.
    Complete,
    /// A guardrail broke: go to `stage` (`None`: the percentage before the plan) at
    /// `percentage`, ending with `status`.
    Breach {
        stage: Option<usize>,
        percentage: u8,
        status: Status,
        reason: String,
    },
}

/// The next step of a running plan at `now` given `readings`; `Wait` for any other status.
pub fn next_step(plan: &Plan, readings: &[GuardrailReading], now: DateTime<Utc>) -> Step {
    if plan.status != Status::Running {
        return Step::Wait;
    }
    let breached: Vec<String> = readings
        .iter()
        .filter(|r| r.health == Health::Breached)
        .map(|r| {
            let reading = r.reading.as_ref().map_or("none".into(), Value::to_string);
            format!("{} read {reading} (limit {})", r.guardrail, r.limit)
        })
        .collect();
    if !breached.is_empty() {
        let (stage, percentage, status) = match (plan.on_breach, plan.stage) {
            (OnBreach::Abort, _) => (None, 0, Status::Aborted),
            (OnBreach::Rollback, Some(i)) if i > 0 => (
                Some(i - 1),
                plan.stages[i - 1].percentage,
                Status::RolledBack,
            ),
            (OnBreach::Rollback, _) => (None, plan.initial_percentage, Status::RolledBack),
        };
        let to = match status {
            Status::Aborted => "aborted to 0%".to_string(),
            _ => format!("rolled back to {}", plan.describe(stage)),
        };
        let reason = format!("guardrail breached: {}; {to}", breached.join(", "));
        return Step::Breach {
            stage,
            percentage,
            status,
            reason,
        };
    }
    let Some(current) = plan.stage else {
        return Step::Advance {
            stage: 0,
            completes: plan.stages.len() == 1 && plan.stages[0].hold_ms.is_none(),
        };
    };
    match plan.next_step_at() {
        Some(at) if now < at => Step::Wait,
        _ if current + 1 < plan.stages.len() => {
            let next = current + 1;
            Step::Advance {
                stage: next,
                completes: next + 1 == plan.stages.len() && plan.stages[next].hold_ms.is_none(),
            }
        }
        _ => Step::Complete,
    }
}

/// The stages as the API shows them: `{"percentage": 10, "hold": "10m"}`.
pub fn stages_view(stages: &[Stage]) -> Vec<Value> {
    stages
        .iter()
        .map(|s| match s.hold() {
            Some(hold) => {
                serde_json::json!({"percentage": s.percentage, "hold": format_hold(hold)})
            }
            None => serde_json::json!({"percentage": s.percentage}),
        })
        .collect()
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
