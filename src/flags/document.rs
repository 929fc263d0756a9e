//! Reading flag documents (and the other JSON bodies that carry flag parts) into typed values,
//! refusing unknown fields and bad types with every problem named by its dotted path in the
//! body (`type`, `rules[0].constraints[0].operator`), the way [`validate`](super::validate)
//! names fields. Pure: the caller hands in an already parsed JSON value.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Flag;
use crate::event::FieldError;

/// A document that does not fit its type: each bad field, named.
#[derive(Debug, thiserror::Error)]
#[error("{} invalid field(s)", .0.len())]
pub struct InvalidFields(pub Vec<FieldError>);

/// Parses a flag document from a request body, refusing unknown fields and bad types naming
/// the field.
pub fn parse_flag(document: Value) -> Result<Flag, InvalidFields> {
    parse_body(document)
}

/// Parses a request body, refusing unknown fields and bad types naming the field by its
/// dotted path.
pub fn parse_body<T: DeserializeOwned>(document: Value) -> Result<T, InvalidFields> {
    serde_path_to_error::deserialize(document).map_err(|e| {
        InvalidFields(vec![FieldError {
            index: None,
            field: field_of(&e),
            message: e.inner().to_string(),
        }])
    })
}

/// The path of the field a serde error is about. An unknown or missing field is reported at
/// the object that holds it, so its name (between backticks in the message) completes the path.
fn field_of(error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = error.path().to_string();
    let path = if path == "." { String::new() } else { path };
    let message = error.inner().to_string();
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix)?.split('`').next());
    match named {
        Some(name) if !path.ends_with(name) => {
            if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}.{name}")
            }
        }
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::flags::Rule;

    fn field(result: Result<impl Sized, InvalidFields>) -> String {
        match result {
            Err(InvalidFields(errors)) => errors[0].field.clone(),
            Ok(_) => panic!("expected a validation error"),
        }
    }

    #[test]
    fn shape_errors_name_the_field_by_its_path() {
        let flag = |doc| field(parse_flag(doc));
        assert_eq!(flag(json!({"key": "f", "type": "float"})), "type");
        assert_eq!(
            flag(json!({"key": "f", "type": "boolean", "colour": 1})),
            "colour"
        );
        assert_eq!(flag(json!({"type": "boolean"})), "key");
        assert_eq!(
            flag(json!({"key": "f", "type": "boolean",
                        "environments": {"production": {"enabled": "yes"}}})),
            "environments.production.enabled"
        );
        assert_eq!(
            flag(json!({"key": "f", "type": "boolean",
                        "environments": {"production": {"enabeld": true}}})),
            "environments.production.enabeld"
        );
        let rules = json!([{"variant": "on",
            "constraints": [{"attribute": "a", "operator": "greater", "values": ["1"]}]}]);
        assert_eq!(
            field(parse_body::<Vec<Rule>>(rules)),
            "[0].constraints[0].operator"
        );
    }
}
