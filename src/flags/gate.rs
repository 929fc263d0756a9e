//! A flag's percentage rollout in one environment, reduced to a gate a hot path asks per key:
//! "is this key inside the rollout?" is one murmur3 over `"{group_id}:{key}"` and a compare,
//! with nothing allocated. The router uses it to dual-write each event of a category by that
//! category flag's own rollout percentage (the event id as targeting key).
//!
//! The gate exists only when nothing but the percentage depends on the key — no pin, a valid
//! definition, no targeting rules, no variant weights — so that asking the gate and evaluating
//! the flag (`eval.rs`) always agree. Anything else is the caller's to evaluate in full.

use serde_json::Value;

use super::compiled::{Body, CompiledFlag};
use super::hash::{ROLLOUT_SEED, normalized_joined};

/// The compiled rollout of one flag in one environment.
#[derive(Debug, Clone)]
pub struct PercentageGate {
    /// The environment is on; off, every key gets `off_value`.
    pub enabled: bool,
    /// Whole percent, 0..=100.
    pub percentage: u32,
    /// What a key inside the rollout gets (the rollout variant's value).
    pub inside_value: Value,
    /// What a key outside gets (the default variant's value).
    pub outside_value: Value,
    /// What every key gets while the environment is off.
    pub off_value: Value,
    /// `"{group_id}:"`, the prefix of every hashed key.
    group_prefix: Box<[u8]>,
}

impl PercentageGate {
    /// A gate of `percentage` hashed under `group_id`, serving `{"enabled": true}` inside and
    /// `{"enabled": false}` outside: a share given whole (a pin, a default) rather than by a flag.
    pub fn share(group_id: &str, percentage: u32) -> Self {
        let on = serde_json::json!({"enabled": true});
        let off = serde_json::json!({"enabled": false});
        PercentageGate {
            enabled: true,
            percentage: percentage.min(100),
            inside_value: on,
            outside_value: off.clone(),
            off_value: off,
            group_prefix: format!("{group_id}:").into_bytes().into_boxed_slice(),
        }
    }

    /// Whether `key` falls inside the rollout: the same test the rollout tier applies.
    pub fn contains(&self, key: &str) -> bool {
        match self.percentage {
            0 => false,
            100.. => true,
            pct => normalized_joined(&self.group_prefix, key, 100, ROLLOUT_SEED) <= pct,
        }
    }

    /// The value `key` evaluates to, as the tiers would answer it.
    pub fn value_for(&self, key: &str) -> &Value {
        if !self.enabled {
            &self.off_value
        } else if self.contains(key) {
            &self.inside_value
        } else {
            &self.outside_value
        }
    }
}

impl CompiledFlag {
    /// The rollout percentage of `environment`, for a valid, unpinned flag.
    pub fn rollout_percentage(&self, environment: &str) -> Option<u32> {
        match (&self.pin, &self.body) {
            (None, Body::Valid(definition)) => {
                Some(definition.environment(environment).rollout.percentage)
            }
            _ => None,
        }
    }

    /// This flag's rollout in `environment` as a [`PercentageGate`], or `None` when more than
    /// the percentage depends on the key (a pin, rules, weights) or the definition is invalid.
    pub fn percentage_gate(&self, environment: &str) -> Option<PercentageGate> {
        if self.pin.is_some() {
            return None;
        }
        let Body::Valid(definition) = &self.body else {
            return None;
        };
        let env = definition.environment(environment);
        if !env.rules.is_empty() || !env.rollout.weighted.is_empty() {
            return None;
        }
        let value = |index: usize| definition.variants.get(index).map(|v| v.value.clone());
        Some(PercentageGate {
            enabled: env.enabled,
            percentage: env.rollout.percentage,
            inside_value: value(env.rollout.variant)?,
            outside_value: value(env.default)?,
            off_value: value(env.off)?,
            group_prefix: env.rollout.group_prefix.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::flags::{EvaluationContext, FlagRecord, Snapshot, hash::in_rollout};

    fn compiled(doc: Value) -> Snapshot {
        let record = FlagRecord {
            flag: serde_json::from_value(doc).unwrap(),
            version: 1,
            updated_at: chrono::Utc::now(),
        };
        Snapshot::compile(1, [&record], &BTreeMap::new())
    }

    fn rollout_flag(percentage: u32, rules: Value) -> Snapshot {
        compiled(
            json!({"key": "broadcast.category.performance", "type": "json",
            "variants": {"off": {"enabled": false}, "on": {"enabled": true}},
            "environments": {"production": {"enabled": true, "off_variant": "off",
                "default_variant": "off", "rules": rules,
                "rollout": {"percentage": percentage, "variant": "on"}}}}),
        )
    }

    #[test]
    fn the_gate_agrees_with_evaluation_and_with_the_unleash_hash_for_every_key() {
        let snapshot = rollout_flag(30, json!([]));
        let flag = snapshot.flag("broadcast.category.performance").unwrap();
        let gate = flag.percentage_gate("production").expect("a plain rollout");
        assert_eq!(gate.percentage, 30);
        let mut inside = 0;
        for i in 0..1000 {
            let key = format!("event-{i}");
            let evaluated = flag.evaluate(&EvaluationContext::for_key(key.as_str()), "production");
            assert_eq!(gate.value_for(&key), &evaluated.value, "{key}");
            assert_eq!(
                gate.contains(&key),
                in_rollout("broadcast.category.performance", &key, 30)
            );
            inside += usize::from(gate.contains(&key));
        }
        assert!((250..350).contains(&inside), "about 30% of 1000: {inside}");
    }

    #[test]
    fn rules_or_an_unknown_environment_shape_leave_no_gate_where_the_key_matters_beyond_the_hash() {
        let snapshot = rollout_flag(30, json!([{"targeting_keys": ["a"], "variant": "on"}]));
        let flag = snapshot.flag("broadcast.category.performance").unwrap();
        assert!(flag.percentage_gate("production").is_none());
        let plain = rollout_flag(0, json!([]));
        let gate = plain
            .flag("broadcast.category.performance")
            .unwrap()
            .percentage_gate("staging")
            .expect("an unconfigured environment is the default one: off");
        assert!(!gate.enabled);
        assert_eq!(gate.value_for("x"), &json!({"enabled": false}));
    }
}
