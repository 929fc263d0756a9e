//! What a flag does in one environment: the kill switch, the off and default variants, the
//! ordered targeting rules with their attribute constraints, and the percentage rollout.
//!
//! Serde defaults suit a boolean flag (`off` / `on` variants): `{"enabled": true}` alone is a
//! complete environment for one. Flags of other types name their variants explicitly;
//! `validate` reports any name that is not one of the flag's variants.

use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;

/// Variant weights in a rollout add up to this, as in Unleash (so 1 weight = 0.1%).
pub const TOTAL_VARIANT_WEIGHT: u32 = 1000;

/// A flag's behaviour in one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// The kill switch: when false every context gets `off_variant` (reason DISABLED).
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "off")]
    pub off_variant: String,
    /// What a context gets when no rule matches and it is outside the rollout.
    #[serde(default = "off")]
    pub default_variant: String,
    /// Tried in order; the first that matches decides (reason TARGETING_MATCH).
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub rollout: Rollout,
}

impl Default for EnvironmentConfig {
    fn default() -> Self {
        EnvironmentConfig {
            enabled: false,
            off_variant: off(),
            default_variant: off(),
            rules: Vec::new(),
            rollout: Rollout::default(),
        }
    }
}

/// A targeting rule: matches when the targeting key is in `targeting_keys` (if that list is
/// non-empty) and every constraint holds. A rule with neither matches every context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Client ids (targeting keys) this rule applies to; empty means any.
    #[serde(default)]
    pub targeting_keys: Vec<String>,
    #[serde(default)]
    pub constraints: Vec<Constraint>,
    /// The variant a matching context gets.
    pub variant: String,
}

/// A test of one context attribute. `attribute` names a key of the context's attributes, or
/// `targetingKey` / `targeting_key` for the targeting key itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    pub attribute: String,
    pub operator: Operator,
    /// Always strings, also for numeric and semver operators (`["10"]`, `["2.1.0"]`).
    pub values: Vec<String>,
}

/// Constraint operators. `in`, `starts_with`, `ends_with`, `num_eq` and `semver_eq` hold when
/// any of the values matches; `not_in` when none does. The ordered comparisons take exactly
/// one value. String operators are case-sensitive and see numbers in their JSON form and
/// booleans as `true` / `false`. A missing attribute fails every operator except `not_in`,
/// which it passes (it is not in the list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    In,
    NotIn,
    StartsWith,
    EndsWith,
    NumEq,
    NumGt,
    NumGte,
    NumLt,
    NumLte,
    SemverEq,
    SemverGt,
    SemverGte,
    SemverLt,
    SemverLte,
}

impl Operator {
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            Operator::NumEq
                | Operator::NumGt
                | Operator::NumGte
                | Operator::NumLt
                | Operator::NumLte
        )
    }

    pub fn is_semver(self) -> bool {
        matches!(
            self,
            Operator::SemverEq
                | Operator::SemverGt
                | Operator::SemverGte
                | Operator::SemverLt
                | Operator::SemverLte
        )
    }

    /// Ordered comparisons (`*_gt`, `*_gte`, `*_lt`, `*_lte`) compare against exactly one value.
    pub fn takes_one_value(self) -> bool {
        (self.is_numeric() || self.is_semver())
            && !matches!(self, Operator::NumEq | Operator::SemverEq)
    }
}

/// The percentage rollout: a context whose targeting key hashes inside `percentage` gets
/// `variant`, or a variant picked by `variant_weights` when those are given (reason SPLIT);
/// outside, evaluation falls through to the default variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// 0 to 100, a whole number (the Unleash hash has 1% buckets). JSON `25` and `25.0` are
    /// both accepted; a fraction, a negative number or more than 100 fails validation.
    #[serde(default = "hundred", serialize_with = "whole_number")]
    #[schema(minimum = 0, maximum = 100, multiple_of = 1)]
    pub percentage: f64,
    /// What a key inside the percentage gets when there are no weights.
    #[serde(default = "on")]
    pub variant: String,
    /// Optional weighted split of the keys inside the percentage; weights add up to
    /// [`TOTAL_VARIANT_WEIGHT`] (1000).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variant_weights: Vec<VariantWeight>,
    /// Stickiness group: keys hash as `"{group_id}:{targeting_key}"`. Defaults to the flag
    /// key, so two flags with the same group id put a key in the same bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
}

impl Default for Rollout {
    fn default() -> Self {
        Rollout {
            percentage: hundred(),
            variant: on(),
            variant_weights: Vec::new(),
            group_id: None,
        }
    }
}

/// One variant's share of a weighted rollout, in thousandths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantWeight {
    pub variant: String,
    pub weight: u32,
}

fn off() -> String {
    "off".to_string()
}

fn on() -> String {
    "on".to_string()
}

fn hundred() -> f64 {
    100.0
}

/// Writes a whole percentage as an integer (`25`, not `25.0`), so what an operator sent is
/// what they read back.
fn whole_number<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && (0.0..=100.0).contains(value) {
        // A whole number in 0..=100: the cast is exact.
        let whole = *value as u32;
        serializer.serialize_u32(whole)
    } else {
        serializer.serialize_f64(*value)
    }
}
