//! The monitoring event: its wire shape, validation and classification. Pure code, no I/O.
//!
//! Validation follows the legacy `UnifiedMonitoringEvent` (REFERENCE.md section 1) and collects
//! every bad field instead of stopping at the first, so a producer learns all it got wrong at once.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

mod storable;

use storable::check_storable;

/// Longest `event_type`, in characters (the legacy column is varchar(50)).
pub const MAX_EVENT_TYPE_CHARS: usize = 50;
/// Longest `source`, in characters (the legacy column is varchar(100)).
pub const MAX_SOURCE_CHARS: usize = 100;

/// The five legacy categories every event is classified into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Critical,
    Performance,
    UserActivity,
    System,
    Debug,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::Critical,
        Category::Performance,
        Category::UserActivity,
        Category::System,
        Category::Debug,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Critical => "critical",
            Category::Performance => "performance",
            Category::UserActivity => "user_activity",
            Category::System => "system",
            Category::Debug => "debug",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }
}

/// An accepted, stamped event as the hub and every subscriber see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    pub id: Uuid,
    pub event_type: String,
    pub category: Category,
    pub source: String,
    /// RFC 3339, whatever form the producer sent.
    pub timestamp: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

/// One reason an event was refused: which event (by its index in the request) and which field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Position of the event in the request (0 for a single object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(index: Option<usize>, field: &str, message: impl Into<String>) -> Self {
        Self {
            index,
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// Validates one event object and classifies it. `index` names its place in a batch.
///
/// When `now` is used (no timestamp sent), the event is stamped with that instant.
pub fn parse_event(
    value: &Value,
    index: Option<usize>,
    now: DateTime<Utc>,
) -> Result<Event, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(object) = value.as_object() else {
        return Err(vec![FieldError::new(
            index,
            "",
            "an event must be a JSON object",
        )]);
    };

    let event_type = required_string(
        object,
        "event_type",
        MAX_EVENT_TYPE_CHARS,
        index,
        &mut errors,
    );
    let source = required_string(object, "source", MAX_SOURCE_CHARS, index, &mut errors);
    let data = optional_object(object, "data", index, &mut errors);
    let metadata = optional_object(object, "metadata", index, &mut errors);

    let timestamp = match object.get("timestamp") {
        None | Some(Value::Null) => Some(now),
        Some(Value::String(raw)) => match parse_timestamp(raw) {
            Some(ts) => Some(ts),
            None => {
                errors.push(FieldError::new(
                    index,
                    "timestamp",
                    "must be RFC 3339 (2025-10-18T23:00:00+11:00) or `YYYY-MM-DD HH:MM:SS TZ`",
                ));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new(index, "timestamp", "must be a string"));
            None
        }
    };

    let id = match object.get("id") {
        None | Some(Value::Null) => Some(Uuid::now_v7()),
        Some(Value::String(raw)) => match Uuid::parse_str(raw) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(FieldError::new(index, "id", "must be a UUID"));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new(index, "id", "must be a UUID string"));
            None
        }
    };

    check_storable(object, index, &mut errors);

    for key in object.keys() {
        if !matches!(
            key.as_str(),
            "id" | "event_type"
                | "source"
                | "timestamp"
                | "data"
                | "metadata"
                | "category"
                | "sequence_id"
        ) {
            errors.push(FieldError::new(index, key, "unknown field"));
        }
    }

    match (event_type, source, data, metadata, timestamp, id) {
        (Some(event_type), Some(source), Some(data), Some(metadata), Some(timestamp), Some(id))
            if errors.is_empty() =>
        {
            let category = classify(&event_type, &data);
            Ok(Event {
                id,
                event_type,
                category,
                source,
                timestamp,
                data,
                metadata,
            })
        }
        _ => Err(errors),
    }
}

