use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::hub::Hub;
use crate::realtime::testing::pending;

const SLOW: Duration = Duration::from_millis(100);
const FAST_WRITE: Duration = Duration::from_millis(2);
const SLOW_WRITE: Duration = Duration::from_millis(400);
/// Between a quarter of SLOW and SLOW: linger stays.
const MODERATE_WRITE: Duration = Duration::from_millis(50);

#[test]
fn categories_map_to_the_legacy_classes_and_presets() {
    assert_eq!(BatchClass::of(Category::Performance), BatchClass::High);
    assert_eq!(BatchClass::of(Category::UserActivity), BatchClass::Medium);
    for low in [Category::Critical, Category::System, Category::Debug] {
        assert_eq!(BatchClass::of(low), BatchClass::Low);
    }
    let batcher = Batcher::new(None, SLOW);
    let start = |class| {
        let t = batcher.tuning(class);
        (t.size, t.linger)
    };
    assert_eq!(start(BatchClass::High), (100, Duration::from_millis(100)));
    assert_eq!(start(BatchClass::Medium), (50, Duration::from_millis(500)));
    assert_eq!(start(BatchClass::Low), (10, Duration::from_secs(2)));
    let legacy = Batcher::new(Some(250), SLOW);
    assert_eq!(legacy.tuning(BatchClass::High).size, 250);
}

#[test]
fn a_batch_flushes_when_full_or_when_its_linger_expires() {
    let hub = Hub::new(1000, 16);
    let mut batcher = Batcher::new(None, SLOW);
    let t0 = Instant::now();
    for _ in 0..9 {
        assert!(batcher.push(pending(&hub, "health_check"), t0).is_none());
    }
    let full = batcher
        .push(pending(&hub, "stats"), t0 + Duration::from_millis(5))
        .expect("the tenth low-class event fills the batch");
    assert_eq!(
        (full.class, full.reason, full.events.len()),
        (BatchClass::Low, FlushReason::Full, 10)
    );
    assert_eq!(full.collecting, Duration::from_millis(5));
    assert_eq!(batcher.next_deadline(), None);

    batcher.push(pending(&hub, "cache_metrics"), t0);
    batcher.push(pending(&hub, "session_start"), t0);
    assert_eq!(
        batcher.next_deadline(),
        Some(t0 + Duration::from_millis(100))
    );
    assert!(batcher.take_due(t0 + Duration::from_millis(99)).is_empty());
    let due = batcher.take_due(t0 + Duration::from_millis(100));
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].class, due[0].reason),
        (BatchClass::High, FlushReason::Linger)
    );
    assert_eq!(
        batcher.next_deadline(),
        Some(t0 + Duration::from_millis(500))
    );
    let rest = batcher.drain(t0);
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].class, BatchClass::Medium);
}

#[test]
fn events_keep_their_order_within_a_batch() {
    let hub = Hub::new(1000, 16);
    let mut batcher = Batcher::new(None, SLOW);
    let t0 = Instant::now();
    for _ in 0..5 {
        batcher.push(pending(&hub, "cache_metrics"), t0);
        batcher.push(pending(&hub, "health_check"), t0);
    }
    for batch in batcher.drain(t0) {
        let offsets: Vec<u64> = batch.events.iter().map(|p| p.published.offset).collect();
        assert!(offsets.is_sorted(), "{offsets:?}");
    }
}

#[test]
fn batches_that_fill_before_their_linger_grow_the_size_up_to_its_bound() {
    let mut tuning = Tuning::starting_at(100, Duration::from_millis(100));
    let mut sizes = vec![];
    for _ in 0..10 {
        // 100k events/s: every batch fills in a fraction of its linger.
        let size = tuning.size;
        let collecting = Duration::from_secs_f64(size as f64 / 100_000.0);
        tuning.adapt(size, collecting, true, MODERATE_WRITE, SLOW);
        sizes.push(tuning.size);
    }
    assert_eq!(sizes[..2], [400, 1000], "at most quadrupling per write");
    assert_eq!(tuning.size, 1000, "capped at ten times the preset");
    assert_eq!(
        tuning.linger,
        Duration::from_millis(100),
        "moderate writes leave linger alone"
    );
}

#[test]
fn batches_that_linger_half_empty_shrink_the_size_down_to_its_bound() {
    let mut tuning = Tuning::starting_at(50, Duration::from_millis(500));
    let mut sizes = vec![];
    for _ in 0..10 {
        // One event per linger.
        tuning.adapt(1, tuning.linger, false, MODERATE_WRITE, SLOW);
        sizes.push(tuning.size);
    }
    assert_eq!(sizes[..4], [26, 14, 8, 5], "halfway down to what arrived");
    assert_eq!(tuning.size, 5, "floored at a tenth of the preset");
}

/// One flush at a steady `rate`: full if the batch fills within the linger.
fn steady(tuning: &mut Tuning, rate: f64) {
    let per_linger = (rate * tuning.linger.as_secs_f64()) as usize;
    if per_linger >= tuning.size {
        let collecting = Duration::from_secs_f64(tuning.size as f64 / rate);
        tuning.adapt(tuning.size, collecting, true, MODERATE_WRITE, SLOW);
    } else {
        tuning.adapt(per_linger, tuning.linger, false, MODERATE_WRITE, SLOW);
    }
}

