//! The ids published within the idempotency window, and where each went.
//!
//! A moka cache did this before, at about 450 bytes per id (its entry, deque and timer nodes):
//! 27 MiB at 200 events/s over the default 300 s window, 135 MiB at 1,000/s, and RSS climbing
//! for the whole first window. Here an id costs one slot of a `HashMap<Uuid, Routed>` (32
//! bytes and a control byte, ~40-75 bytes with the table's spare room), so the same window
//! holds in 3-5 MiB at 200/s.
//!
//! The window is cut into [`SLICES`] slices, each one map. Ids go into the newest; when a
//! slice's time is up the oldest map is cleared (keeping its allocation) and becomes the
//! newest. With one map more than there are slices, every id is remembered for at least the
//! window and at most one slice longer (a repeat a little past the window may still be told
//! it is a repeat, never the other way round). The maps are reused, so once the first window
//! has passed memory stays flat at the rate's level. Past `max_ids` the oldest slice goes
//! early, as the cache evicted under pressure.
//!
//! One mutex guards it, held while an event is routed (a few microseconds, no await), so two
//! requests carrying the same id cannot both publish it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// Slices of the window: an id may be remembered up to `window / SLICES` past the window.
const SLICES: u32 = 8;

/// Ids seen within the window. Cheap to clone (shared).
#[derive(Clone)]
pub(super) struct SeenIds<V> {
    inner: Arc<Mutex<Slices<V>>>,
}

struct Slices<V> {
    /// Oldest first; the last one takes new ids.
    maps: VecDeque<HashMap<Uuid, V>>,
    /// When the newest slice began.
    newest_since: Instant,
    slice: Duration,
    max_ids: usize,
    /// Ids in all the maps together, kept as they change (not summed per insert).
    held: usize,
}

impl<V: Copy> SeenIds<V> {
    /// Remembers ids for `window` (nothing when it is zero), at most `max_ids` at once.
    pub(super) fn new(window: Duration, max_ids: usize) -> Self {
        let slices = if window.is_zero() { 0 } else { SLICES + 1 };
        Self {
            inner: Arc::new(Mutex::new(Slices {
                maps: (0..slices).map(|_| HashMap::new()).collect(),
                newest_since: Instant::now(),
                slice: window / SLICES,
                max_ids: max_ids.max(1),
                held: 0,
            })),
        }
    }

    /// What `id` was recorded with, if it was seen within the window; otherwise runs `first`
    /// and records its result. `first` runs under the lock: keep it short and synchronous.
    pub(super) fn get_or_record(&self, id: Uuid, first: impl FnOnce() -> V) -> (V, bool) {
        let mut slices = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slices.expire(Instant::now());
        if let Some(seen) = slices.get(&id) {
            return (seen, false);
        }
        let value = first();
        slices.insert(id, value);
        (value, true)
    }

    /// What `id` was recorded with, if it was seen within the window.
    pub(super) fn get(&self, id: &Uuid) -> Option<V> {
        let mut slices = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slices.expire(Instant::now());
        slices.get(id)
    }

    /// Records `id` (a repeat keeps its first value).
    pub(super) fn record(&self, id: Uuid, value: V) {
        let mut slices = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slices.expire(Instant::now());
        if slices.get(&id).is_none() {
            slices.insert(id, value);
        }
    }

    /// How many ids are remembered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        let slices = self.inner.lock().unwrap();
        let counted = slices.maps.iter().map(HashMap::len).sum();
        assert_eq!(slices.held, counted, "the running count matches the maps");
        counted
    }

    #[cfg(test)]
    fn expire_at(&self, now: Instant) {
        self.inner.lock().unwrap().expire(now);
    }
}

impl<V: Copy> Slices<V> {
    fn get(&self, id: &Uuid) -> Option<V> {
        // Newest first: a repeat is most often a quick retry.
        self.maps.iter().rev().find_map(|map| map.get(id).copied())
    }

