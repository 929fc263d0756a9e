//! Constraints compiled for evaluation: numeric and semver values parsed once, at snapshot
//! compile time, so matching a context parses only the context's attribute and allocates
//! nothing (a number attribute under a string operator is formatted on the stack).

use std::cmp::Ordering;
use std::fmt::Write as _;

use super::context::{AttributeValue, EvaluationContext, is_targeting_key_name};
use super::environment::{Constraint, Operator};
use super::semver::{OwnedVersion, Version};

/// A constraint ready to match.
#[derive(Debug, Clone)]
pub(crate) struct CompiledConstraint {
    attribute: Box<str>,
    /// Decided once here rather than by comparing names on every evaluation.
    attribute_is_key: bool,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    In(Vec<Box<str>>),
    NotIn(Vec<Box<str>>),
    StartsWith(Vec<Box<str>>),
    EndsWith(Vec<Box<str>>),
    /// Holds when the attribute compares with any value as one of `accepted`.
    Number(Accepts, Vec<f64>),
    Semver(Accepts, Vec<OwnedVersion>),
}

/// The orderings (attribute relative to value) under which an ordered operator holds.
#[derive(Debug, Clone, Copy)]
struct Accepts(&'static [Ordering]);

impl Accepts {
    fn of(operator: Operator) -> Self {
        use Operator::*;
        Accepts(match operator {
            NumEq | SemverEq => &[Ordering::Equal],
            NumGt | SemverGt => &[Ordering::Greater],
            NumGte | SemverGte => &[Ordering::Greater, Ordering::Equal],
            NumLt | SemverLt => &[Ordering::Less],
            NumLte | SemverLte => &[Ordering::Less, Ordering::Equal],
            In | NotIn | StartsWith | EndsWith => &[],
        })
    }

    fn holds(self, ordering: Option<Ordering>) -> bool {
        ordering.is_some_and(|o| self.0.contains(&o))
    }
}

impl CompiledConstraint {
    /// Compiles a constraint. Values that do not parse for a numeric or semver operator are
    /// dropped (validation refuses them before they are stored, so none should be left).
    pub(crate) fn compile(constraint: &Constraint) -> Self {
        let texts = || {
            constraint
                .values
                .iter()
                .map(|v| v.as_str().into())
                .collect()
        };
        let operator = constraint.operator;
        let test = match operator {
            Operator::In => Test::In(texts()),
            Operator::NotIn => Test::NotIn(texts()),
            Operator::StartsWith => Test::StartsWith(texts()),
            Operator::EndsWith => Test::EndsWith(texts()),
            _ if operator.is_numeric() => Test::Number(
                Accepts::of(operator),
                constraint
                    .values
                    .iter()
                    .filter_map(|v| parse_number(v))
                    .collect(),
            ),
            _ => Test::Semver(
                Accepts::of(operator),
                constraint
                    .values
                    .iter()
                    .filter_map(|v| OwnedVersion::parse(v))
                    .collect(),
            ),
        };
        CompiledConstraint {
            attribute: constraint.attribute.as_str().into(),
            attribute_is_key: is_targeting_key_name(&constraint.attribute),
            test,
        }
    }

    pub(crate) fn matches(&self, ctx: &EvaluationContext) -> bool {
        let attribute = if self.attribute_is_key {
            ctx.stickiness_key().map(AttributeValue::Text)
        } else {
            ctx.named_attribute(&self.attribute)
        };
        match attribute {
            Some(attribute) => self.test.holds_for(attribute),
            None => matches!(self.test, Test::NotIn(_)),
        }
    }
}

impl Test {
    fn holds_for(&self, attribute: AttributeValue<'_>) -> bool {
        match self {
            Test::In(values) => with_text(attribute, |t| values.iter().any(|v| **v == *t)),
            Test::NotIn(values) => with_text(attribute, |t| !values.iter().any(|v| **v == *t)),
            Test::StartsWith(values) => {
                with_text(attribute, |t| values.iter().any(|v| t.starts_with(&**v)))
            }
            Test::EndsWith(values) => {
                with_text(attribute, |t| values.iter().any(|v| t.ends_with(&**v)))
            }
            Test::Number(accepts, values) => {
                let number = match attribute {
                    AttributeValue::Number(n) => n.as_f64(),
                    AttributeValue::Text(t) => parse_number(t),
                    AttributeValue::Bool(_) => None,
                };
                number.is_some_and(|n| values.iter().any(|v| accepts.holds(n.partial_cmp(v))))
            }
            Test::Semver(accepts, values) => {
                let AttributeValue::Text(text) = attribute else {
                    return false;
                };
                Version::parse(text).is_some_and(|version| {
                    values
                        .iter()
                        .any(|v| accepts.holds(Some(version.cmp(&v.as_version()))))
                })
            }
        }
    }
}

/// Parses a finite number (what numeric constraint values and text attributes must be).
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Runs `test` on the attribute as text: strings as they are, booleans as `true`/`false`,
/// numbers in their JSON form, formatted into a stack buffer.
fn with_text(attribute: AttributeValue<'_>, test: impl FnOnce(&str) -> bool) -> bool {
    match attribute {
        AttributeValue::Text(text) => test(text),
        AttributeValue::Bool(true) => test("true"),
        AttributeValue::Bool(false) => test("false"),
        AttributeValue::Number(number) => {
            let mut buffer = StackText::new();
            // A JSON number is at most a few dozen characters; a longer one matches nothing.
            write!(buffer, "{number}").is_ok() && test(buffer.as_str())
        }
    }
}

struct StackText {
    bytes: [u8; 48],
    len: usize,
}

impl StackText {
    fn new() -> Self {
        StackText {
            bytes: [0; 48],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let end = self.len + text.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn holds(operator: Operator, values: &[&str], attribute: serde_json::Value) -> bool {
        let constraint = Constraint {
            attribute: "a".into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        let ctx = EvaluationContext::for_key("key-1").with_attribute("a", attribute);
        CompiledConstraint::compile(&constraint).matches(&ctx)
    }

    #[test]
    fn each_operator_holds_and_fails_where_it_should() {
        use Operator::*;
        let cases: &[(Operator, &[&str], serde_json::Value, bool)] = &[
            (In, &["eu", "us"], json!("us"), true),
            (In, &["eu", "us"], json!("US"), false),
            (In, &["5"], json!(5), true),
            (In, &["true"], json!(true), true),
            (NotIn, &["eu", "us"], json!("ap"), true),
            (NotIn, &["eu", "us"], json!("eu"), false),
            (StartsWith, &["dash-", "ops-"], json!("ops-7"), true),
            (StartsWith, &["dash-"], json!("x-dash-"), false),
            (EndsWith, &[".internal"], json!("a.internal"), true),
            (EndsWith, &[".internal"], json!("a.external"), false),
            (NumEq, &["3", "4.5"], json!(4.5), true),
            (NumEq, &["3"], json!("3.0"), true),
            (NumGt, &["10"], json!(10.5), true),
            (NumGt, &["10"], json!(10), false),
            (NumGte, &["10"], json!(10), true),
            (NumLt, &["10"], json!(-1), true),
            (NumLt, &["10"], json!("abc"), false),
            (NumLte, &["10"], json!(10), true),
            (NumLte, &["10"], json!(true), false),
            (SemverEq, &["1.2.3"], json!("v1.2.3"), true),
            (SemverGt, &["1.2.3"], json!("1.10.0"), true),
            (SemverGt, &["1.2.3"], json!("1.2.3-rc.1"), false),
            (SemverGte, &["2.0.0"], json!("2.0.0"), true),
            (SemverLt, &["2.0.0"], json!("2.0.0-beta"), true),
            (SemverLte, &["2.0.0"], json!("2.0.1"), false),
            (SemverLt, &["2.0.0"], json!(1), false),
            (SemverEq, &["1.2.3"], json!("not a version"), false),
        ];
        for (operator, values, attribute, expected) in cases {
            assert_eq!(
                holds(*operator, values, attribute.clone()),
                *expected,
                "{operator:?} {values:?} on {attribute}"
            );
        }
    }

    #[test]
    fn a_missing_attribute_fails_everything_but_not_in() {
        let ctx = EvaluationContext::for_key("k");
        for operator in [
            Operator::In,
            Operator::StartsWith,
            Operator::NumGt,
            Operator::SemverEq,
        ] {
            let constraint = Constraint {
                attribute: "absent".into(),
                operator,
                values: vec!["1".into()],
            };
            assert!(!CompiledConstraint::compile(&constraint).matches(&ctx));
        }
        let not_in = Constraint {
            attribute: "absent".into(),
            operator: Operator::NotIn,
            values: vec!["1".into()],
        };
        assert!(CompiledConstraint::compile(&not_in).matches(&ctx));
    }

    #[test]
    fn the_targeting_key_is_an_attribute() {
        let constraint = Constraint {
            attribute: "targetingKey".into(),
            operator: Operator::StartsWith,
            values: vec!["key-".into()],
        };
        let ctx = EvaluationContext::for_key("key-1");
        assert!(CompiledConstraint::compile(&constraint).matches(&ctx));
    }
}
