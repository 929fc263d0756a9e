//! The hub itself: offsets, bounded history, all-or-nothing resume, fan-out.

use super::*;
use crate::event::parse_event;

fn event(n: usize) -> Event {
    let value = serde_json::json!({"event_type": "stats", "source": format!("s{n}")});
    parse_event(&value, None, chrono::Utc::now()).unwrap()
}

#[test]
fn offsets_increase_by_one_and_history_is_bounded() {
    let hub = Hub::new(3, 16);
    let offsets: Vec<u64> = (0..5).map(|n| hub.publish(event(n))).collect();
    assert_eq!(offsets, [1, 2, 3, 4, 5]);
    let recent: Vec<u64> = hub.recent(10).iter().map(|p| p.offset).collect();
    assert_eq!(recent, [3, 4, 5]);
}

#[test]
fn history_is_bounded_by_bytes_too_and_keeps_the_newest() {
    let one = {
        let hub = Hub::new(100, 16);
        hub.publish(event(0));
        hub.history_held().1
    };
    let limits = HubLimits {
        history_events: 100,
        history_bytes: one * 3 + one / 2,
        ..HubLimits::default()
    };
    let hub = Hub::with_limits(limits, 16);
    for n in 0..10 {
        hub.publish(event(n));
    }
    let (events, bytes) = hub.history_held();
    assert_eq!(events, 3);
    assert!(bytes <= limits.history_bytes, "{bytes} bytes held");
    let recent: Vec<u64> = hub.recent(10).iter().map(|p| p.offset).collect();
    assert_eq!(recent, [8, 9, 10]);
}

#[test]
fn an_event_larger_than_the_byte_budget_is_still_kept_alone() {
    let hub = Hub::with_limits(
        HubLimits {
            history_bytes: 1,
            ..HubLimits::default()
        },
        16,
    );
    hub.publish(event(0));
    hub.publish(event(1));
    assert_eq!(hub.history_held().0, 1);
}

#[test]
fn resume_is_all_or_nothing() {
    let hub = Hub::new(3, 16);
    for n in 0..5 {
        hub.publish(event(n));
    }
    let pos = |offset| Position {
        epoch: hub.epoch().to_string(),
        offset,
    };
    let sub = hub.subscribe(Some(&pos(2)));
    assert!(sub.recovered);
    assert_eq!(
        sub.replay.iter().map(|p| p.offset).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    let gone = hub.subscribe(Some(&pos(1)));
    assert!(!gone.recovered && gone.replay.is_empty());
    let other_epoch = hub.subscribe(Some(&Position {
        epoch: "old".into(),
        offset: 4,
    }));
    assert!(!other_epoch.recovered);
    let at_head = hub.subscribe(Some(&pos(5)));
    assert!(at_head.recovered && at_head.replay.is_empty());
    let future = hub.subscribe(Some(&pos(9)));
    assert!(!future.recovered);
}

#[tokio::test]
async fn a_subscriber_receives_what_is_published_after_it_joined() {
    let hub = Hub::new(10, 16);
    hub.publish(event(0));
    let mut sub = hub.subscribe(None);
    hub.publish(event(1));
    let got = sub.receiver.recv().await.unwrap();
    assert_eq!(got.offset, 2);
    assert!(
        got.frame
            .as_str()
            .starts_with(r#"{"op":"event","offset":2,"event":{"#)
    );
}
