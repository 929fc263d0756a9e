//! An event as it travels in the stream: the JSON an instance serialized (the `Event`'s own
//! shape), read back into an `Event` by every instance. Only what one switchyard wrote is
//! read here, so a message that does not decode is logged and skipped, never delivered.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::event::{Category, Event};

#[derive(Deserialize)]
struct Wire {
    id: Uuid,
    event_type: String,
    category: String,
    source: String,
    timestamp: DateTime<Utc>,
    data: Map<String, Value>,
    metadata: Map<String, Value>,
}

/// The event in a stream message's payload, or why it is not one.
pub(crate) fn decode(payload: &[u8]) -> Result<Event, String> {
    let wire: Wire = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    let category = Category::parse(&wire.category)
        .ok_or_else(|| format!("unknown category {:?}", wire.category))?;
    Ok(Event {
        id: wire.id,
        event_type: wire.event_type,
        category,
        source: wire.source,
        timestamp: wire.timestamp,
        data: wire.data,
        metadata: wire.metadata,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_event_survives_the_trip_through_the_stream() {
        let value = json!({"event_type": "cpu", "source": "host-1", "data": {"load": 0.5}});
        let event = crate::event::parse_event(&value, None, Utc::now()).unwrap();
        let back = decode(&serde_json::to_vec(&event).unwrap()).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&event).unwrap()
        );
    }

    #[test]
    fn a_payload_that_is_not_an_event_is_refused() {
        assert!(decode(b"{\"id\": 1}").is_err());
        assert!(decode(b"not json").is_err());
    }
}