fn required_string(
    object: &Map<String, Value>,
    field: &str,
    max_chars: usize,
    index: Option<usize>,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match object.get(field) {
        None | Some(Value::Null) => {
            errors.push(FieldError::new(index, field, "is required"));
            None
        }
        Some(Value::String(s)) => {
            let chars = s.chars().count();
            if chars == 0 || s.trim().is_empty() {
                errors.push(FieldError::new(index, field, "must not be empty"));
                None
            } else if chars > max_chars {
                errors.push(FieldError::new(
                    index,
                    field,
                    format!("must be at most {max_chars} characters (got {chars})"),
                ));
                None
            } else {
                Some(s.clone())
            }
        }
        Some(_) => {
            errors.push(FieldError::new(index, field, "must be a string"));
            None
        }
    }
}

fn optional_object(
    object: &Map<String, Value>,
    field: &str,
    index: Option<usize>,
    errors: &mut Vec<FieldError>,
) -> Option<Map<String, Value>> {
    match object.get(field) {
        None | Some(Value::Null) => Some(Map::new()),
        Some(Value::Object(map)) => Some(map.clone()),
        Some(_) => {
            errors.push(FieldError::new(index, field, "must be a JSON object"));
            None
        }
    }
}

/// RFC 3339, or the legacy `YYYY-MM-DD HH:MM:SS TZ` form with a zone abbreviation or offset.
pub fn parse_timestamp(raw: &str) -> Option<DateTime<Utc>> {
    // Years 1..=9999 only: the legacy form's `%Y` takes any number of digits, and a year
    // outside Postgres's timestamptz range would make the target refuse the row.
    parse_any_timestamp(raw).filter(|ts| (1..=9999).contains(&ts.year()))
}

fn parse_any_timestamp(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(ts) = DateTime::parse_from_rfc3339(raw) {
        return Some(ts.with_timezone(&Utc));
    }
    let (local, zone) = raw.rsplit_once(' ')?;
    let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S%.f").ok()?;
    let offset = zone_offset(zone)?;
    offset
        .from_local_datetime(&naive)
        .single()
        .map(|ts| ts.with_timezone(&Utc))
}

/// Offsets of the zone abbreviations the legacy producers wrote, plus numeric offsets.
fn zone_offset(zone: &str) -> Option<FixedOffset> {
    const HOUR: i32 = 3600;
    let seconds = match zone.to_ascii_uppercase().as_str() {
        "UTC" | "GMT" | "Z" => 0,
        "AEDT" => 11 * HOUR,
        "AEST" => 10 * HOUR,
        "ACDT" => 10 * HOUR + 1800,
        "ACST" => 9 * HOUR + 1800,
        "AWST" => 8 * HOUR,
        "NZDT" => 13 * HOUR,
        "NZST" => 12 * HOUR,
        "BST" => HOUR,
        "CET" => HOUR,
        "CEST" => 2 * HOUR,
        "EET" => 2 * HOUR,
        "EEST" => 3 * HOUR,
        "IST" => 5 * HOUR + 1800,
        "JST" => 9 * HOUR,
        "EST" => -5 * HOUR,
        "EDT" => -4 * HOUR,
        "CST" => -6 * HOUR,
        "CDT" => -5 * HOUR,
        "MST" => -7 * HOUR,
        "MDT" => -6 * HOUR,
        "PST" => -8 * HOUR,
        "PDT" => -7 * HOUR,
        numeric => return parse_numeric_offset(numeric),
    };
    FixedOffset::east_opt(seconds)
}

