//! What the Realtime table cannot store, refused at ingest: one such row would make the target
//! refuse its whole batch (docs/architecture.md invariant 2), so it is named to the producer
//! instead. Pure code.

use serde_json::{Map, Value};

use super::FieldError;

/// Refuses what the Realtime table cannot store, wherever it is in the event: Postgres `text`
/// and `jsonb` cannot hold the NUL character (`\u0000`, SQLSTATE 22P05 / 22021), and one such
/// row would make the target refuse its whole batch. Each bad place is named by its path
/// (`data.items[2].name`, or the key itself when a key holds it). Numbers need no check:
/// serde_json refuses what f64 cannot hold, and jsonb's numeric holds every f64.
pub(super) fn check_storable(
    object: &Map<String, Value>,
    index: Option<usize>,
    errors: &mut Vec<FieldError>,
) {
    for (key, value) in object {
        let mut path = printable(key);
        if key.contains('\0') {
            errors.push(FieldError::new(index, &path, NUL_MESSAGE));
        }
        find_nul(value, &mut path, index, errors);
    }
}

const NUL_MESSAGE: &str = "must not contain the NUL character (\\u0000): Postgres cannot store it";

/// The most NUL errors one event reports (a hostile event could otherwise hold thousands).
const MAX_NUL_ERRORS: usize = 20;

fn find_nul(value: &Value, path: &mut String, index: Option<usize>, errors: &mut Vec<FieldError>) {
    if errors.len() >= MAX_NUL_ERRORS {
        return;
    }
    match value {
        Value::String(s) if s.contains('\0') => {
            errors.push(FieldError::new(index, path, NUL_MESSAGE));
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                find_nul(item, path, index, errors);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                path.push('.');
                path.push_str(&printable(key));
                if key.contains('\0') {
                    errors.push(FieldError::new(index, path, NUL_MESSAGE));
                }
                find_nul(item, path, index, errors);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// A key as a field path shows it: a NUL written as `\\u0000`, not sent raw.
fn printable(key: &str) -> String {
    key.replace('\0', "\\u0000")
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use crate::event::parse_event;

    #[test]
    fn a_nul_anywhere_is_refused_with_its_path() {
        let bad = json!({
            "event_type": "a\u{0}b",
            "source": "s",
            "data": {"s": "x\u{0}", "list": [1, "\u{0}"], "k\u{0}": 1},
            "metadata": {"nested": {"deep": "\u{0}"}}
        });
        let errors = parse_event(
            &bad,
            Some(2),
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        )
        .unwrap_err();
        let mut fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "data.k\\u0000",
                "data.list[1]",
                "data.s",
                "event_type",
                "metadata.nested.deep"
            ]
        );
        assert!(errors.iter().all(|e| e.index == Some(2)));
        assert!(errors.iter().all(|e| e.message.contains("NUL")));
    }
}
