//! OFREP's request body read straight into an [`EvaluationContext`]: the body is
//! `{"context": {"targetingKey": "...", <attributes>...}}`, and only the attributes are kept as
//! JSON values. Parsing the whole body into a `serde_json::Value` tree first (as this did before)
//! allocated the top-level map, its key and the targeting key's map entry per request.
//!
//! The answers are exactly the tree's, errors included (the tests compare the two over many
//! bodies): the same parser reads the same bytes with the same visitor entry points, every
//! value this does not keep is still read as a `Value` (so a number out of range, say, fails
//! the same way), the last of a repeated key wins as it does in a map, and the checks come in
//! the same order once the body has parsed.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::flags::{ErrorCode, EvaluationContext};

/// serde_json (with its `raw_value` feature, on in this crate) reads a map whose first key is
/// this as a raw value: `Value` then parses the string that follows as the JSON in its place.
/// A body using it is left to the tree, which does exactly that.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// The OFREP context as ours: `targetingKey` is the key, `environment` (a string) picks the
/// environment, every other entry is an attribute.
pub(super) fn ofrep_context(body: &[u8]) -> Result<EvaluationContext, (ErrorCode, String)> {
    if body.is_empty() {
        return Ok(EvaluationContext::default());
    }
    let raw_value = Cell::new(false);
    let mut reader = serde_json::Deserializer::from_slice(body);
    let parsed = BodySeed(&raw_value)
        .deserialize(&mut reader)
        .and_then(|request| reader.end().map(|()| request));
    if raw_value.get() {
        return tree_context(body);
    }
    match parsed.map_err(parse_error)? {
        // `null` is no body, as the document says (the body is optional).
        Body::Null | Body::Object(Context::Absent | Context::Null) => {
            Ok(EvaluationContext::default())
        }
        Body::NotObject => Err(not_an_object()),
        Body::Object(Context::NotObject) => Err(context_not_an_object()),
        Body::Object(Context::Object {
            targeting_key,
            attributes,
        }) => into_context(targeting_key, attributes),
    }
}

/// The same through a `Value` tree: what this module replaced, kept for the raw-value bodies
/// (and as the reference the tests hold the direct reading to).
pub(super) fn tree_context(body: &[u8]) -> Result<EvaluationContext, (ErrorCode, String)> {
    if body.is_empty() {
        return Ok(EvaluationContext::default());
    }
    // Read as JSON first: serde would take an array for a struct.
    let request: Value = serde_json::from_slice(body).map_err(parse_error)?;
    let context = match request {
        Value::Null => None,
        Value::Object(mut fields) => fields.remove("context"),
        _ => return Err(not_an_object()),
    };
    let mut attributes = match context {
        None | Some(Value::Null) => return Ok(EvaluationContext::default()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(context_not_an_object()),
    };
    let targeting_key = attributes.remove("targetingKey");
    into_context(targeting_key, attributes)
}

fn into_context(
    targeting_key: Option<Value>,
    attributes: Map<String, Value>,
) -> Result<EvaluationContext, (ErrorCode, String)> {
    let targeting_key = match targeting_key {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) => Some(key),
        Some(_) => {
            return Err((
                ErrorCode::InvalidContext,
                "`targetingKey` must be a string".into(),
            ));
        }
    };
    let environment = match attributes.get("environment") {
        Some(Value::String(env)) => Some(env.clone()),
        _ => None,
    };
    Ok(EvaluationContext {
        targeting_key,
        environment,
        attributes,
    })
}

fn parse_error(e: serde_json::Error) -> (ErrorCode, String) {
    (
        ErrorCode::ParseError,
        format!("the body is not an OFREP request: {e}"),
    )
}

fn not_an_object() -> (ErrorCode, String) {
    (
        ErrorCode::ParseError,
        "the body is not an OFREP request: it must be a JSON object".into(),
    )
}

fn context_not_an_object() -> (ErrorCode, String) {
    (
        ErrorCode::InvalidContext,
        "`context` must be an object".into(),
    )
}

/// The body as read, before any check (a check fails only once the whole body has parsed).
enum Body {
    Null,
    Object(Context),
    NotObject,
}

/// The body's `context` member as read.
enum Context {
    Absent,
    Null,
    Object {
        targeting_key: Option<Value>,
        attributes: Map<String, Value>,
    },
    NotObject,
}

/// Reads a body; sets the flag on a raw-value key.
struct BodySeed<'a>(&'a Cell<bool>);

/// Reads the value of `context`; sets the flag on a raw-value key.
struct ContextSeed<'a>(&'a Cell<bool>);

/// A map member's key, classified without a copy unless it is kept (an attribute's name).
enum Member {
    Context,
    TargetingKey,
    RawValue,
    Other(Option<String>),
}

/// Reads a key; `keep` copies the keys other than the known ones (the context's attributes).
struct KeySeed {
    keep: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Member;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Member, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Member;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Member, E> {
        Ok(match key {
            RAW_VALUE_TOKEN => Member::RawValue,
            "context" if !self.keep => Member::Context,
            "targetingKey" if self.keep => Member::TargetingKey,
            other => Member::Other(self.keep.then(|| other.to_owned())),
        })
    }
}

/// Reads the rest of an array as `Value`s (the tree would), keeping nothing.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Value>()?.is_some() {}
    Ok(())
}

/// A seed that reads any JSON value with itself as the visitor.
macro_rules! read_any_value_with {
    ($seed:ident, $value:ty) => {
        impl<'de> DeserializeSeed<'de> for $seed<'_> {
            type Value = $value;

            fn deserialize<D: Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<$value, D::Error> {
                deserializer.deserialize_any(self)
            }
        }
    };
}

/// The visitor methods for what is not a map: `null` is `$null`, any other scalar or an array
/// (read through) is `$other`.
macro_rules! not_a_map {
    ($null:expr, $other:expr) => {
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($null)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            drain_seq(seq).map(|()| $other)
        }
    };
}

read_any_value_with!(BodySeed, Body);

impl<'de> Visitor<'de> for BodySeed<'_> {
    type Value = Body;

    not_a_map!(Body::Null, Body::NotObject);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
        let mut context = Context::Absent;
        while let Some(key) = map.next_key_seed(KeySeed { keep: false })? {
            match key {
                Member::Context => context = map.next_value_seed(ContextSeed(self.0))?,
                Member::RawValue => {
                    self.0.set(true);
                    map.next_value::<Value>()?;
                }
                Member::TargetingKey | Member::Other(_) => {
                    map.next_value::<Value>()?;
                }
            }
        }
        Ok(Body::Object(context))
    }
}

read_any_value_with!(ContextSeed, Context);

impl<'de> Visitor<'de> for ContextSeed<'_> {
    type Value = Context;

    not_a_map!(Context::Null, Context::NotObject);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Context, A::Error> {
        let (mut targeting_key, mut attributes) = (None, Map::new());
        while let Some(key) = map.next_key_seed(KeySeed { keep: true })? {
            match key {
                Member::TargetingKey => targeting_key = Some(map.next_value::<Value>()?),
                Member::Other(Some(name)) => {
                    attributes.insert(name, map.next_value::<Value>()?);
                }
                Member::RawValue => {
                    self.0.set(true);
                    map.next_value::<Value>()?;
                }
                Member::Context | Member::Other(None) => {
                    map.next_value::<Value>()?;
                }
            }
        }
        Ok(Context::Object {
            targeting_key,
            attributes,
        })
    }
}

#[cfg(test)]
#[path = "ofrep_context_tests.rs"]
mod tests;