#[test]
fn a_steady_rate_settles_between_one_and_two_lingers_worth() {
    // 2,000 events/s with a 100 ms linger: 200 per linger.
    let mut from_below = Tuning::starting_at(100, Duration::from_millis(100));
    let mut from_above = Tuning::starting_at(100, Duration::from_millis(100));
    from_above.size = 1000;
    for _ in 0..20 {
        steady(&mut from_below, 2_000.0);
        steady(&mut from_above, 2_000.0);
    }
    assert_eq!(from_below.size, 200);
    assert!(
        (200..=400).contains(&from_above.size),
        "size {}",
        from_above.size
    );
    let settled = from_above.size;
    steady(&mut from_above, 2_000.0);
    assert_eq!(from_above.size, settled, "no oscillation once settled");
}

#[test]
fn slow_writes_lengthen_the_linger_and_fast_ones_shorten_it_within_bounds() {
    let mut tuning = Tuning::starting_at(10, Duration::from_secs(2));
    tuning.adapt(10, Duration::from_secs(2), false, SLOW_WRITE, SLOW);
    assert_eq!(tuning.linger, Duration::from_secs(3));
    for _ in 0..10 {
        tuning.adapt(10, Duration::from_secs(2), false, SLOW_WRITE, SLOW);
    }
    assert_eq!(
        tuning.linger,
        Duration::from_secs(4),
        "capped at twice the preset"
    );

    // The average needs a few fast writes to fall under a quarter of the threshold.
    let mut lingers = vec![];
    for _ in 0..40 {
        tuning.adapt(1, tuning.linger, false, FAST_WRITE, SLOW);
        lingers.push(tuning.linger);
    }
    assert!(lingers.windows(2).all(|w| w[1] <= w[0]), "{lingers:?}");
    assert_eq!(
        tuning.linger,
        Duration::from_millis(200),
        "floored at a tenth of the preset"
    );
}

#[test]
fn adaptation_never_leaves_the_bounds_whatever_it_observes() {
    for class in BatchClass::ALL {
        let (size, linger) = class.preset();
        let mut tuning = Tuning::starting_at(size, linger);
        let mut seed: u64 = 7;
        for _ in 0..2_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let events = (seed >> 33) as usize % 3_000;
            let collecting = Duration::from_micros((seed >> 20) % 5_000_000);
            let write = Duration::from_micros((seed >> 8) % 1_000_000);
            tuning.adapt(events, collecting, seed & 1 == 0, write, SLOW);
            assert!((tuning.min_size..=tuning.max_size).contains(&tuning.size));
            assert!((tuning.min_linger..=tuning.max_linger).contains(&tuning.linger));
        }
    }
}

#[test]
fn only_the_written_class_adapts() {
    let hub = Hub::new(1000, 16);
    let mut batcher = Batcher::new(None, SLOW);
    let t0 = Instant::now();
    let mut full = None;
    for _ in 0..100 {
        full = batcher.push(pending(&hub, "cache_metrics"), t0);
    }
    let full = full.expect("100 high-class events fill a batch");
    batcher.record_write(&full, MODERATE_WRITE);
    assert!(batcher.tuning(BatchClass::High).size > 100);
    assert_eq!(batcher.tuning(BatchClass::Medium).size, 50);
    assert_eq!(batcher.tuning(BatchClass::Low).size, 10);
}

#[test]
fn every_class_may_grow_to_the_largest_batch_and_no_class_shrinks_its_own_bound() {
    let hub = Hub::new(2_000, 16);
    let legacy = Batcher::new(Some(250), SLOW);
    assert_eq!(legacy.tuning(BatchClass::Low).max_size, 100);
    let mut batcher = Batcher::new(Some(250), SLOW).with_largest_batch(1_000);
    assert_eq!(batcher.tuning(BatchClass::Low).max_size, 1_000);
    assert_eq!(batcher.tuning(BatchClass::Medium).max_size, 1_000);
    assert_eq!(
        batcher.tuning(BatchClass::High).max_size,
        2_500,
        "its own is larger"
    );
    assert_eq!(
        batcher.tuning(BatchClass::Low).size,
        10,
        "the start is the preset's"
    );

    // A burst of critical events: batches fill at once and the size grows past 100.
    let t0 = Instant::now();
    for _ in 0..1_000 {
        if let Some(batch) = batcher.push(pending(&hub, "health_check"), t0) {
            batcher.record_write(&batch, FAST_WRITE);
        }
    }
    assert!(batcher.tuning(BatchClass::Low).size > 100);
}

#[test]
fn a_drained_batch_does_not_adapt_the_tuning() {
    let hub = Hub::new(16, 16);
    let mut batcher = Batcher::new(None, SLOW);
    let before = batcher.tuning(BatchClass::Low);
    batcher.push(pending(&hub, "health_check"), Instant::now());
    for batch in batcher.drain(Instant::now()) {
        batcher.record_write(&batch, SLOW_WRITE);
    }
    assert_eq!(batcher.tuning(BatchClass::Low), before);
}
