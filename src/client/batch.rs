//! The events of a `send` input: parsed with where each came from (`line N`, `index N`), and
//! cut into batches the server takes (at most 1,000 events and 1 MiB per request).

use std::ops::Range;

use serde_json::value::RawValue;

use crate::ingest::{MAX_BATCH, MAX_BODY_BYTES};

/// Room left in a request body for the brackets and commas around the events.
const BODY_MARGIN: usize = 1024;

/// Where an event came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Arguments,
    Line(usize),
    Index(usize),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Arguments => f.write_str("the event"),
            Origin::Line(line) => write!(f, "line {line}"),
            Origin::Index(index) => write!(f, "index {index}"),
        }
    }
}

/// One event to send, as the JSON text it was given in.
#[derive(Debug)]
pub struct Item {
    pub json: Box<RawValue>,
    pub origin: Origin,
}

/// The events in `text`: a JSON array (each named by its index), or a sequence of JSON values
/// such as NDJSON (each named by the line it starts on).
pub fn parse_items(text: &str) -> anyhow::Result<Vec<Item>> {
    if text.trim_start().starts_with('[') {
        let events: Vec<Box<RawValue>> = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("the input is not a valid JSON array: {e}"))?;
        return Ok(events
            .into_iter()
            .enumerate()
            .map(|(index, json)| Item {
                json,
                origin: Origin::Index(index),
            })
            .collect());
    }
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Box<RawValue>>();
    let (mut items, mut line, mut position) = (Vec::new(), 1, 0);
    while let Some(next) = stream.next() {
        let json = next.map_err(|e| anyhow::anyhow!("the input is not valid JSON: {e}"))?;
        let end = stream.byte_offset();
        let skipped = &text[position..end];
        let start = position + (skipped.len() - skipped.trim_start().len());
        line += text[position..start].matches('\n').count();
        items.push(Item {
            json,
            origin: Origin::Line(line),
        });
        line += text[start..end].matches('\n').count();
        position = end;
    }
    Ok(items)
}

/// Consecutive ranges of `items`, each within the server's event count and body size.
pub fn batches(items: &[Item]) -> Vec<Range<usize>> {
    let budget = MAX_BODY_BYTES - BODY_MARGIN;
    let (mut ranges, mut start, mut bytes) = (Vec::new(), 0, 0);
    for (i, item) in items.iter().enumerate() {
        let size = item.json.get().len() + 1;
        if i > start && (i - start == MAX_BATCH || bytes + size > budget) {
            ranges.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < items.len() {
        ranges.push(start..items.len());
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(items: &[Item]) -> Vec<Origin> {
        items.iter().map(|item| item.origin).collect()
    }

    #[test]
    fn ndjson_events_are_named_by_the_line_they_start_on_blank_lines_included() {
        let items = parse_items("{\"a\":1}\n\n{\"b\":2}\n  {\"c\":\n3}\n{\"d\":4}\n").unwrap();
        assert_eq!(
            origins(&items),
            [
                Origin::Line(1),
                Origin::Line(3),
                Origin::Line(4),
                Origin::Line(6)
            ]
        );
        assert_eq!(items[2].json.get(), "{\"c\":\n3}");
    }

    #[test]
    fn a_json_array_names_its_events_by_index() {
        let items = parse_items(" [{\"a\":1}, {\"b\":2}]").unwrap();
        assert_eq!(origins(&items), [Origin::Index(0), Origin::Index(1)]);
    }

    #[test]
    fn a_pretty_printed_single_object_is_one_event() {
        let items = parse_items("{\n  \"event_type\": \"x\",\n  \"source\": \"y\"\n}\n").unwrap();
        assert_eq!(origins(&items), [Origin::Line(1)]);
    }

    #[test]
    fn malformed_json_is_refused_naming_where() {
        let error = parse_items("{\"a\":1}\n{oops}\n").unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
    }

    #[test]
    fn batches_hold_at_most_the_servers_event_count() {
        let text = "{}\n".repeat(2_500);
        let ranges = batches(&parse_items(&text).unwrap());
        assert_eq!(ranges, [0..1_000, 1_000..2_000, 2_000..2_500]);
    }

    #[test]
    fn batches_stay_under_the_servers_body_limit() {
        let big = format!("{{\"data\":{{\"s\":\"{}\"}}}}\n", "x".repeat(300 * 1024));
        let ranges = batches(&parse_items(&big.repeat(7)).unwrap());
        assert_eq!(ranges, [0..3, 3..6, 6..7]);
    }
}
