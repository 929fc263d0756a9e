//! The environment tier: which boot-time variables pin which flags, and to what value.
//!
//! Precedence, highest first: `SWITCHYARD_FLAG_<KEY>` (the key upper-cased, dots and dashes
//! as underscores), then the legacy names. Among the legacy names for `broadcast.strategy`,
//! `DUAL_WRITE_GLOBAL_OVERRIDE` wins, then `MONITORING_DUAL_MODE`, `MONITORING_USE_REALTIME`,
//! `MONITORING_ADAPTER_TYPE`, and last `MONITORING_USE_ADAPTER=false` (websocket).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{FlagRecord, Pin, ValueType, keys};
use crate::config::{LegacyEnv, parse_bool};
use crate::event::Category;

/// The legacy route of each category: (enabled, percentage, adapters).
pub fn legacy_category_route(category: Category) -> Value {
    let (enabled, percentage, adapters): (bool, u32, &[&str]) = match category {
        Category::Critical => (true, 100, &["websocket", "realtime"]),
        Category::Performance => (true, 50, &["websocket"]),
        Category::UserActivity => (false, 0, &["realtime"]),
        Category::System => (true, 100, &["websocket", "realtime"]),
        Category::Debug => (false, 0, &[]),
    };
    json!({"enabled": enabled, "percentage": percentage, "adapters": adapters})
}

/// The name of the variable that pins `key` by name.
pub fn variable_for_key(key: &str) -> String {
    let mut name = String::from("SWITCHYARD_FLAG_");
    name.extend(key.chars().map(|c| match c {
        '.' | '-' => '_',
        c => c.to_ascii_uppercase(),
    }));
    name
}

/// Every pin the environment sets, given the flags the store holds (for their types), plus
/// a warning for each variable that could not be used.
pub fn resolve(
    legacy: &LegacyEnv,
    flag_env: &BTreeMap<String, String>,
    records: &[FlagRecord],
) -> (BTreeMap<String, Pin>, Vec<String>) {
    let mut pins = legacy_pins(legacy, records);
    let mut warnings = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    for record in records {
        let key = record.flag.key.as_str();
        let variable = variable_for_key(key);
        let Some(raw) = flag_env.get(&variable) else {
            continue;
        };
        used.insert(variable.clone());
        match parse_typed(record.flag.value_type, raw) {
            Some(value) => {
                pins.insert(key.to_string(), Pin::new(variable, value));
            }
            None => warnings.push(format!(
                "{variable}=`{raw}` is not a {:?} value; the pin is ignored",
                record.flag.value_type
            )),
        }
    }
    for variable in flag_env.keys().filter(|v| !used.contains(*v)) {
        warnings.push(format!("{variable} names no known flag; it pins nothing"));
    }
    (pins, warnings)
}

fn parse_typed(value_type: ValueType, raw: &str) -> Option<Value> {
    match value_type {
        ValueType::Boolean => parse_bool(raw).ok().map(Value::Bool),
        ValueType::Number => raw
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        ValueType::String => Some(Value::String(raw.to_string())),
        ValueType::Json => serde_json::from_str(raw).ok(),
    }
}

