//! The flag definition as stored and as the API exchanges it (JSON, snake_case): the flag, its
//! key, its value type and variants, the store's record around it, and the environment-variable
//! pins. Per-environment configuration lives in `environment.rs`, the key in `key.rs`.
//!
//! Deserializing a flag checks shapes (unknown fields and unknown value types are serde errors)
//! but not meaning: a bad key, an unknown variant or a percentage of 150 parse, so that
//! [`validate`](super::validate::validate) can report every problem at once, each under its
//! field name (docs/architecture.md invariant 5). Code that builds keys from text uses [`FlagKey::parse`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::environment::{EnvironmentConfig, Rollout};
use super::key::FlagKey;

/// What a flag's variants hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    Boolean,
    String,
    Number,
    /// Any JSON value (objects, typically).
    Json,
}

impl ValueType {
    /// Whether `value` is of this type.
    pub fn admits(self, value: &Value) -> bool {
        match self {
            ValueType::Boolean => value.is_boolean(),
            ValueType::String => value.is_string(),
            ValueType::Number => value.is_number(),
            ValueType::Json => true,
        }
    }

    /// The variants a flag of this type gets when it names none: `{"on": true, "off": false}`
    /// for booleans; other types have no sensible default and must name theirs.
    pub fn default_variants(self) -> BTreeMap<String, Value> {
        match self {
            ValueType::Boolean => BTreeMap::from([
                ("on".to_string(), Value::Bool(true)),
                ("off".to_string(), Value::Bool(false)),
            ]),
            _ => BTreeMap::new(),
        }
    }
}

/// A flag definition. `variants` default by type (see [`ValueType::default_variants`]);
/// an environment absent from `environments` behaves as [`Flag::default_environment`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(from = "FlagDocument")]
pub struct Flag {
    pub key: FlagKey,
    pub description: String,
    #[serde(rename = "type")]
    pub value_type: ValueType,
    /// Variant name -> value; rules, rollouts and environments refer to variants by name.
    /// At least one (a boolean flag that names none gets `on` and `off`).
    #[schema(schema_with = variants_schema)]
    pub variants: BTreeMap<String, Value>,
    /// Environment name -> its configuration.
    pub environments: BTreeMap<String, EnvironmentConfig>,
    /// An archived flag is kept for its history but no longer evaluates (FLAG_NOT_FOUND).
    pub archived: bool,
}

/// `variants` in the OpenAPI document: an object of at least one entry, any JSON values.
fn variants_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Object)
        .min_properties(Some(1))
        .property_names(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .pattern(Some("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")),
        ))
        .description(Some(
            "Variant name -> value; rules, rollouts and environments refer to variants by name. \
             At least one (a boolean flag that names none gets `on` and `off`).",
        ))
        .build()
}

/// The input shape of [`Flag`]: what may be omitted and what unknown fields are refused (the
/// request body `POST /v1/flags` and `PUT /v1/flags/{key}` document).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagDocument {
    key: FlagKey,
    #[serde(default)]
    description: String,
    #[serde(rename = "type")]
    value_type: ValueType,
    /// Absent: a boolean flag gets `on` and `off`; other types must name theirs.
    #[serde(default)]
    #[schema(schema_with = variants_schema)]
    variants: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    environments: BTreeMap<String, EnvironmentConfig>,
    #[serde(default)]
    archived: bool,
}

impl From<FlagDocument> for Flag {
    fn from(doc: FlagDocument) -> Self {
        Flag {
            variants: doc
                .variants
                .unwrap_or_else(|| doc.value_type.default_variants()),
            key: doc.key,
            description: doc.description,
            value_type: doc.value_type,
            environments: doc.environments,
            archived: doc.archived,
        }
    }
}

impl Flag {
    /// A flag with the default variants of its type, off in every environment.
    pub fn new(key: FlagKey, value_type: ValueType, description: impl Into<String>) -> Self {
        Flag {
            key,
            description: description.into(),
            value_type,
            variants: value_type.default_variants(),
            environments: BTreeMap::new(),
            archived: false,
        }
    }

