//! Flag evaluation, pure and lock-free: the tiers of docs/architecture.md in order, over an immutable
//! [`Snapshot`] of compiled flags.
//!
//! 1. **Env pin**: a pinned flag answers the pin's value (STATIC, tier `env`).
//! 2. **Kill switch**: the environment is disabled -> its off variant (DISABLED).
//! 3. **Targeting rules**, first match wins (TARGETING_MATCH).
//! 4. **Percentage rollout**, sticky per targeting key by the Unleash hash: inside -> the
//!    rollout variant, or a weighted variant (SPLIT); outside -> fall through.
//! 5. **Default**: the default variant (DEFAULT).
//!
//! Special cases: a 100% rollout with no weights and no rules answers STATIC (nothing dynamic
//! decided); a rollout that needs the targeting key (a percentage strictly between 0 and 100,
//! or variant weights) and has none answers ERROR / TARGETING_KEY_MISSING with the default
//! variant's value; an environment the flag does not configure behaves as the flag's default
//! environment (off); an unknown or archived key answers ERROR / FLAG_NOT_FOUND; a stored
//! definition that fails validation answers ERROR / GENERAL naming the bad fields.
//!
//! The only allocations per evaluation are the returned [`Evaluation`]'s owned strings (key
//! and variant name) and a clone of a string or JSON value.

use std::collections::BTreeMap;

use serde_json::Value;

use super::compiled::{Body, CompiledEnvironment, CompiledFlag, CompiledRollout, Definition};
use super::context::EvaluationContext;
use super::hash::{ROLLOUT_SEED, normalized_joined, pick_weighted};
use super::model::{FlagRecord, Pin};
use super::outcome::{ErrorCode, Evaluation, Reason, Tier};

/// Every live flag compiled, plus the pins, at one revision of the flag set. Immutable: a
/// change compiles a new snapshot, which replaces this one whole.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    revision: i64,
    /// Sorted by key: looked up by binary search (no hashing of the request's key), and
    /// `evaluate_all` answers in a stable order.
    flags: Vec<CompiledFlag>,
    pins: BTreeMap<String, Pin>,
}

impl Snapshot {
    /// Compiles `records` at `revision`. Archived records are left out (FLAG_NOT_FOUND) unless
    /// pinned: a pin answers whatever the store holds, even when the store is empty (at boot
    /// with the database down, pinned flags still evaluate). A pinned flag with no record
    /// evaluates with version 0.
    pub fn compile<'a>(
        revision: i64,
        records: impl IntoIterator<Item = &'a FlagRecord>,
        pins: &BTreeMap<String, Pin>,
    ) -> Self {
        let mut by_key: BTreeMap<&str, CompiledFlag> = BTreeMap::new();
        for record in records {
            let key = record.flag.key.as_str();
            let pin = pins.get(key);
            if record.flag.archived && pin.is_none() {
                by_key.remove(key);
                continue;
            }
            by_key.insert(key, CompiledFlag::compile(record, pin));
        }
        for (key, pin) in pins {
            by_key
                .entry(key)
                .or_insert_with(|| CompiledFlag::pinned_only(key, pin));
        }
        Snapshot {
            revision,
            flags: by_key.into_values().collect(),
            pins: pins.clone(),
        }
    }

    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The compiled flag `key`, if it evaluates (not archived, or pinned).
    pub fn flag(&self, key: &str) -> Option<&CompiledFlag> {
        self.flags
            .binary_search_by(|flag| flag.key.as_str().cmp(key))
            .ok()
            .map(|i| &self.flags[i])
    }

    /// Every evaluable flag, in key order.
    pub fn flags(&self) -> impl Iterator<Item = &CompiledFlag> {
        self.flags.iter()
    }

    /// The pin on `key`, whether or not the store has the flag.
    pub fn pin(&self, key: &str) -> Option<&Pin> {
        self.pins.get(key)
    }

    pub fn pins(&self) -> &BTreeMap<String, Pin> {
        &self.pins
    }

    /// Evaluates `key` for `ctx` in `ctx.environment`, or `default_environment` when the
    /// context names none.
    pub fn evaluate(
        &self,
        key: &str,
        ctx: &EvaluationContext,
        default_environment: &str,
    ) -> Evaluation {
        match self.flag(key) {
            Some(flag) => flag.evaluate(ctx, environment_of(ctx, default_environment)),
            None => Evaluation::not_found(key),
        }
    }

    /// Evaluates every flag, in key order.
    pub fn evaluate_all(
        &self,
        ctx: &EvaluationContext,
        default_environment: &str,
    ) -> Vec<Evaluation> {
        let environment = environment_of(ctx, default_environment);
        self.flags
            .iter()
            .map(|flag| flag.evaluate(ctx, environment))
            .collect()
    }
}

