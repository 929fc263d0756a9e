//! The tracker's rules with made-up instants.

use std::time::{Duration, Instant};

use uuid::Uuid;

use super::{Discrepancy, Gaps, Held, Tracker};
use crate::event::Category;
use crate::validator::checksum::Checksum;

const WINDOW: Duration = Duration::from_secs(30);
/// Kept at zero so the deadlines below are the order window itself.
const GRACE: Duration = Duration::ZERO;
const A: Checksum = Checksum::Crc32(1);
const B: Checksum = Checksum::Crc32(2);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn both_paths_with_the_same_payload_match_with_their_latencies() {
    let (mut tracker, t0, id) = (
        Tracker::new(10, WINDOW, GRACE),
        Instant::now(),
        Uuid::new_v4(),
    );
    assert!(tracker.expect(id, Category::System, t0));
    assert!(
        tracker
            .saw_websocket(id, Category::System, 1, t0 + ms(2), A)
            .is_none()
    );
    let done = tracker
        .saw_realtime(id, Category::System, 1, t0 + ms(40), A)
        .expect("resolved");
    assert!(done.matched && done.counts_as_expected && done.discrepancies.is_empty());
    assert_eq!(
        (done.websocket_latency, done.realtime_latency),
        (Some(ms(2)), Some(ms(40)))
    );
    assert_eq!(tracker.pending(), 0);
}

#[test]
fn different_checksums_are_a_payload_mismatch() {
    let (mut tracker, t0, id) = (
        Tracker::new(10, WINDOW, GRACE),
        Instant::now(),
        Uuid::new_v4(),
    );
    tracker.expect(id, Category::Critical, t0);
    tracker.saw_realtime(id, Category::Critical, 1, t0 + ms(5), B);
    let done = tracker
        .saw_websocket(id, Category::Critical, 1, t0 + ms(6), A)
        .unwrap();
    assert!(!done.matched);
    assert_eq!(done.discrepancies, vec![Discrepancy::PayloadMismatch]);
}

#[test]
fn past_the_deadline_a_missing_side_is_reported_unless_realtime_is_still_pending() {
    let (mut tracker, t0) = (Tracker::new(10, WINDOW, GRACE), Instant::now());
    let (no_row, no_frame) = (Uuid::new_v4(), Uuid::new_v4());
    tracker.expect(no_row, Category::System, t0);
    tracker.expect(no_frame, Category::System, t0);
    tracker.saw_websocket(no_row, Category::System, 1, t0, A);
    tracker.saw_realtime(no_frame, Category::System, 2, t0, A);
    assert!(
        tracker
            .expire(t0 + ms(29_000), false, Gaps::default())
            .is_empty(),
        "not yet"
    );

    // The backlog still holds events: the one without a row is pending, not missing.
    let done = tracker.expire(t0 + WINDOW, true, Gaps::default());
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id, no_frame);
    assert_eq!(done[0].discrepancies, vec![Discrepancy::MissingInWebsocket]);
    assert_eq!(tracker.pending(), 1);

    let done = tracker.expire(t0 + WINDOW * 2, false, Gaps::default());
    assert_eq!(done[0].id, no_row);
    assert_eq!(done[0].discrepancies, vec![Discrepancy::MissingInRealtime]);
    assert!(done[0].counts_as_expected && !done[0].matched);
}

/// On a shared NATS stream an event may wait in the work queue or with another instance,
/// whatever this instance's backlog holds: above the queue's ack floor it is pending.
#[test]
fn above_the_work_queues_ack_floor_an_event_without_a_row_is_pending() {
    let (mut tracker, t0) = (Tracker::new(10, WINDOW, GRACE), Instant::now());
    let (acked, queued, unseen) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    for id in [acked, queued, unseen] {
        tracker.expect(id, Category::System, t0);
    }
    tracker.saw_websocket(acked, Category::System, 7, t0, A);
    tracker.saw_websocket(queued, Category::System, 8, t0, A);
    let floor = Held {
        backlog: false,
        above: Some(7),
    };
    let done = tracker.expire(t0 + WINDOW, floor, Gaps::default());
    let missing = |id| {
        done.iter()
            .find(|r| r.id == id)
            .map(|r| r.discrepancies.clone())
    };
    // At the floor: acknowledged, so committed or set aside; no row means it is missing.
    assert_eq!(missing(acked), Some(vec![Discrepancy::MissingInRealtime]));
    // Never shown by the WebSocket path: no offset to place it by.
    assert_eq!(
        missing(unseen),
        Some(vec![
            Discrepancy::MissingInWebsocket,
            Discrepancy::MissingInRealtime
        ])
    );
    assert_eq!(missing(queued), None, "above the floor: still in the queue");
    assert_eq!(tracker.pending(), 1);

    let floor = Held {
        backlog: false,
        above: Some(8),
    };
    let done = tracker.expire(t0 + WINDOW * 2, floor, Gaps::default());
    assert_eq!(done[0].id, queued);
    assert_eq!(done[0].discrepancies, vec![Discrepancy::MissingInRealtime]);
}

