//! The cursor against an in-memory hub: filter, resume, lag with and without catch-up, drops.

use std::sync::atomic::Ordering;

use super::*;
use crate::event::{Event, parse_event};

fn event(event_type: &str, n: usize) -> Event {
    let value = serde_json::json!({"event_type": event_type, "source": format!("s{n}")});
    parse_event(&value, None, chrono::Utc::now()).unwrap()
}

fn publish(hub: &Hub, count: usize) {
    for n in 0..count {
        hub.publish(event("stats", n));
    }
}

fn offsets(cursor: &mut Cursor) -> Vec<u64> {
    std::iter::from_fn(|| match cursor.try_next()? {
        Delivery::Event(published) => Some(published.offset),
        other => panic!("expected an event, got {other:?}"),
    })
    .collect()
}

fn only(event_type: &str) -> Filter {
    Filter {
        event_types: vec![event_type.into()],
        ..Filter::default()
    }
}

#[tokio::test]
async fn delivers_what_passes_the_filter_in_order() {
    let hub = Hub::new(16, 16);
    let (mut cursor, start) = Cursor::resume(&hub, only("error"), None);
    assert_eq!(
        (start.subscribed.offset, start.subscribed.recovered),
        (0, false)
    );
    hub.publish(event("stats", 0));
    hub.publish(event("error", 1));
    match cursor.next().await {
        Delivery::Event(published) => assert_eq!(published.offset, 2),
        other => panic!("expected the error event, got {other:?}"),
    }
    assert!(cursor.try_next().is_none());
}

#[test]
fn resumes_from_since_with_the_filter_applied() {
    let hub = Hub::new(16, 16);
    hub.publish(event("stats", 0));
    hub.publish(event("error", 1));
    hub.publish(event("stats", 2));
    let since = Position {
        epoch: hub.epoch().to_string(),
        offset: 1,
    };
    let (_, start) = Cursor::resume(&hub, only("stats"), Some(&since));
    assert!(start.subscribed.recovered);
    assert_eq!(start.subscribed.offset, 3);
    let replayed: Vec<u64> = start.replay.iter().map(|p| p.offset).collect();
    assert_eq!(replayed, [3]);
    let gone = Position {
        epoch: "another".into(),
        offset: 1,
    };
    let (_, start) = Cursor::resume(&hub, Filter::default(), Some(&gone));
    assert!(!start.subscribed.recovered && start.replay.is_empty());
}

#[test]
fn a_lagging_subscriber_is_told_then_caught_up_from_history_without_repeats() {
    let hub = Hub::new(100, 2);
    let (mut cursor, _) = Cursor::resume(&hub, Filter::default(), None);
    publish(&hub, 5);
    match cursor.try_next() {
        Some(Delivery::Lagged(lagged)) => assert_eq!((lagged.missed, lagged.offset), (3, 0)),
        other => panic!("expected a lag notice, got {other:?}"),
    }
    assert_eq!(offsets(&mut cursor), [1, 2, 3, 4, 5]);
    assert_eq!(hub.counters().lagged.load(Ordering::Relaxed), 1);
    assert_eq!(
        hub.counters().dropped_subscribers.load(Ordering::Relaxed),
        0
    );
}

#[test]
fn falling_behind_past_history_ends_the_subscription_and_counts_a_drop() {
    let hub = Hub::new(2, 2);
    let (mut cursor, _) = Cursor::resume(&hub, Filter::default(), None);
    publish(&hub, 5);
    assert!(matches!(cursor.try_next(), Some(Delivery::Lagged(_))));
    assert!(matches!(
        cursor.try_next(),
        Some(Delivery::PastHistory { offset: 0 })
    ));
    assert_eq!(hub.counters().lagged.load(Ordering::Relaxed), 1);
    assert_eq!(
        hub.counters().dropped_subscribers.load(Ordering::Relaxed),
        1
    );
}

#[test]
fn a_live_subscriber_skips_what_it_missed() {
    let hub = Hub::new(100, 2);
    let mut cursor = Cursor::live(&hub);
    publish(&hub, 5);
    assert!(matches!(cursor.try_next(), Some(Delivery::Lagged(_))));
    assert_eq!(offsets(&mut cursor), [4, 5]);
    assert_eq!(
        hub.counters().dropped_subscribers.load(Ordering::Relaxed),
        0
    );
}