fn environment_of<'a>(ctx: &'a EvaluationContext, default_environment: &'a str) -> &'a str {
    ctx.environment.as_deref().unwrap_or(default_environment)
}

/// What the rollout tier decided.
enum RolloutOutcome {
    Inside(usize),
    Outside,
    KeyMissing,
}

impl CompiledFlag {
    /// Runs the tiers for `ctx` in `environment`.
    pub fn evaluate(&self, ctx: &EvaluationContext, environment: &str) -> Evaluation {
        if let Some(pinned) = &self.pin {
            return Evaluation {
                key: self.key.clone(),
                value: pinned.pin.value.clone(),
                variant: pinned.variant.clone(),
                reason: Reason::Static,
                tier: Tier::Env,
                version: self.version,
                error_code: None,
                error_details: None,
            };
        }
        let definition = match &self.body {
            Body::Valid(definition) => definition,
            Body::Invalid(details) => return self.error(ErrorCode::General, details, Value::Null),
            Body::PinOnly => return Evaluation::not_found(&self.key),
        };
        self.run_tiers(definition, definition.environment(environment), ctx)
    }

    fn run_tiers(
        &self,
        definition: &Definition,
        env: &CompiledEnvironment,
        ctx: &EvaluationContext,
    ) -> Evaluation {
        if !env.enabled {
            return self.resolved(definition, env.off, Reason::Disabled, Tier::KillSwitch);
        }
        if let Some(rule) = env.rules.iter().find(|rule| rule.matches(ctx)) {
            return self.resolved(
                definition,
                rule.variant,
                Reason::TargetingMatch,
                Tier::Rules,
            );
        }
        match env.rollout.decide(ctx.stickiness_key()) {
            RolloutOutcome::Inside(variant) => {
                let reason = if env.static_rollout {
                    Reason::Static
                } else {
                    Reason::Split
                };
                self.resolved(definition, variant, reason, Tier::Rollout)
            }
            RolloutOutcome::KeyMissing => {
                let mut evaluation = self.error(
                    ErrorCode::TargetingKeyMissing,
                    "this flag's percentage rollout needs a targeting key",
                    Value::Null,
                );
                if let Some(default) = definition.variants.get(env.default) {
                    evaluation.value = default.value.clone();
                    evaluation.variant = Some(default.name.clone());
                }
                evaluation.tier = Tier::Rollout;
                evaluation
            }
            RolloutOutcome::Outside => {
                self.resolved(definition, env.default, Reason::Default, Tier::Default)
            }
        }
    }

    fn resolved(
        &self,
        definition: &Definition,
        variant: usize,
        reason: Reason,
        tier: Tier,
    ) -> Evaluation {
        let Some(variant) = definition.variants.get(variant) else {
            // Compilation resolves every index; this is only a guard against a broken invariant.
            return self.error(
                ErrorCode::General,
                "variant index out of range",
                Value::Null,
            );
        };
        Evaluation {
            key: self.key.clone(),
            value: variant.value.clone(),
            variant: Some(variant.name.clone()),
            reason,
            tier,
            version: self.version,
            error_code: None,
            error_details: None,
        }
    }

    fn error(&self, code: ErrorCode, details: &str, value: Value) -> Evaluation {
        Evaluation::error(&self.key, code, details, value, Tier::Default, self.version)
    }
}

impl CompiledRollout {
    fn decide(&self, key: Option<&str>) -> RolloutOutcome {
        if self.percentage == 0 {
            return RolloutOutcome::Outside;
        }
        let partial = self.percentage < 100;
        let Some(key) = key else {
            return if partial || !self.weighted.is_empty() {
                RolloutOutcome::KeyMissing
            } else {
                RolloutOutcome::Inside(self.variant)
            };
        };
        if partial
            && normalized_joined(&self.group_prefix, key, 100, ROLLOUT_SEED) > self.percentage
        {
            return RolloutOutcome::Outside;
        }
        let weighted = pick_weighted(&self.group_prefix, key, &self.cumulative)
            .and_then(|i| self.weighted.get(i).copied());
        RolloutOutcome::Inside(weighted.unwrap_or(self.variant))
    }
}

#[cfg(test)]
#[path = "eval_tests.rs"]
mod tests;
