//! The legacy dashboard protocol of `GET /ws`: frame shapes and the per-connection-type stats.
//!
//! The legacy dashboard page reads these shapes directly (REFERENCE.md section 1), so they are
//! kept exactly: connection events (`event_type` = `event`) go out flat with the event's data
//! fields at the top level; every other event as `{type, data, timestamp}`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::event::Event;

/// The legacy `ConnectionStats`, aggregated from the connection events producers send.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ConnectionStats {
    pub connection_type: String,
    pub total_events: u64,
    pub total_sent_bytes: u64,
    pub total_received_bytes: u64,
    pub total_errors: u64,
    pub avg_response_time_ms: f64,
    pub last_event_timestamp: Option<String>,
    pub active_connections: u64,
    pub total_bytes: u64,
}

/// Where connection types past the cap add up.
pub const OTHER_CONNECTION_TYPE: &str = "other";

/// Stats per connection type plus the last `session_metrics` data seen. The connection type
/// is the producer's choice, so the map is capped (`SWITCHYARD_LEGACY_CONNECTION_TYPES`):
/// types seen after the cap is reached add up under `other`. Counters saturate, whatever
/// sizes producers report.
#[derive(Debug)]
pub struct LegacyStats {
    inner: Mutex<LegacyInner>,
    max_connection_types: usize,
}

impl Default for LegacyStats {
    fn default() -> Self {
        Self::new(64)
    }
}

#[derive(Debug, Default)]
struct LegacyInner {
    by_type: BTreeMap<String, ConnectionStats>,
    timed_events: BTreeMap<String, u64>,
    session_metrics: Map<String, Value>,
}

impl LegacyStats {
    /// Stats that keep at most `max_connection_types` types apart (plus `other`).
    pub fn new(max_connection_types: usize) -> Self {
        Self {
            inner: Mutex::default(),
            max_connection_types: max_connection_types.max(1),
        }
    }

