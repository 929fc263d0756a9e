//! Validation of a flag definition as a whole, before anything is stored: every problem is
//! reported, each under a dotted path to its field (`environments.production.rollout.percentage`,
//! `environments.staging.rules[2].constraints[0].values[1]`), so an API can reject the request
//! whole and name each bad field (docs/architecture.md invariant 5). Shape errors (unknown fields, an
//! unknown value type) are serde's, at parse time.

use super::constraint::parse_number;
use super::environment::{Constraint, EnvironmentConfig, Rollout, Rule, TOTAL_VARIANT_WEIGHT};
use super::key::{MAX_NAME_LEN, is_valid_name};
use super::model::{Flag, Pin, ValueType};
use super::semver::Version;
use crate::event::FieldError;

const NAME_RULE: &str = "must match [a-z0-9][a-z0-9._-]{0,127}";

/// Checks everything serde cannot: names, variants, references, percentages, weights and
/// constraint values.
pub fn validate(flag: &Flag) -> Result<(), Vec<FieldError>> {
    let mut check = Checker {
        flag,
        errors: Vec::new(),
    };
    if !flag.key.is_valid() {
        check.fail("key", NAME_RULE);
    }
    check.variants();
    for (name, config) in &flag.environments {
        let path = format!("environments.{name}");
        if !is_valid_name(name) {
            check.fail(&path, format!("environment names {NAME_RULE}"));
        }
        check.environment(&path, config);
    }
    if check.errors.is_empty() {
        Ok(())
    } else {
        Err(check.errors)
    }
}

/// Checks that a pin's value suits the flag it pins (field `value`).
pub fn validate_pin(flag: &Flag, pin: &Pin) -> Result<(), FieldError> {
    if flag.value_type.admits(&pin.value) {
        Ok(())
    } else {
        Err(field_error(
            "value",
            format!(
                "{} pins `{}` to {}, which is not a {} value",
                pin.source_variable,
                flag.key,
                pin.value,
                type_name(flag.value_type)
            ),
        ))
    }
}

/// Whether `name` may name an environment (the same pattern as flag keys).
pub fn is_valid_environment_name(name: &str) -> bool {
    is_valid_name(name)
}

struct Checker<'a> {
    flag: &'a Flag,
    errors: Vec<FieldError>,
}

impl Checker<'_> {
    fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(field_error(field, message));
    }

    fn variants(&mut self) {
        let flag = self.flag;
        if flag.variants.is_empty() {
            self.fail("variants", "a flag needs at least one variant");
        }
        for (name, value) in &flag.variants {
            let path = format!("variants.{name}");
            if !is_valid_variant_name(name) {
                self.fail(
                    &path,
                    "variant names must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}",
                );
            }
            if !flag.value_type.admits(value) {
                let expected = type_name(flag.value_type);
                self.fail(&path, format!("must be a {expected} value, not {value}"));
            }
        }
    }

    fn variant_ref(&mut self, path: &str, name: &str) {
        if !self.flag.variants.contains_key(name) {
            let known: Vec<&str> = self.flag.variants.keys().map(String::as_str).collect();
            let known = known.join(", ");
            self.fail(
                path,
                format!("unknown variant `{name}` (variants: {known})"),
            );
        }
    }

    fn environment(&mut self, path: &str, config: &EnvironmentConfig) {
        self.variant_ref(&format!("{path}.off_variant"), &config.off_variant);
        self.variant_ref(&format!("{path}.default_variant"), &config.default_variant);
        for (i, rule) in config.rules.iter().enumerate() {
            self.rule(&format!("{path}.rules[{i}]"), rule);
        }
        self.rollout(&format!("{path}.rollout"), &config.rollout);
    }

    fn rule(&mut self, path: &str, rule: &Rule) {
        self.variant_ref(&format!("{path}.variant"), &rule.variant);
        for (i, key) in rule.targeting_keys.iter().enumerate() {
            if key.is_empty() {
                self.fail(&format!("{path}.targeting_keys[{i}]"), "must not be empty");
            }
        }
        for (i, constraint) in rule.constraints.iter().enumerate() {
            self.constraint(&format!("{path}.constraints[{i}]"), constraint);
        }
    }

    fn constraint(&mut self, path: &str, constraint: &Constraint) {
        if constraint.attribute.is_empty() {
            self.fail(&format!("{path}.attribute"), "must name an attribute");
        }
        let operator = constraint.operator;
        let values = &constraint.values;
        if values.is_empty() {
            self.fail(&format!("{path}.values"), "must list at least one value");
        } else if operator.takes_one_value() && values.len() != 1 {
            self.fail(
                &format!("{path}.values"),
                format!(
                    "{operator:?} compares with exactly one value, not {}",
                    values.len()
                ),
            );
        }
        for (i, value) in values.iter().enumerate() {
            if operator.is_numeric() && parse_number(value).is_none() {
                self.fail(
                    &format!("{path}.values[{i}]"),
                    format!("`{value}` is not a number"),
                );
            }
            if operator.is_semver() && Version::parse(value).is_none() {
                self.fail(
                    &format!("{path}.values[{i}]"),
                    format!("`{value}` is not a version (MAJOR.MINOR.PATCH[-PRERELEASE])"),
                );
            }
        }
    }

    fn rollout(&mut self, path: &str, rollout: &Rollout) {
        let percentage = rollout.percentage;
        if !(0.0..=100.0).contains(&percentage) || percentage.fract() != 0.0 {
            self.fail(
                &format!("{path}.percentage"),
                format!("must be a whole number from 0 to 100, not {percentage}"),
            );
        }
        self.variant_ref(&format!("{path}.variant"), &rollout.variant);
        if let Some(group_id) = &rollout.group_id
            && (group_id.is_empty() || group_id.len() > MAX_NAME_LEN)
        {
            self.fail(&format!("{path}.group_id"), "must be 1 to 128 characters");
        }
        if rollout.variant_weights.is_empty() {
            return;
        }
        let mut total = 0u64;
        for (i, weight) in rollout.variant_weights.iter().enumerate() {
            let item = format!("{path}.variant_weights[{i}]");
            self.variant_ref(&format!("{item}.variant"), &weight.variant);
            let repeated = rollout.variant_weights[..i]
                .iter()
                .any(|earlier| earlier.variant == weight.variant);
            if repeated {
                self.fail(&format!("{item}.variant"), "variant listed twice");
            }
            total += u64::from(weight.weight);
        }
        if total != u64::from(TOTAL_VARIANT_WEIGHT) {
            self.fail(
                &format!("{path}.variant_weights"),
                format!("weights must add up to {TOTAL_VARIANT_WEIGHT}, not {total}"),
            );
        }
    }
}

fn is_valid_variant_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.len() <= MAX_NAME_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b))
}

fn type_name(value_type: ValueType) -> &'static str {
    match value_type {
        ValueType::Boolean => "boolean",
        ValueType::String => "string",
        ValueType::Number => "number",
        ValueType::Json => "JSON",
    }
}

fn field_error(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        index: None,
        field: field.to_string(),
        message: message.into(),
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