#[test]
fn a_row_after_the_window_is_late_but_matched() {
    let (mut tracker, t0, id) = (
        Tracker::new(10, WINDOW, GRACE),
        Instant::now(),
        Uuid::new_v4(),
    );
    tracker.expect(id, Category::Performance, t0);
    tracker.saw_websocket(id, Category::Performance, 1, t0, A);
    assert!(
        tracker
            .expire(t0 + WINDOW, true, Gaps::default())
            .is_empty(),
        "held in the backlog"
    );
    let done = tracker
        .saw_realtime(id, Category::Performance, 1, t0 + WINDOW + ms(1), A)
        .unwrap();
    assert!(done.matched);
    assert_eq!(done.discrepancies, vec![Discrepancy::Late]);
}

#[test]
fn a_lower_offset_committed_after_a_higher_one_of_its_category_is_out_of_order() {
    let (mut tracker, t0) = (Tracker::new(10, WINDOW, GRACE), Instant::now());
    let (first, second, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    for id in [first, second] {
        tracker.expect(id, Category::Debug, t0);
    }
    tracker.expect(other, Category::System, t0);
    tracker.saw_realtime(second, Category::Debug, 2, t0 + ms(1), A);
    // Another category's order is its own.
    tracker.saw_realtime(other, Category::System, 1, t0 + ms(2), A);
    tracker.saw_realtime(first, Category::Debug, 1, t0 + ms(3), A);
    let done = tracker
        .saw_websocket(first, Category::Debug, 1, t0 + ms(4), A)
        .unwrap();
    assert_eq!(done.discrepancies, vec![Discrepancy::OutOfOrder]);
    let done = tracker
        .saw_websocket(other, Category::System, 3, t0 + ms(4), A)
        .unwrap();
    assert!(done.discrepancies.is_empty());
}

#[test]
fn a_second_sighting_is_a_duplicate_that_adds_no_expected_event() {
    let (mut tracker, t0, id) = (
        Tracker::new(10, WINDOW, GRACE),
        Instant::now(),
        Uuid::new_v4(),
    );
    tracker.expect(id, Category::System, t0);
    tracker.saw_websocket(id, Category::System, 1, t0, A);
    let again = tracker
        .saw_websocket(id, Category::System, 1, t0, A)
        .unwrap();
    assert_eq!(again.discrepancies, vec![Discrepancy::Duplicate]);
    assert!(!again.counts_as_expected);
    tracker
        .saw_realtime(id, Category::System, 1, t0, A)
        .unwrap();
    // A replayed commit finds its row already there: one row, not a second delivery.
    assert!(
        tracker
            .saw_realtime(id, Category::System, 1, t0, A)
            .is_none()
    );
    let late_frame = tracker
        .saw_websocket(id, Category::System, 1, t0, A)
        .unwrap();
    assert_eq!(late_frame.discrepancies, vec![Discrepancy::Duplicate]);
    // An id never expected is not a discrepancy.
    assert!(
        tracker
            .saw_realtime(Uuid::new_v4(), Category::System, 9, t0, A)
            .is_none()
    );
}

#[test]
fn an_announced_commit_without_a_row_is_missing_in_realtime_at_once() {
    let (mut tracker, t0, id) = (
        Tracker::new(10, WINDOW, GRACE),
        Instant::now(),
        Uuid::new_v4(),
    );
    tracker.expect(id, Category::System, t0);
    tracker.saw_websocket(id, Category::System, 1, t0, A);
    let done = tracker.row_absent(id).unwrap();
    assert_eq!(done.discrepancies, vec![Discrepancy::MissingInRealtime]);
    assert_eq!(tracker.pending(), 0);
}

#[test]
fn a_quarantined_event_is_reported_as_quarantined_not_missing() {
    let (mut tracker, t0, id) = (
        Tracker::new(10, WINDOW, GRACE),
        Instant::now(),
        Uuid::new_v4(),
    );
    tracker.expect(id, Category::System, t0);
    tracker.saw_websocket(id, Category::System, 1, t0, A);
    let done = tracker.row_quarantined(id).unwrap();
    assert_eq!(done.discrepancies, vec![Discrepancy::Quarantined]);
    assert!(!done.matched);
    assert_eq!(tracker.pending(), 0);
    // Nothing is left to expire as missing later.
    assert!(
        tracker
            .expire(t0 + WINDOW * 10, false, Default::default())
            .is_empty()
    );
}

#[test]
fn memory_is_bounded_and_what_does_not_fit_is_unchecked() {
    let (mut tracker, t0) = (Tracker::new(2, WINDOW, GRACE), Instant::now());
    assert!(tracker.expect(Uuid::new_v4(), Category::System, t0));
    assert!(tracker.expect(Uuid::new_v4(), Category::System, t0));
    assert!(!tracker.expect(Uuid::new_v4(), Category::System, t0));
    assert_eq!((tracker.pending(), tracker.unchecked()), (2, 1));
}

#[test]
fn frames_the_validator_itself_missed_are_unchecked_not_missing() {
    let (mut tracker, t0, id) = (
        Tracker::new(10, WINDOW, GRACE),
        Instant::now(),
        Uuid::new_v4(),
    );
    tracker.expect(id, Category::System, t0);
    tracker.saw_realtime(id, Category::System, 1, t0, A);
    let gaps = Gaps {
        websocket: Some(t0 + ms(1)),
        realtime: None,
    };
    let done = tracker.expire(t0 + WINDOW, false, gaps);
    assert!(done.is_empty());
    assert_eq!(tracker.unchecked(), 1);
}