    /// Folds one event into the stats; only connection events and `session_metrics` count.
    pub fn record(&self, event: &Event) {
        if event.event_type != "event" && event.event_type != "session_metrics" {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if event.event_type == "session_metrics" {
            inner.session_metrics = event.data.clone();
            return;
        }
        let data = &event.data;
        let named = data
            .get("connection_type")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        let connection_type = if inner.by_type.contains_key(named)
            || inner.by_type.len() < self.max_connection_types
        {
            named.to_string()
        } else {
            OTHER_CONNECTION_TYPE.to_string()
        };
        let response_time = data.get("response_time_ms").and_then(Value::as_f64);
        let timed = if response_time.is_some() {
            let n = inner
                .timed_events
                .entry(connection_type.clone())
                .or_default();
            *n = n.saturating_add(1);
            *n
        } else {
            0
        };
        let stats = inner
            .by_type
            .entry(connection_type.clone())
            .or_insert_with(|| ConnectionStats {
                connection_type,
                ..Default::default()
            });
        stats.total_events = stats.total_events.saturating_add(1);
        let size = data
            .get("data_size_bytes")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        match data.get("direction").and_then(Value::as_str) {
            Some("sent" | "send" | "outbound" | "out" | "request") => {
                stats.total_sent_bytes = stats.total_sent_bytes.saturating_add(size)
            }
            Some(_) => stats.total_received_bytes = stats.total_received_bytes.saturating_add(size),
            None => {}
        }
        stats.total_bytes = stats
            .total_sent_bytes
            .saturating_add(stats.total_received_bytes);
        if data
            .get("error")
            .is_some_and(|e| !e.is_null() && e != "" && e != &Value::Bool(false))
        {
            stats.total_errors = stats.total_errors.saturating_add(1);
        }
        if let Some(ms) = response_time.filter(|ms| ms.is_finite()) {
            stats.avg_response_time_ms += (ms - stats.avg_response_time_ms) / timed as f64;
        }
        if let Some(active) = data.get("active_connections").and_then(Value::as_u64) {
            stats.active_connections = active;
        }
        stats.last_event_timestamp = Some(rfc3339(event.timestamp));
    }

    /// `{<connection_type>: ConnectionStats}`, or one type only.
    pub fn stats(&self, connection_type: Option<&str>) -> Value {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let selected = inner
            .by_type
            .iter()
            .filter(|(k, _)| connection_type.is_none_or(|t| t == k.as_str()));
        Value::Object(selected.map(|(k, v)| (k.clone(), json!(v))).collect())
    }

    pub fn session_metrics(&self) -> Value {
        Value::Object(
            self.inner
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .session_metrics
                .clone(),
        )
    }
}

pub fn rfc3339(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The legacy frames of the newest of `events` that fit in `max_events` and `max_bytes`
/// (encoded), oldest first, and whether any were left out. A legacy command answer is one
/// WebSocket message, so without a bound `export` would copy the whole ring into it.
pub fn bounded_frames(
    events: &[std::sync::Arc<super::Published>],
    max_events: usize,
    max_bytes: usize,
) -> (Vec<Value>, bool) {
    let mut frames = Vec::new();
    let mut bytes = 0usize;
    for published in events.iter().rev() {
        let size = published.legacy_frame.len();
        if frames.len() >= max_events || bytes.saturating_add(size) > max_bytes {
            break;
        }
        bytes += size;
        frames.push(frame_value(&published.event));
    }
    let truncated = frames.len() < events.len();
    frames.reverse();
    (frames, truncated)
}

/// The legacy frame for one event.
pub fn frame(event: &Event) -> String {
    frame_value(event).to_string()
}

/// The legacy frame as a JSON value (for `recent_events` lists).
pub fn frame_value(event: &Event) -> Value {
    if event.event_type == "event" {
        let mut flat = Map::with_capacity(event.data.len() + 4);
        flat.insert("type".into(), json!("event"));
        for (k, v) in &event.data {
            flat.insert(k.clone(), v.clone());
        }
        flat.insert("metadata".into(), Value::Object(event.metadata.clone()));
        flat.insert("broadcast_time".into(), json!(rfc3339(Utc::now())));
        flat.insert("timestamp".into(), json!(rfc3339(event.timestamp)));
        Value::Object(flat)
    } else {
        json!({"type": event.event_type, "data": event.data, "timestamp": rfc3339(event.timestamp)})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event;

    fn event(value: Value) -> Event {
        parse_event(&value, None, Utc::now()).unwrap()
    }

    #[test]
    fn connection_events_go_out_flat() {
        let e = event(json!({"event_type": "event", "source": "sdk", "data": {
            "connection_type": "redis", "direction": "sent", "function_name": "get",
            "response_time_ms": 3.5, "error": null, "data_size_bytes": 10}}));
        let frame = frame_value(&e);
        assert_eq!(frame["type"], "event");
        assert_eq!(frame["connection_type"], "redis");
        assert_eq!(frame["function_name"], "get");
        assert!(DateTime::parse_from_rfc3339(frame["broadcast_time"].as_str().unwrap()).is_ok());
    }

    #[test]
    fn other_events_keep_type_data_timestamp() {
        let e = event(
            json!({"event_type": "session_metrics", "source": "s", "data": {"active_sessions": 2}}),
        );
        let frame = frame_value(&e);
        assert_eq!(frame["type"], "session_metrics");
        assert_eq!(frame["data"]["active_sessions"], 2);
    }

    #[test]
    fn stats_aggregate_per_connection_type() {
        let stats = LegacyStats::default();
        for (dir, ms, err) in [
            ("sent", 10.0, Value::Null),
            ("received", 20.0, json!("timeout")),
        ] {
            stats.record(&event(
                json!({"event_type": "event", "source": "s", "data": {
                "connection_type": "supabase", "direction": dir, "data_size_bytes": 100,
                "response_time_ms": ms, "error": err}}),
            ));
        }
        let all = stats.stats(None);
        let s = &all["supabase"];
        assert_eq!(s["total_events"], 2);
        assert_eq!(s["total_sent_bytes"], 100);
        assert_eq!(s["total_received_bytes"], 100);
        assert_eq!(s["total_bytes"], 200);
        assert_eq!(s["total_errors"], 1);
        assert_eq!(s["avg_response_time_ms"], 15.0);
        assert_eq!(stats.stats(Some("redis")), json!({}));
    }

    #[test]
    fn connection_types_past_the_cap_add_up_under_other() {
        let stats = LegacyStats::new(2);
        for kind in ["a", "b", "c", "d", "a"] {
            stats.record(&event(json!({"event_type": "event", "source": "s",
                "data": {"connection_type": kind}})));
        }
        let all = stats.stats(None);
        let mut keys: Vec<_> = all.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["a", "b", "other"]);
        assert_eq!(all["a"]["total_events"], 2);
        assert_eq!(all["other"]["total_events"], 2);
    }

    #[test]
    fn byte_counters_saturate_instead_of_overflowing() {
        let stats = LegacyStats::default();
        for dir in ["sent", "sent", "received"] {
            stats.record(&event(
                json!({"event_type": "event", "source": "s", "data": {
                "connection_type": "x", "direction": dir, "data_size_bytes": u64::MAX}}),
            ));
        }
        let all = stats.stats(None);
        assert_eq!(all["x"]["total_sent_bytes"], u64::MAX);
        assert_eq!(all["x"]["total_bytes"], u64::MAX);
    }

    #[test]
    fn command_answers_keep_the_newest_events_within_the_bounds() {
        let hub = crate::hub::Hub::new(100, 16);
        for n in 0..10 {
            hub.publish(event(
                json!({"event_type": "stats", "source": format!("s{n}")}),
            ));
        }
        let events = hub.recent(usize::MAX);
        let (frames, truncated) = bounded_frames(&events, 4, usize::MAX);
        assert!(truncated);
        assert_eq!(frames.len(), 4);
        let one = events[0].legacy_frame.len();
        let (frames, truncated) = bounded_frames(&events, 100, one * 2 + 1);
        assert!(truncated);
        assert_eq!(frames.len(), 2);
        let (frames, truncated) = bounded_frames(&events, 100, usize::MAX);
        assert!(!truncated);
        assert_eq!(frames.len(), 10);
    }
}
