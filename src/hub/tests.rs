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

/// The ring keeps each event's frames for a whole turn: a frame whose buffer grew past its
/// length while it was encoded would hold up to twice its bytes (session 7's soak step).
#[test]
fn a_published_event_keeps_its_frames_without_spare_capacity() {
    let capacity = |frame: Utf8Bytes| {
        bytes::Bytes::from(frame)
            .try_into_mut()
            .expect("the only reference")
            .capacity()
    };
    let hub = Hub::new(1, 16);
    let mut spare_before_fitting = 0;
    for size in (0..600).step_by(7) {
        let value = serde_json::json!({"event_type": "stats", "source": "s", "data": {"x": "y".repeat(size)}});
        let parsed = parse_event(&value, None, chrono::Utc::now()).unwrap();
        let unfitted = legacy::frame(&parsed);
        spare_before_fitting += usize::from(unfitted.capacity() > unfitted.len());
        let published = hub.publish_shared(parsed);
        // The next event pushes this one out of the ring (it holds one); nobody subscribes.
        hub.publish(event(size));
        let Published {
            frame,
            legacy_frame,
            ..
        } = Arc::try_unwrap(published).expect("nothing else holds it");
        let (frame_len, legacy_len) = (frame.len(), legacy_frame.len());
        assert_eq!(
            capacity(frame),
            frame_len,
            "event frame, data of {size} bytes"
        );
        assert_eq!(
            capacity(legacy_frame),
            legacy_len,
            "legacy frame, data of {size} bytes"
        );
    }
    assert!(
        spare_before_fitting > 10,
        "the sizes tried never left room to spare ({spare_before_fitting})"
    );
}

/// This test binary's allocator: the system's, counting on each thread what it holds as
/// glibc would (`footprint::chunk`), so a test can see what building something costs.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    use super::footprint::chunk;

    pub struct Counting;

    thread_local! {
        static HELD: Cell<isize> = const { Cell::new(0) };
    }

    fn add(bytes: usize, sign: isize) {
        let _ = HELD.try_with(|held| held.set(held.get() + sign * chunk(bytes) as isize));
    }

    /// What this thread's allocations hold now, from an arbitrary start.
    pub fn held_here() -> isize {
        HELD.with(Cell::get)
    }

    // SAFETY: every call is passed on to `System` unchanged; only counted on the way.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            add(layout.size(), 1);
            // SAFETY: the caller's contract, passed on.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            add(layout.size(), 1);
            // SAFETY: the caller's contract, passed on.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            add(layout.size(), -1);
            // SAFETY: the caller's contract, passed on.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            add(layout.size(), -1);
            add(new_size, 1);
            // SAFETY: the caller's contract, passed on.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;
}

/// The byte budgets of the history ring and the backlog bound memory only if an event's
/// `held_bytes` is what it holds: measured here with the counting allocator, for events from
/// the smallest to the largest the API takes.
#[test]
fn held_bytes_is_what_an_event_holds_in_memory() {
    use serde_json::json;
    let many: serde_json::Map<String, serde_json::Value> = (0..300)
        .map(|i| (format!("metric_{i:03}"), json!(i as f64 * 0.5)))
        .collect();
    let unordered: serde_json::Map<String, serde_json::Value> = (0..60)
        .map(|i| {
            (
                format!("{:x}", (i * 7919) % 1000),
                json!(format!("value {i}")),
            )
        })
        .collect();
    let cases = [
        json!({"event_type": "stats", "source": "s"}),
        json!({"event_type": "cache_metrics", "source": "bench", "data": {"seq": 123456, "pad": "x".repeat(128)}}),
        json!({"event_type": "error", "source": "api", "data": {"message": "timeout", "code": 504, "tags": ["a", "b", "c"]}, "metadata": {"region": "eu", "host": {"name": "web-1", "zone": 3}}}),
        json!({"event_type": "cpu", "source": "node", "data": {"samples": (0..500).collect::<Vec<_>>()}}),
        json!({"event_type": "bulk", "source": "node", "data": many}),
        json!({"event_type": "bulk", "source": "node", "data": unordered}),
        json!({"event_type": "log", "source": "node", "data": {"line": "y".repeat(60_000)}}),
    ];
    let hub = Hub::new(1, 16);
    let now = chrono::Utc::now();
    for (case, value) in cases.into_iter().enumerate() {
        // The same kind of event once before: whatever the hub keeps per kind exists already.
        let earlier = hub.publish_shared(parse_event(&value, None, now).unwrap());
        let before = counting::held_here();
        let published = hub.publish_shared(parse_event(&value, None, now).unwrap());
        // A subscriber's send shares each frame.
        drop((published.frame.clone(), published.legacy_frame.clone()));
        let measured = (counting::held_here() - before) as f64;
        let held = published.held_bytes() as f64;
        assert!(
            (held / measured - 1.0).abs() <= 0.10,
            "case {case}: held_bytes {held} against {measured} measured"
        );
        drop(earlier);
    }
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
