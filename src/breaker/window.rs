//! Calls and failures over a sliding time window, counted without a lock.
//!
//! The window is ten buckets, each a tenth of it wide. A bucket is one `AtomicU64` packing the
//! bucket's period number with its call and failure counts, so recording is a single
//! compare-and-swap, and a bucket left over from an older period is recognised and restarted
//! by whoever writes it next. Time is tokio's clock, so tests drive the window with
//! `tokio::time::pause()` and `advance`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

const BUCKETS: u64 = 10;
const COUNT_BITS: u32 = 20;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
const PERIOD_MASK: u64 = (1 << (64 - 2 * COUNT_BITS)) - 1;

pub(crate) struct RateWindow {
    buckets: [AtomicU64; BUCKETS as usize],
    bucket_nanos: u64,
    origin: Instant,
}

/// What the window holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct WindowCounts {
    pub calls: u64,
    pub failures: u64,
}

impl WindowCounts {
    /// failures / calls, 0 when there were no calls.
    pub fn rate(self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.failures as f64 / self.calls as f64
        }
    }
}

fn pack(period: u64, calls: u64, failures: u64) -> u64 {
    (period & PERIOD_MASK) << (2 * COUNT_BITS) | calls << COUNT_BITS | failures
}

fn unpack(bucket: u64) -> (u64, u64, u64) {
    (
        bucket >> (2 * COUNT_BITS),
        (bucket >> COUNT_BITS) & COUNT_MAX,
        bucket & COUNT_MAX,
    )
}

impl RateWindow {
    pub(crate) fn new(window: Duration) -> Self {
        let bucket_nanos = (window.as_nanos() / u128::from(BUCKETS)).max(1_000_000);
        Self {
            buckets: Default::default(),
            bucket_nanos: u64::try_from(bucket_nanos).unwrap_or(u64::MAX),
            origin: Instant::now(),
        }
    }

    /// The current period number (wrapping within the packed width).
    fn period(&self) -> u64 {
        let elapsed = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        (elapsed / self.bucket_nanos) & PERIOD_MASK
    }

    pub(crate) fn record(&self, failed: bool) {
        let period = self.period();
        let bucket = &self.buckets[(period % BUCKETS) as usize];
        let mut current = bucket.load(Ordering::Relaxed);
        loop {
            let (held, calls, failures) = unpack(current);
            let next = if held == period {
                if calls == COUNT_MAX {
                    return; // saturated: a million calls in a tenth of the window is rate enough
                }
                pack(period, calls + 1, failures + u64::from(failed))
            } else {
                pack(period, 1, u64::from(failed))
            };
            match bucket.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    pub(crate) fn counts(&self) -> WindowCounts {
        let now = self.period();
        let mut counts = WindowCounts::default();
        for bucket in &self.buckets {
            let (period, calls, failures) = unpack(bucket.load(Ordering::Relaxed));
            if now.wrapping_sub(period) & PERIOD_MASK < BUCKETS {
                counts.calls += calls;
                counts.failures += failures;
            }
        }
        counts
    }

    pub(crate) fn clear(&self) {
        for bucket in &self.buckets {
            bucket.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn counts_only_what_happened_within_the_window() {
        let window = RateWindow::new(Duration::from_secs(10));
        for failed in [true, true, false, false] {
            window.record(failed);
        }
        assert_eq!(
            window.counts(),
            WindowCounts {
                calls: 4,
                failures: 2
            }
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        window.record(false);
        assert_eq!(window.counts().calls, 5);
        // The first four slide out; the fifth is still in.
        tokio::time::advance(Duration::from_millis(5500)).await;
        assert_eq!(
            window.counts(),
            WindowCounts {
                calls: 1,
                failures: 0
            }
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(window.counts(), WindowCounts::default());
        window.record(true);
        assert_eq!(window.counts().rate(), 1.0);
        window.clear();
        assert_eq!(window.counts(), WindowCounts::default());
    }
}