    /// How an environment absent from `environments` behaves: disabled; off and default
    /// variant `off`; rollout 100% to `on`. A flag without an `off` (or `on`) variant uses its
    /// first variant (in name order) instead, so the default always names a real variant.
    pub fn default_environment(&self) -> EnvironmentConfig {
        let first = self.variants.keys().next().cloned().unwrap_or_default();
        let named = |name: &str| {
            if self.variants.contains_key(name) {
                name.to_string()
            } else {
                first.clone()
            }
        };
        EnvironmentConfig {
            enabled: false,
            off_variant: named("off"),
            default_variant: named("off"),
            rules: Vec::new(),
            rollout: Rollout {
                variant: named("on"),
                ..Rollout::default()
            },
        }
    }

    /// The configuration `environment` evaluates with: its own, or the default one.
    pub fn environment(&self, environment: &str) -> Cow<'_, EnvironmentConfig> {
        match self.environments.get(environment) {
            Some(config) => Cow::Borrowed(config),
            None => Cow::Owned(self.default_environment()),
        }
    }

    /// The configuration of `environment`, created from the default one if absent: what the
    /// flip, rollout and rules endpoints edit.
    pub fn environment_mut(&mut self, environment: &str) -> &mut EnvironmentConfig {
        if !self.environments.contains_key(environment) {
            let config = self.default_environment();
            self.environments.insert(environment.to_string(), config);
        }
        self.environments
            .get_mut(environment)
            .expect("inserted just above")
    }
}

/// A flag as the store holds it: the definition plus what the store owns. `version` starts at
/// 1 and goes up by one on every write to this flag; the flag set's global `revision` belongs
/// to the snapshot, not to a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FlagRecord {
    #[serde(flatten)]
    pub flag: Flag,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

/// An environment-variable pin (the highest tier): the flag evaluates to `value`, reason
/// STATIC, tier `env`, in every environment and for every context, and refuses REST writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// The variable that pins it, e.g. `MONITORING_DUAL_MODE`, named in the 409.
    pub source_variable: String,
    /// Any JSON value, of the flag's type.
    pub value: Value,
}

impl Pin {
    pub fn new(source_variable: impl Into<String>, value: Value) -> Self {
        Pin {
            source_variable: source_variable.into(),
            value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_record_round_trips_with_its_version_beside_the_flag() {
        let record = FlagRecord {
            flag: Flag::new(FlagKey::parse("f").expect("valid"), ValueType::Boolean, "d"),
            version: 3,
            updated_at: DateTime::from_timestamp(1_700_000_000, 0).expect("valid time"),
        };
        let json = serde_json::to_value(&record).expect("serializes");
        assert_eq!(json["type"], "boolean");
        assert_eq!(json["version"], 3);
        assert_eq!(json["variants"], json!({"off": false, "on": true}));
        let back: FlagRecord = serde_json::from_value(json).expect("parses");
        assert_eq!(back, record);
    }

    #[test]
    fn flags_without_on_and_off_default_to_their_first_variant() {
        let flag: Flag = serde_json::from_value(json!({
            "key": "broadcast.strategy", "type": "string",
            "variants": {"websocket": "websocket", "realtime": "realtime", "dual": "dual"}
        }))
        .expect("parses");
        let env = flag.environment("production");
        assert!(!env.enabled);
        assert_eq!(
            (env.off_variant.as_str(), env.default_variant.as_str()),
            ("dual", "dual")
        );
        assert_eq!(env.rollout.variant, "dual");
        assert_eq!(env.rollout.percentage, 100.0);
    }

    #[test]
    fn environment_mut_starts_from_the_default_environment() {
        let mut flag = Flag::new(FlagKey::parse("f").expect("valid"), ValueType::Boolean, "");
        flag.environment_mut("staging").enabled = true;
        let staging = &flag.environments["staging"];
        assert!(staging.enabled);
        assert_eq!(staging.off_variant, "off");
        assert_eq!(staging.rollout.variant, "on");
    }
}
