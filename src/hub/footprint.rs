//! What an event held in memory costs: the bytes the history ring and the Realtime backlog
//! count against their budgets (`SWITCHYARD_HISTORY_BYTES`, `SWITCHYARD_REALTIME_BACKLOG_BYTES`).
//!
//! Why not the encoded size: a parsed event costs several times its JSON. A `data` object of
//! one small field is a B-tree node of eleven slots (632 bytes) before its key and value, and
//! every string is its own allocation with the allocator's header and rounding. Counting the
//! frames (twice the `/v1` frame plus the legacy one) said 958 bytes for an event with a
//! 128-byte payload that holds 1,840, 722 for a small nested one that holds 3,264, and 6,172
//! for an array of 500 numbers that holds 21,152 (the hub's tests measure them): the budgets
//! bounded a third to a half of what they meant to. So this walks the parsed event once at
//! publish and adds what the allocator hands out for each part: an estimate for glibc's
//! malloc on 64-bit Linux (16-byte rounding, an 8-byte header, 32 bytes at least), exact for
//! events whose objects fit one B-tree node, within a few percent for larger objects (node
//! fill depends on key order; it errs high), checked against a counting allocator in the
//! hub's tests.

use std::mem::size_of;

use axum::extract::ws::Utf8Bytes;
use serde_json::{Map, Value};

use super::Published;
use crate::event::Event;

/// Entries a B-tree node holds (`std`'s B = 6).
const NODE_CAPACITY: usize = 11;

/// Keys per node once a map outgrows one node, the one its parent holds for it included: a
/// node full at its right end splits leaving six behind and sending one up, so keys in order
/// make nodes of 6 + 1, keys in any order a little more.
const NODE_FILL: usize = 7;

/// A leaf node: parent pointer, its index and length, then the keys and values.
const LEAF: usize = 16 + NODE_CAPACITY * (size_of::<String>() + size_of::<Value>());

/// An internal node: a leaf plus its children's pointers.
const INTERNAL: usize = LEAF + (NODE_CAPACITY + 1) * size_of::<usize>();

/// The counts and headers of a shared frame once a subscriber holds it: the first clone of
/// a frame turns it into a shared buffer with its own small allocation.
const SHARED_FRAME: usize = 3 * size_of::<usize>();

/// What the allocator takes for a request of `bytes`.
pub fn chunk(bytes: usize) -> usize {
    if bytes == 0 {
        0
    } else {
        (bytes.saturating_add(8 + 15) & !15).max(32)
    }
}

/// What holding a published event costs: the shared allocation, the parsed event (its
/// [`event_bytes`]) and both frames.
pub fn held_bytes(event_bytes: usize, frame: &Utf8Bytes, legacy_frame: &Utf8Bytes) -> usize {
    chunk(2 * size_of::<usize>() + size_of::<Published>())
        + event_bytes
        + frame_bytes(frame)
        + frame_bytes(legacy_frame)
}

fn frame_bytes(frame: &Utf8Bytes) -> usize {
    chunk(frame.len()) + chunk(SHARED_FRAME)
}

/// The heap a parsed event holds (its own size is in [`Published`]'s).
pub fn event_bytes(event: &Event) -> usize {
    chunk(event.event_type.capacity())
        + chunk(event.source.capacity())
        + map_bytes(&event.data)
        + map_bytes(&event.metadata)
}

fn map_bytes(map: &Map<String, Value>) -> usize {
    let nodes = match map.len() {
        0 => 0,
        n if n <= NODE_CAPACITY => chunk(LEAF),
        n => {
            let leaves = n.div_ceil(NODE_FILL);
            let mut internal = 0;
            let mut level = leaves;
            while level > 1 {
                // A level that fits under one node has one parent.
                level = if level <= NODE_CAPACITY + 1 {
                    1
                } else {
                    level.div_ceil(NODE_FILL)
                };
                internal += level;
            }
            leaves * chunk(LEAF) + internal * chunk(INTERNAL)
        }
    };
    map.iter().fold(nodes, |bytes, (key, value)| {
        bytes + chunk(key.capacity()) + value_bytes(value)
    })
}

fn value_bytes(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(text) => chunk(text.capacity()),
        Value::Array(items) => items.iter().fold(
            chunk(items.capacity() * size_of::<Value>()),
            |bytes, item| bytes + value_bytes(item),
        ),
        Value::Object(map) => map_bytes(map),
    }
}

#[cfg(test)]
mod tests {
    use super::chunk;

    #[test]
    fn chunks_are_rounded_as_glibc_does() {
        assert_eq!(chunk(0), 0);
        assert_eq!(chunk(1), 32);
        assert_eq!(chunk(24), 32);
        assert_eq!(chunk(25), 48);
        assert_eq!(chunk(632), 640);
        assert_eq!(chunk(usize::MAX), usize::MAX & !15);
    }
}
