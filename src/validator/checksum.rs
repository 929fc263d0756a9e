//! Payload checksums over canonical JSON (REFERENCE.md section 1): the fields both paths carry
//! to a dashboard — category, event type, source, timestamp, data, metadata — as one JSON
//! object with its keys sorted at every depth and no whitespace; CRC32 for ordinary
//! categories, SHA-256 for `critical`.
//!
//! The timestamp is normalised to RFC 3339 UTC with microseconds, the precision of a Postgres
//! `timestamptz`, so a row read back from the Realtime table and the frame the WebSocket path
//! sent agree whenever they carry the same instant.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::event::Category;

/// A payload's checksum: CRC32 or SHA-256, by category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    Crc32(u32),
    Sha256([u8; 32]),
}

/// The parts of an event the comparison covers, borrowed from wherever they were read.
pub struct Payload<'a> {
    /// As carried (a row's `category` column may hold anything).
    pub category: &'a str,
    pub event_type: &'a str,
    pub source: &'a str,
    pub timestamp: DateTime<Utc>,
    pub data: Json<'a>,
    pub metadata: Json<'a>,
}

/// A JSON value as either side holds it: an event's object, or a column's value.
#[derive(Clone, Copy)]
pub enum Json<'a> {
    Object(&'a Map<String, Value>),
    Value(&'a Value),
}

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

impl Payload<'_> {
    pub fn checksum(&self) -> Checksum {
        let canonical = self.canonical();
        if self.category == Category::Critical.as_str() {
            Checksum::Sha256(Sha256::digest(canonical.as_bytes()).into())
        } else {
            Checksum::Crc32(CRC32.checksum(canonical.as_bytes()))
        }
    }

    /// The canonical JSON text: sorted keys, no whitespace.
    pub fn canonical(&self) -> String {
        let mut out = String::with_capacity(256);
        let timestamp = self.timestamp.to_rfc3339_opts(SecondsFormat::Micros, true);
        out.push_str(r#"{"category":"#);
        write_string(&mut out, self.category);
        out.push_str(r#","data":"#);
        write_json(&mut out, self.data);
        out.push_str(r#","event_type":"#);
        write_string(&mut out, self.event_type);
        out.push_str(r#","metadata":"#);
        write_json(&mut out, self.metadata);
        out.push_str(r#","source":"#);
        write_string(&mut out, self.source);
        out.push_str(r#","timestamp":"#);
        write_string(&mut out, &timestamp);
        out.push('}');
        out
    }
}

fn write_json(out: &mut String, json: Json<'_>) {
    match json {
        Json::Object(map) => write_object(out, map),
        Json::Value(value) => write_value(out, value),
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push_str(&Value::String(s.to_owned()).to_string());
}

/// Writes `value` with object keys sorted, whatever order the map keeps them in.
fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Object(map) => write_object(out, map),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_object(out: &mut String, map: &Map<String, Value>) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_unstable();
    out.push('{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        write_value(out, &map[key]);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn payload<'a>(category: Category, data: &'a Value, metadata: &'a Value) -> Payload<'a> {
        Payload {
            category: category.as_str(),
            event_type: "cache_metrics",
            source: "api",
            timestamp: Utc.timestamp_opt(1_764_000_000, 123_456_789).unwrap(),
            data: Json::Value(data),
            metadata: Json::Value(metadata),
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_and_has_no_whitespace() {
        let data = json!({"z": 1, "a": {"y": [1, {"d": 2, "c": 3}], "b": "x y"}});
        let metadata = json!({});
        let text = payload(Category::Performance, &data, &metadata).canonical();
        assert_eq!(
            text,
            r#"{"category":"performance","data":{"a":{"b":"x y","y":[1,{"c":3,"d":2}]},"z":1},"event_type":"cache_metrics","metadata":{},"source":"api","timestamp":"2025-11-24T16:00:00.123456Z"}"#
        );
    }

    #[test]
    fn the_same_payload_in_another_key_order_has_the_same_checksum() {
        let a: Value = serde_json::from_str(r#"{"hit": 0.5, "node": {"b": 1, "a": 2}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"node": {"a": 2, "b": 1}, "hit": 0.5}"#).unwrap();
        let m = json!({});
        let left = payload(Category::Performance, &a, &m).checksum();
        assert_eq!(left, payload(Category::Performance, &b, &m).checksum());
        let changed = json!({"hit": 0.6, "node": {"a": 2, "b": 1}});
        assert_ne!(
            left,
            payload(Category::Performance, &changed, &m).checksum()
        );
    }

    #[test]
    fn critical_events_use_sha256_and_the_others_crc32() {
        let (d, m) = (json!({}), json!({}));
        assert!(matches!(
            payload(Category::Critical, &d, &m).checksum(),
            Checksum::Sha256(_)
        ));
        assert!(matches!(
            payload(Category::Debug, &d, &m).checksum(),
            Checksum::Crc32(_)
        ));
    }

    #[test]
    fn crc32_is_the_standard_one() {
        // The check value of CRC-32/ISO-HDLC (zlib's crc32).
        assert_eq!(CRC32.checksum(b"123456789"), 0xCBF4_3926);
    }
}