fn legacy_pins(legacy: &LegacyEnv, records: &[FlagRecord]) -> BTreeMap<String, Pin> {
    let mut pins = BTreeMap::new();
    let strategy = |variable: &str, value: &str| Some(Pin::new(variable, json!(value)));
    let global = legacy
        .global_override
        .as_deref()
        .and_then(|raw| match raw.trim() {
            "websocket_only" => strategy("DUAL_WRITE_GLOBAL_OVERRIDE", "websocket"),
            "realtime_only" => strategy("DUAL_WRITE_GLOBAL_OVERRIDE", "realtime"),
            _ => None,
        });
    let pick = global
        .or_else(|| {
            (legacy.dual_mode == Some(true))
                .then(|| strategy("MONITORING_DUAL_MODE", "dual"))
                .flatten()
        })
        .or_else(|| {
            (legacy.use_realtime == Some(true))
                .then(|| strategy("MONITORING_USE_REALTIME", "realtime"))
                .flatten()
        })
        .or_else(|| {
            legacy
                .adapter_type
                .as_deref()
                .and_then(|raw| match raw.trim() {
                    kind @ ("websocket" | "realtime" | "dual") => {
                        strategy("MONITORING_ADAPTER_TYPE", kind)
                    }
                    _ => None,
                })
        })
        .or_else(|| {
            (legacy.use_adapter == Some(false))
                .then(|| strategy("MONITORING_USE_ADAPTER", "websocket"))
                .flatten()
        });
    if let Some(pin) = pick {
        pins.insert(keys::BROADCAST_STRATEGY.to_string(), pin);
    }
    if let Some(enabled) = legacy.enable_validation {
        pins.insert(
            keys::VALIDATION_ENABLED.into(),
            Pin::new("MONITORING_ENABLE_VALIDATION", json!(enabled)),
        );
    }
    if legacy.circuit_breaker_enabled == Some(false) {
        pins.insert(
            keys::REALTIME_BREAKER_MODE.into(),
            Pin::new("CIRCUIT_BREAKER_ENABLED", json!("disabled")),
        );
    }
    let percentages = [
        (
            Category::Critical,
            legacy.dual_write_critical_percentage,
            "DUAL_WRITE_CRITICAL_PERCENTAGE",
        ),
        (
            Category::Performance,
            legacy.dual_write_performance_percentage,
            "DUAL_WRITE_PERFORMANCE_PERCENTAGE",
        ),
        (
            Category::UserActivity,
            legacy.dual_write_user_activity_percentage,
            "DUAL_WRITE_USER_ACTIVITY_PERCENTAGE",
        ),
        (
            Category::System,
            legacy.dual_write_system_percentage,
            "DUAL_WRITE_SYSTEM_PERCENTAGE",
        ),
        (
            Category::Debug,
            legacy.dual_write_debug_percentage,
            "DUAL_WRITE_DEBUG_PERCENTAGE",
        ),
    ];
    for (category, percentage, variable) in percentages {
        let Some(percentage) = percentage else {
            continue;
        };
        let key = keys::category_route(category);
        // "Its other fields as stored": whether the category is on and its adapters come from
        // the stored flag (on in an environment it configures, and its dual-writing `on`
        // variant; or the `legacy` variant of a flag not yet migrated), the share from the
        // variable.
        let mut route = legacy_category_route(category);
        if let Some(record) = records.iter().find(|r| r.flag.key.as_str() == key) {
            let flag = &record.flag;
            let stored = match flag.variants.get("legacy") {
                Some(legacy) => legacy.clone(),
                None => {
                    let on = flag.environments.values().any(|env| env.enabled);
                    let mut variant = (flag.variants.get("on").cloned())
                        .filter(Value::is_object)
                        .unwrap_or(json!({}));
                    variant["enabled"] = json!(on);
                    variant
                }
            };
            for field in ["enabled", "adapters"] {
                if let Some(value) = stored.get(field) {
                    route[field] = value.clone();
                }
            }
        }
        route["percentage"] = json!(percentage.clamp(0.0, 100.0));
        pins.insert(key, Pin::new(variable, route));
    }
    pins
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_variable_names() {
        assert_eq!(
            variable_for_key("broadcast.strategy"),
            "SWITCHYARD_FLAG_BROADCAST_STRATEGY"
        );
        assert_eq!(variable_for_key("my-flag.v2"), "SWITCHYARD_FLAG_MY_FLAG_V2");
    }

    #[test]
    fn the_global_override_wins_over_the_other_legacy_names() {
        let legacy = LegacyEnv {
            dual_mode: Some(true),
            global_override: Some("realtime_only".into()),
            ..Default::default()
        };
        let (pins, _) = resolve(&legacy, &BTreeMap::new(), &[]);
        let pin = &pins["broadcast.strategy"];
        assert_eq!(pin.value, json!("realtime"));
        assert_eq!(pin.source_variable, "DUAL_WRITE_GLOBAL_OVERRIDE");
    }

    #[test]
    fn dual_mode_pins_the_strategy_and_percentages_pin_their_category() {
        let legacy = LegacyEnv {
            dual_mode: Some(true),
            dual_write_performance_percentage: Some(20.0),
            circuit_breaker_enabled: Some(false),
            ..Default::default()
        };
        let (pins, warnings) = resolve(&legacy, &BTreeMap::new(), &[]);
        assert!(warnings.is_empty());
        assert_eq!(pins["broadcast.strategy"].value, json!("dual"));
        assert_eq!(
            pins["broadcast.category.performance"].value["percentage"],
            json!(20.0)
        );
        assert_eq!(
            pins["broadcast.category.performance"].value["adapters"],
            json!(["websocket"])
        );
        assert_eq!(pins["realtime.breaker.mode"].value, json!("disabled"));
    }

    #[test]
    fn unknown_flag_variables_are_reported() {
        let env = BTreeMap::from([("SWITCHYARD_FLAG_NOPE".to_string(), "1".to_string())]);
        let (pins, warnings) = resolve(&LegacyEnv::default(), &env, &[]);
        assert!(pins.is_empty());
        assert_eq!(warnings.len(), 1);
    }
}
