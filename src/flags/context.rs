//! The evaluation context: who is asking (the targeting key, e.g. a dashboard's client id),
//! in which environment, with which attributes; and how constraints read an attribute
//! without copying it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// What an evaluation is about. `targetingKey` (the OpenFeature spelling) is accepted as an
/// alias of `targeting_key`; an absent `environment` means the server's default environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluationContext {
    #[serde(
        default,
        alias = "targetingKey",
        skip_serializing_if = "Option::is_none"
    )]
    pub targeting_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Attribute name -> string, number or boolean (other JSON values never match).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
}

/// Whether a constraint's attribute name means the targeting key.
pub(crate) fn is_targeting_key_name(name: &str) -> bool {
    name == "targetingKey" || name == "targeting_key"
}

/// An attribute as constraints see it, borrowed from the context.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AttributeValue<'a> {
    Text(&'a str),
    Number(&'a serde_json::Number),
    Bool(bool),
}

impl EvaluationContext {
    /// A context with just a targeting key.
    pub fn for_key(targeting_key: impl Into<String>) -> Self {
        EvaluationContext {
            targeting_key: Some(targeting_key.into()),
            ..EvaluationContext::default()
        }
    }

    /// Adds an attribute (builder style, for tests and seeds).
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// The key rollouts hash and rules list: the `targeting_key` field, or else a string
    /// attribute `targetingKey` / `targeting_key`. An empty key counts as none.
    pub fn stickiness_key(&self) -> Option<&str> {
        self.targeting_key
            .as_deref()
            .or_else(|| self.text_attribute("targetingKey"))
            .or_else(|| self.text_attribute("targeting_key"))
            .filter(|key| !key.is_empty())
    }

    /// The attribute `name` from `attributes`. Constraints on `targetingKey` / `targeting_key`
    /// read [`stickiness_key`](Self::stickiness_key) instead (see `is_targeting_key_name`).
    pub(crate) fn named_attribute(&self, name: &str) -> Option<AttributeValue<'_>> {
        match self.attributes.get(name)? {
            Value::String(text) => Some(AttributeValue::Text(text)),
            Value::Number(number) => Some(AttributeValue::Number(number)),
            Value::Bool(flag) => Some(AttributeValue::Bool(*flag)),
            _ => None,
        }
    }

    fn text_attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_the_openfeature_spelling_of_the_targeting_key() {
        let ctx: EvaluationContext =
            serde_json::from_value(json!({"targetingKey": "dash-1"})).expect("parses");
        assert_eq!(ctx.stickiness_key(), Some("dash-1"));
    }

    #[test]
    fn refuses_unknown_fields() {
        let parsed = serde_json::from_value::<EvaluationContext>(json!({"user": "x"}));
        assert!(parsed.is_err());
    }

    #[test]
    fn the_targeting_key_may_come_from_the_attributes() {
        let ctx = EvaluationContext::default().with_attribute("targetingKey", "dash-2");
        assert_eq!(ctx.stickiness_key(), Some("dash-2"));
        assert!(is_targeting_key_name("targeting_key") && is_targeting_key_name("targetingKey"));
        assert_eq!(EvaluationContext::for_key("").stickiness_key(), None);
    }

    #[test]
    fn objects_and_nulls_are_not_attributes() {
        let ctx = EvaluationContext::default()
            .with_attribute("o", json!({"a": 1}))
            .with_attribute("n", Value::Null)
            .with_attribute("b", true);
        assert_eq!(ctx.named_attribute("o"), None);
        assert_eq!(ctx.named_attribute("n"), None);
        assert_eq!(ctx.named_attribute("b"), Some(AttributeValue::Bool(true)));
    }
}