fn parse_numeric_offset(raw: &str) -> Option<FixedOffset> {
    let (sign, rest) = match raw.as_bytes().first()? {
        b'+' => (1, &raw[1..]),
        b'-' => (-1, &raw[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// The legacy classification: exact event types first, then keywords in the type, then keys
/// in `data`, else `system`.
pub fn classify(event_type: &str, data: &Map<String, Value>) -> Category {
    let exact = match event_type {
        "health_check" | "circuit_breaker_open" | "circuit_breaker_close" | "error" | "failure" => {
            Some(Category::Critical)
        }
        "cache_metrics" | "semaphore_metrics" | "response_time" | "latency" => {
            Some(Category::Performance)
        }
        "session_metrics" | "user_activity" | "session_start" | "session_end" => {
            Some(Category::UserActivity)
        }
        "connection_status" | "websocket_health" | "initial_stats" | "stats"
        | "export_complete" => Some(Category::System),
        "test_event" | "debug" => Some(Category::Debug),
        _ => None,
    };
    if let Some(category) = exact {
        return category;
    }
    let lower = event_type.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if has(&["error", "fail", "critical", "alert", "timeout", "exception"]) {
        Category::Critical
    } else if has(&["cache", "metric", "performance", "latency"]) {
        Category::Performance
    } else if has(&["session", "user", "activity"]) {
        Category::UserActivity
    } else if has(&["test", "debug", "dev"]) {
        Category::Debug
    } else if data.contains_key("error") || data.contains_key("exception") {
        Category::Critical
    } else if data.contains_key("metrics") || data.contains_key("performance") {
        Category::Performance
    } else {
        Category::System
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn classification_follows_the_legacy_table() {
        let empty = Map::new();
        let cases = [
            ("health_check", Category::Critical),
            ("cache_metrics", Category::Performance),
            ("session_end", Category::UserActivity),
            ("export_complete", Category::System),
            ("test_event", Category::Debug),
            ("db_timeout", Category::Critical),
            ("redis_latency_p99", Category::Performance),
            ("user_login", Category::UserActivity),
            ("dev_probe", Category::Debug),
            ("something_else", Category::System),
        ];
        for (event_type, expected) in cases {
            assert_eq!(classify(event_type, &empty), expected, "{event_type}");
        }
    }

    #[test]
    fn classification_falls_back_to_data_keys() {
        let with_error = json!({"error": "boom"}).as_object().unwrap().clone();
        let with_metrics = json!({"metrics": {}}).as_object().unwrap().clone();
        assert_eq!(classify("ping", &with_error), Category::Critical);
        assert_eq!(classify("ping", &with_metrics), Category::Performance);
    }

    #[test]
    fn legacy_timestamp_form_is_accepted_and_normalised_to_utc() {
        let ts = parse_timestamp("2025-10-18 23:00:00 AEDT").unwrap();
        assert_eq!(ts.to_rfc3339(), "2025-10-18T12:00:00+00:00");
        let ts = parse_timestamp("2025-10-18 23:00:00 +0200").unwrap();
        assert_eq!(ts.to_rfc3339(), "2025-10-18T21:00:00+00:00");
        assert!(parse_timestamp("yesterday").is_none());
        assert!(parse_timestamp("2025-10-18 23:00:00 XYZ").is_none());
    }

    #[test]
    fn a_minimal_event_gets_defaults() {
        let event = parse_event(
            &json!({"event_type": "stats", "source": "api"}),
            None,
            now(),
        )
        .unwrap();
        assert_eq!(event.timestamp, now());
        assert!(event.data.is_empty() && event.metadata.is_empty());
        assert_eq!(event.id.get_version_num(), 7);
    }

    #[test]
    fn every_bad_field_is_reported_with_its_index() {
        let bad = json!({
            "event_type": "x".repeat(51),
            "source": "",
            "data": [1],
            "metadata": "no",
            "timestamp": "soon",
            "id": "not-a-uuid",
            "surprise": true
        });
        let errors = parse_event(&bad, Some(3), now()).unwrap_err();
        let mut fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "data",
                "event_type",
                "id",
                "metadata",
                "source",
                "surprise",
                "timestamp"
            ]
        );
        assert!(errors.iter().all(|e| e.index == Some(3)));
    }

    #[test]
    fn a_timestamp_outside_the_years_postgres_holds_is_refused() {
        assert!(parse_timestamp("99999-01-01 00:00:00 UTC").is_none());
        assert!(parse_timestamp("0000-01-01T00:00:00Z").is_none());
        assert!(parse_timestamp("9999-12-31T00:00:00Z").is_some());
    }

    #[test]
    fn length_limits_count_characters_not_bytes() {
        let ok = json!({"event_type": "é".repeat(50), "source": "s"});
        assert!(parse_event(&ok, None, now()).is_ok());
        let missing = parse_event(&json!({"source": "s"}), None, now()).unwrap_err();
        assert_eq!(missing[0].field, "event_type");
    }
}