    fn insert(&mut self, id: Uuid, value: V) {
        if self.held >= self.max_ids {
            self.rotate();
        }
        if let Some(newest) = self.maps.back_mut()
            && newest.insert(id, value).is_none()
        {
            self.held += 1;
        }
    }

    /// Drops the slices whose time is up.
    fn expire(&mut self, now: Instant) {
        if self.maps.is_empty() {
            return;
        }
        let mut rotations = 0;
        while now.saturating_duration_since(self.newest_since) >= self.slice && rotations <= SLICES
        {
            self.rotate();
            self.newest_since += self.slice;
            rotations += 1;
        }
        if rotations > SLICES {
            // Idle for longer than the window: every slice is empty now; start afresh.
            self.newest_since = now;
        }
    }

    /// The oldest slice is forgotten and becomes the newest, its allocation kept.
    fn rotate(&mut self) {
        if let Some(mut oldest) = self.maps.pop_front() {
            self.held -= oldest.len();
            oldest.clear();
            self.maps.push_back(oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_remembered_for_the_window_and_forgotten_one_slice_after() {
        let window = Duration::from_secs(80);
        let seen = SeenIds::<u64>::new(window, 1_000);
        let start = Instant::now();
        let id = Uuid::new_v4();
        assert_eq!(seen.get_or_record(id, || 7), (7, true));
        assert_eq!(
            seen.get_or_record(id, || 8),
            (7, false),
            "a repeat keeps the first value"
        );
        // Just before the window ends (from the slice's start, at most `start`): still there.
        seen.expire_at(start + window - Duration::from_millis(1));
        assert_eq!(seen.get(&id), Some(7));
        // A slice past the window (plus the time the test took): gone.
        seen.expire_at(Instant::now() + window + window / SLICES);
        assert_eq!(seen.get(&id), None);
        assert_eq!(seen.len(), 0);
    }

    #[test]
    fn past_the_cap_the_oldest_slice_goes_first() {
        let seen = SeenIds::<u8>::new(Duration::from_secs(3600), 3);
        let ids: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
        for (i, id) in ids.iter().enumerate() {
            seen.record(*id, i as u8);
        }
        // The cap was reached on the fourth: the (single, newest) slice holding the first three
        // rotated away from the front only once it was the oldest, so all four may be held until
        // the slices turn over; the count never passes cap + one slice's worth.
        assert!(seen.len() <= 4);
        assert_eq!(seen.get(&ids[3]), Some(3));
        // Filling past the cap many times over keeps it bounded.
        for _ in 0..1_000 {
            seen.record(Uuid::new_v4(), 0);
        }
        assert!(seen.len() <= 3 * (SLICES as usize + 1), "{}", seen.len());
    }

    #[test]
    fn a_zero_window_remembers_nothing() {
        let seen = SeenIds::<u8>::new(Duration::ZERO, 10);
        let id = Uuid::new_v4();
        assert_eq!(seen.get_or_record(id, || 1), (1, true));
        assert_eq!(seen.get_or_record(id, || 2), (2, true));
    }

    #[test]
    fn memory_is_reused_once_the_window_has_turned_over() {
        let window = Duration::from_secs(8);
        let seen = SeenIds::<u64>::new(window, usize::MAX);
        let start = Instant::now();
        let mut capacity_after_first_window = 0;
        for round in 0..3 * SLICES {
            seen.expire_at(start + window / SLICES * round);
            for _ in 0..1_000 {
                seen.record(Uuid::new_v4(), 0);
            }
            let capacity: usize = {
                let slices = seen.inner.lock().unwrap();
                slices.maps.iter().map(HashMap::capacity).sum()
            };
            if round == SLICES + 1 {
                capacity_after_first_window = capacity;
            }
            if round > SLICES + 1 {
                assert_eq!(capacity, capacity_after_first_window, "round {round}");
            }
        }
        assert!(seen.len() <= 1_000 * (SLICES as usize + 1));
    }
}
