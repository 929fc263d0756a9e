//! Reading a plan request: the body's shape (unknown fields and wrong types name the field),
//! then every rule at once, each bad field named (`stages[1].percentage`, `stages[0].hold`,
//! `guardrails.breaker_closed[0]`), and hold durations like `2s`, `10m`, `1h30m`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::error::RolloutError;
use super::model::{Guardrails, OnBreach, Stage};
use crate::event::FieldError;
use crate::flags::is_valid_environment_name;
use crate::flags::parse_body;

/// The body of `POST /v1/rollouts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,127}$")]
    pub flag: String,
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,127}$")]
    pub environment: String,
    /// Percentages going up; a hold on every stage but the last.
    #[schema(min_items = 1)]
    pub stages: Vec<StageRequest>,
    #[serde(default)]
    pub guardrails: Guardrails,
    #[serde(default)]
    pub on_breach: OnBreach,
    /// Recorded with the plan's creation.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A stage as requested: a whole percentage 0-100 and, on every stage but the last, a hold.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageRequest {
    #[schema(minimum = 0, maximum = 100, multiple_of = 1)]
    pub percentage: f64,
    /// `500ms`, `2s`, `10m`, `1h`, `1h30m`, `1d`: numbers with units, largest first.
    #[serde(default)]
    #[schema(
        pattern = "^([0-9]{1,6}d([0-9]{1,6}h)?([0-9]{1,6}m)?([0-9]{1,6}s)?([0-9]{1,6}ms)?|[0-9]{1,6}h([0-9]{1,6}m)?([0-9]{1,6}s)?([0-9]{1,6}ms)?|[0-9]{1,6}m([0-9]{1,6}s)?([0-9]{1,6}ms)?|[0-9]{1,6}s([0-9]{1,6}ms)?|[0-9]{1,6}ms)$"
    )]
    pub hold: Option<String>,
}

/// A request that passed every rule.
#[derive(Debug)]
pub struct ValidPlan {
    pub flag: String,
    pub environment: String,
    pub stages: Vec<Stage>,
    pub guardrails: Guardrails,
    pub on_breach: OnBreach,
    pub reason: Option<String>,
}

fn error(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        index: None,
        field: field.into(),
        message: message.into(),
    }
}

/// Parses and checks a plan; `known_breaker` says whether a breaker name exists.
pub fn parse_plan(
    body: Value,
    known_breaker: impl Fn(&str) -> bool,
) -> Result<ValidPlan, RolloutError> {
    let request: PlanRequest = parse_body(body)?;
    let mut errors = Vec::new();
    if crate::flags::FlagKey::parse(&request.flag).is_err() {
        errors.push(error(
            "flag",
            format!("`{}` is not a valid flag key", request.flag),
        ));
    }
    if !is_valid_environment_name(&request.environment) {
        errors.push(error(
            "environment",
            format!("`{}` is not a valid environment name", request.environment),
        ));
    }
    if request.stages.is_empty() {
        errors.push(error("stages", "a plan needs at least one stage"));
    }
    let last = request.stages.len().saturating_sub(1);
    let mut stages = Vec::new();
    let mut previous: Option<f64> = None;
    for (i, stage) in request.stages.iter().enumerate() {
        let p = stage.percentage;
        if !(0.0..=100.0).contains(&p) || p.fract() != 0.0 {
            errors.push(error(
                format!("stages[{i}].percentage"),
                "must be a whole number from 0 to 100",
            ));
        } else if previous.is_some_and(|before| p <= before) {
            errors.push(error(
                format!("stages[{i}].percentage"),
                "stages must go up: each percentage above the one before",
            ));
        }
        previous = Some(p);
        let hold = match stage.hold.as_deref().map(parse_hold) {
            Some(Ok(hold)) if hold > MAX_HOLD => {
                errors.push(error(
                    format!("stages[{i}].hold"),
                    format!("must be at most {} (30 days)", format_hold(MAX_HOLD)),
                ));
                None
            }
            Some(Ok(hold)) => Some(hold),
            Some(Err(message)) => {
                errors.push(error(format!("stages[{i}].hold"), message));
                None
            }
            None if i < last => {
                errors.push(error(
                    format!("stages[{i}].hold"),
                    "required on every stage but the last",
                ));
                None
            }
            None => None,
        };
        // A whole number in 0..=100 once the checks above passed.
        let percentage = p.clamp(0.0, 100.0) as u8;
        stages.push(Stage {
            percentage,
            hold_ms: hold.map(|h| u64::try_from(h.as_millis()).unwrap_or(u64::MAX)),
        });
    }
    let guardrails = &request.guardrails;
    for (i, name) in guardrails.breaker_closed.iter().enumerate() {
        if !known_breaker(name) {
            errors.push(error(
                format!("guardrails.breaker_closed[{i}]"),
                format!("there is no breaker `{name}`"),
            ));
        }
    }
    if let Some(floor) = guardrails.min_consistency
        && !(0.0..=100.0).contains(&floor)
    {
        errors.push(error(
            "guardrails.min_consistency",
            "must be a percentage from 0 to 100",
        ));
    }
    if let Some(ceiling) = guardrails.max_realtime_p99_ms
        && !(ceiling > 0.0 && ceiling.is_finite())
    {
        errors.push(error(
            "guardrails.max_realtime_p99_ms",
            "must be a number of milliseconds above 0",
        ));
    }
    if !errors.is_empty() {
        return Err(RolloutError::Invalid(errors));
    }
    Ok(ValidPlan {
        flag: request.flag,
        environment: request.environment,
        stages,
        guardrails: request.guardrails,
        on_breach: request.on_breach,
        reason: request.reason,
    })
}

/// The longest hold a stage may have: 30 days. Longer rollouts are several plans; the bound
/// keeps every instant a plan computes (`stage_since + hold`) far inside the calendar.
pub const MAX_HOLD: Duration = Duration::from_secs(30 * 86_400);

const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// A duration written as numbers with units, largest first: `500ms`, `2s`, `10m`, `1h30m`.
pub fn parse_hold(raw: &str) -> Result<Duration, String> {
    let bad = || format!("`{raw}` is not a duration like `30s`, `10m`, `1h` or `1h30m`");
    let mut rest = raw.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut last_unit = usize::MAX;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let letters = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = UNITS
            .iter()
            .position(|(name, _)| *name == &rest[..letters])
            .ok_or_else(bad)?;
        // Units once each, largest first: `1h30m`, not `30m1h` or `1m1m`.
        if last_unit != usize::MAX && unit <= last_unit {
            return Err(bad());
        }
        last_unit = unit;
        total = number
            .checked_mul(UNITS[unit].1)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(bad)?;
        rest = &rest[letters..];
    }
    Ok(Duration::from_millis(total))
}

/// The shortest spelling [`parse_hold`] reads back as `hold` (to the millisecond).
pub fn format_hold(hold: Duration) -> String {
    let mut ms = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (name, size) in UNITS {
        if ms >= size {
            out.push_str(&format!("{}{name}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
