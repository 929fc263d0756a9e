use super::*;
use crate::hub::Hub;
use crate::realtime::testing::pending;

fn events(hub: &Hub, n: usize) -> Vec<Pending> {
    (0..n).map(|_| pending(hub, "stats")).collect()
}

fn offsets(events: &[Pending]) -> Vec<u64> {
    events.iter().map(|p| p.published.offset).collect()
}

#[test]
fn the_backlog_keeps_stream_order_whatever_order_events_arrive_in() {
    let hub = Hub::new(1000, 16);
    let all = events(&hub, 6);
    let mut backlog = Backlog::new(10, 10, Overflow::Drop);
    // Younger events overflowed the queue first; then a failed batch of older ones came back.
    for p in [&all[4], &all[5], &all[0], &all[2], &all[1], &all[3]] {
        assert_eq!(backlog.push(p.clone()), Held::InMemory);
    }
    assert_eq!(offsets(&backlog.front(10)), offsets(&all));
    assert_eq!(backlog.oldest_submitted(), Some(all[0].submitted_at));
}

#[test]
fn front_leaves_events_in_place_until_they_are_removed() {
    let hub = Hub::new(1000, 16);
    let all = events(&hub, 5);
    let mut backlog = Backlog::new(10, 10, Overflow::Drop);
    all.iter().for_each(|p| {
        backlog.push(p.clone());
    });
    let chunk = backlog.front(2);
    assert_eq!(offsets(&chunk), offsets(&all[..2]));
    assert_eq!(backlog.len(), 5, "a failed replay changes nothing");
    backlog.remove(offsets(&chunk));
    assert_eq!(offsets(&backlog.front(10)), offsets(&all[2..]));
    backlog.remove(offsets(&all));
    assert!(backlog.is_empty() && !backlog.holds_back());
}

#[test]
fn without_a_dead_letter_the_youngest_overflow_is_dropped_and_the_oldest_kept() {
    let hub = Hub::new(1000, 16);
    let all = events(&hub, 5);
    let mut backlog = Backlog::new(3, 10, Overflow::Drop);
    let held: Vec<Held> = all[1..].iter().map(|p| backlog.push(p.clone())).collect();
    assert_eq!(
        held,
        [
            Held::InMemory,
            Held::InMemory,
            Held::InMemory,
            Held::Dropped(vec![all[4].published.event.id])
        ]
    );
    // An older event still fits: it pushes out the youngest.
    assert_eq!(
        backlog.push(all[0].clone()),
        Held::Dropped(vec![all[3].published.event.id])
    );
    assert_eq!(offsets(&backlog.front(10)), offsets(&all[..3]));
    assert_eq!(backlog.spill_len(), 0);
    assert!(!backlog.spilled_tail(), "no dead letter in drop mode");
}

#[test]
fn with_a_dead_letter_the_overflow_spills_and_younger_events_follow_it() {
    let hub = Hub::new(1000, 16);
    let all = events(&hub, 8);
    let mut backlog = Backlog::new(3, 10, Overflow::DeadLetter);
    for p in &all[1..4] {
        assert_eq!(backlog.push(p.clone()), Held::InMemory);
    }
    assert_eq!(backlog.push(all[4].clone()), Held::Spilled);
    assert!(backlog.spilled_tail() && backlog.holds_back());
    // Memory drains (replay); younger events still spill so none overtakes the dead letter.
    backlog.remove(offsets(&all[1..3]));
    assert_eq!(backlog.push(all[5].clone()), Held::Spilled);
    // An older event (a failed batch) goes back in memory, in order.
    assert_eq!(backlog.push(all[0].clone()), Held::InMemory);
    assert_eq!(
        offsets(&backlog.front(10)),
        offsets(&[all[0].clone(), all[3].clone()])
    );
    assert_eq!(offsets(&backlog.take_spill(10)), offsets(&all[4..6]));

    // The dead letter is the tail until a replay finds it empty with nothing on its way.
    assert_eq!(backlog.push(all[6].clone()), Held::Spilled);
    assert!(
        !backlog.dead_letter_drained(),
        "an event is still on its way there"
    );
    let on_the_way = backlog.take_spill(10);
    assert!(backlog.dead_letter_drained());
    assert!(!backlog.spilled_tail());
    assert_eq!(offsets(&on_the_way), offsets(&all[6..7]));
    assert_eq!(backlog.push(all[7].clone()), Held::InMemory);
}

#[test]
fn a_full_spill_drops_and_a_failed_dead_letter_write_puts_events_back_in_order() {
    let hub = Hub::new(1000, 16);
    let all = events(&hub, 5);
    let mut backlog = Backlog::new(1, 2, Overflow::DeadLetter);
    let held: Vec<Held> = all.iter().map(|p| backlog.push(p.clone())).collect();
    assert_eq!(
        held,
        [
            Held::InMemory,
            Held::Spilled,
            Held::Spilled,
            Held::Dropped(vec![all[3].published.event.id]),
            Held::Dropped(vec![all[4].published.event.id])
        ]
    );
    let first = backlog.take_spill(1);
    backlog.return_spill(first);
    assert_eq!(offsets(&backlog.take_spill(10)), offsets(&all[1..3]));
}

#[test]
fn rows_left_by_an_earlier_run_make_the_dead_letter_the_tail() {
    let hub = Hub::new(1000, 16);
    let mut backlog = Backlog::new(10, 10, Overflow::DeadLetter);
    backlog.mark_spilled_tail();
    assert!(backlog.holds_back());
    assert_eq!(backlog.push(pending(&hub, "stats")), Held::Spilled);

    let mut same_database = Backlog::new(10, 10, Overflow::Drop);
    same_database.mark_spilled_tail();
    assert!(!same_database.holds_back(), "no dead letter to wait for");
}

#[test]
fn take_all_empties_memory_in_stream_order() {
    let hub = Hub::new(1000, 16);
    let all = events(&hub, 4);
    let mut backlog = Backlog::new(10, 10, Overflow::Drop);
    for p in all.iter().rev() {
        backlog.push(p.clone());
    }
    assert_eq!(offsets(&backlog.take_all()), offsets(&all));
    assert!(backlog.is_empty());
}

#[test]
fn past_its_byte_budget_the_backlog_overflows_as_past_its_count() {
    let hub = Hub::new(1000, 16);
    let all = events(&hub, 5);
    let one = all[0].published.held_bytes();
    let mut backlog = Backlog::with_bytes(100, one * 3, 10, Overflow::Drop);
    let held: Vec<Held> = all[1..].iter().map(|p| backlog.push(p.clone())).collect();
    assert_eq!(held[3], Held::Dropped(vec![all[4].published.event.id]));
    assert!(backlog.bytes() <= one * 3);
    // An older event still fits: it pushes out the youngest, as with the count.
    assert_eq!(
        backlog.push(all[0].clone()),
        Held::Dropped(vec![all[3].published.event.id])
    );
    assert_eq!(offsets(&backlog.front(10)), offsets(&all[..3]));
    backlog.remove(offsets(&all));
    assert_eq!(backlog.bytes(), 0);

    let mut spilling = Backlog::with_bytes(100, one * 2, 10, Overflow::DeadLetter);
    let held: Vec<Held> = all.iter().map(|p| spilling.push(p.clone())).collect();
    assert_eq!(
        held[2],
        Held::Spilled,
        "the byte overflow spills to the dead letter"
    );
    assert_eq!(spilling.len(), 2);
}
