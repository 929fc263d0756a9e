//! Flags compiled for evaluation: variants resolved to indices, targeting-key lists sorted
//! for binary search, constraint values parsed, the `"{group_id}:"` hash prefix encoded and
//! variant weights turned into cumulative totals. All of it happens once per snapshot, so an
//! evaluation only looks things up. Evaluation itself is in `eval.rs`.

use serde_json::Value;

use super::constraint::CompiledConstraint;
use super::context::EvaluationContext;
use super::environment::{EnvironmentConfig, Rule};
use super::model::{Flag, FlagRecord, Pin};
use super::validate::validate;

/// One flag, ready to evaluate. Built by [`CompiledFlag::compile`] (usually through
/// `Snapshot::compile`).
#[derive(Debug, Clone)]
pub struct CompiledFlag {
    pub(crate) key: String,
    pub(crate) version: i64,
    pub(crate) pin: Option<CompiledPin>,
    pub(crate) body: Body,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledPin {
    pub(crate) pin: Pin,
    /// The variant whose value equals the pin's, if any.
    pub(crate) variant: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) enum Body {
    Valid(Definition),
    /// The stored definition fails validation: evaluations answer ERROR (GENERAL) with this.
    Invalid(String),
    /// Only a pin knows this flag (no record, or an archived one).
    PinOnly,
}

#[derive(Debug, Clone)]
pub(crate) struct Definition {
    pub(crate) variants: Vec<Variant>,
    /// A list, not a map: flags configure a handful of environments, and comparing a few
    /// short names is cheaper than hashing one.
    pub(crate) environments: Vec<(String, CompiledEnvironment)>,
    /// How an environment the flag does not configure behaves.
    pub(crate) absent_environment: CompiledEnvironment,
}

#[derive(Debug, Clone)]
pub(crate) struct Variant {
    pub(crate) name: String,
    pub(crate) value: Value,
}

/// Indices below are positions in `Definition::variants`.
#[derive(Debug, Clone)]
pub(crate) struct CompiledEnvironment {
    pub(crate) enabled: bool,
    pub(crate) off: usize,
    pub(crate) default: usize,
    pub(crate) rules: Vec<CompiledRule>,
    pub(crate) rollout: CompiledRollout,
    /// A 100% rollout without weights or rules: every context gets the same variant and
    /// nothing dynamic decided it, so the reason is STATIC rather than SPLIT.
    pub(crate) static_rollout: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    /// Sorted; empty means any key.
    targeting_keys: Vec<Box<str>>,
    constraints: Vec<CompiledConstraint>,
    pub(crate) variant: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRollout {
    /// Whole percent, 0..=100.
    pub(crate) percentage: u32,
    pub(crate) variant: usize,
    /// Weighted variants (indices) and their running weight totals; empty without weights.
    pub(crate) weighted: Vec<usize>,
    pub(crate) cumulative: Vec<u32>,
    /// `"{group_id}:"` as bytes, the prefix of every hashed key.
    pub(crate) group_prefix: Box<[u8]>,
}

impl CompiledFlag {
    /// Compiles one record with its pin, if any. A record that fails validation still
    /// compiles, into a flag whose evaluations report the problem (ERROR, GENERAL), so one bad
    /// row never takes the whole snapshot down.
    pub fn compile(record: &FlagRecord, pin: Option<&Pin>) -> Self {
        let flag = &record.flag;
        let body = match validate(flag) {
            Ok(()) => Body::Valid(Definition::compile(flag)),
            Err(errors) => {
                let details = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                Body::Invalid(format!("stored definition is invalid: {details}"))
            }
        };
        CompiledFlag {
            key: flag.key.as_str().to_string(),
            version: record.version,
            pin: pin.map(|pin| CompiledPin::new(pin, Some(flag))),
            body,
        }
    }

    /// A flag known only from its pin (the store has no live record of it).
    pub fn pinned_only(key: &str, pin: &Pin) -> Self {
        CompiledFlag {
            key: key.to_string(),
            version: 0,
            pin: Some(CompiledPin::new(pin, None)),
            body: Body::PinOnly,
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn version(&self) -> i64 {
        self.version
    }

    /// The pin that overrides this flag, if any (REST writes to it get a 409 naming
    /// `source_variable`).
    pub fn pin(&self) -> Option<&Pin> {
        self.pin.as_ref().map(|p| &p.pin)
    }
}

impl CompiledPin {
    fn new(pin: &Pin, flag: Option<&Flag>) -> Self {
        let variant = flag.and_then(|flag| {
            flag.variants
                .iter()
                .find(|(_, value)| **value == pin.value)
                .map(|(name, _)| name.clone())
        });
        CompiledPin {
            pin: pin.clone(),
            variant,
        }
    }
}

impl Definition {
    /// The configuration `name` evaluates with: its own, or the flag's default one.
    pub(crate) fn environment(&self, name: &str) -> &CompiledEnvironment {
        self.environments
            .iter()
            .find(|(configured, _)| configured == name)
            .map_or(&self.absent_environment, |(_, config)| config)
    }

    /// Compiles a flag that passed validation (so every variant name resolves).
    fn compile(flag: &Flag) -> Self {
        let variants: Vec<Variant> = flag
            .variants
            .iter()
            .map(|(name, value)| Variant {
                name: name.clone(),
                value: value.clone(),
            })
            .collect();
        let index = |name: &str| {
            variants
                .binary_search_by(|v| v.name.as_str().cmp(name))
                .unwrap_or(0)
        };
        let group = |config: &EnvironmentConfig| {
            let group_id = config.rollout.group_id.as_deref();
            format!("{}:", group_id.unwrap_or(flag.key.as_str())).into_bytes()
        };
        let environment = |config: &EnvironmentConfig| {
            CompiledEnvironment::compile(config, &index, group(config))
        };
        let environments = flag
            .environments
            .iter()
            .map(|(name, config)| (name.clone(), environment(config)))
            .collect();
        let absent_environment = environment(&flag.default_environment());
        Definition {
            variants,
            environments,
            absent_environment,
        }
    }
}

impl CompiledEnvironment {
    fn compile(
        config: &EnvironmentConfig,
        index: &impl Fn(&str) -> usize,
        group_prefix: Vec<u8>,
    ) -> Self {
        let rollout = &config.rollout;
        let mut cumulative = Vec::with_capacity(rollout.variant_weights.len());
        let mut total = 0u32;
        for weight in &rollout.variant_weights {
            total = total.saturating_add(weight.weight);
            cumulative.push(total);
        }
        let compiled_rollout = CompiledRollout {
            // Validation admits whole numbers in 0..=100 only, so the cast is exact.
            percentage: rollout.percentage.clamp(0.0, 100.0) as u32,
            variant: index(&rollout.variant),
            weighted: rollout
                .variant_weights
                .iter()
                .map(|w| index(&w.variant))
                .collect(),
            cumulative,
            group_prefix: group_prefix.into_boxed_slice(),
        };
        CompiledEnvironment {
            enabled: config.enabled,
            off: index(&config.off_variant),
            default: index(&config.default_variant),
            static_rollout: compiled_rollout.percentage == 100
                && compiled_rollout.weighted.is_empty()
                && config.rules.is_empty(),
            rules: config
                .rules
                .iter()
                .map(|rule| CompiledRule::compile(rule, index))
                .collect(),
            rollout: compiled_rollout,
        }
    }
}

impl CompiledRule {
    fn compile(rule: &Rule, index: &impl Fn(&str) -> usize) -> Self {
        let mut targeting_keys: Vec<Box<str>> = rule
            .targeting_keys
            .iter()
            .map(|k| k.as_str().into())
            .collect();
        targeting_keys.sort_unstable();
        targeting_keys.dedup();
        CompiledRule {
            targeting_keys,
            constraints: rule
                .constraints
                .iter()
                .map(CompiledConstraint::compile)
                .collect(),
            variant: index(&rule.variant),
        }
    }

    /// The targeting key is listed (when there is a list) and every constraint holds.
    pub(crate) fn matches(&self, ctx: &EvaluationContext) -> bool {
        let listed = self.targeting_keys.is_empty()
            || ctx.stickiness_key().is_some_and(|key| {
                self.targeting_keys
                    .binary_search_by(|listed| (**listed).cmp(key))
                    .is_ok()
            });
        listed && self.constraints.iter().all(|c| c.matches(ctx))
    }
}
