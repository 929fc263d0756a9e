//! Call counters and latency percentiles, updated with one atomic add each so the call path
//! takes no lock for them.
//!
//! Latencies go into a log-linear histogram of microseconds: exact below 16 µs, then eight
//! buckets per power of two (within 12.5%), which is plenty to tell 2 ms from 20 ms.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

const LINEAR: u64 = 16;
const SUB_BUCKETS: u64 = 8;
/// Up to 2^44 µs (about 200 days): any latency a timeout allows.
const LATENCY_BUCKETS: usize = (LINEAR + (44 - 4) * SUB_BUCKETS) as usize;

/// How a call that ran ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failure,
    Timeout,
}

impl Outcome {
    pub(crate) fn failed(self) -> bool {
        self != Outcome::Success
    }
}

/// Calls by outcome since the breaker started or was last reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct CallCounts {
    pub success: u64,
    pub failure: u64,
    pub timeout: u64,
    /// Calls refused without running (open, forced open, or no trial permit left).
    pub rejected: u64,
}

/// Latency percentiles in milliseconds over the calls that ran (`null` before the first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct LatencyPercentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

pub(crate) struct Stats {
    success: AtomicU64,
    failure: AtomicU64,
    timeout: AtomicU64,
    rejected: AtomicU64,
    latency: Box<[AtomicU64]>,
}

fn bucket_of(micros: u64) -> usize {
    if micros < LINEAR {
        return micros as usize;
    }
    let exponent = u64::from(63 - micros.leading_zeros());
    let sub = (micros >> (exponent - 3)) & (SUB_BUCKETS - 1);
    ((LINEAR + (exponent - 4) * SUB_BUCKETS + sub) as usize).min(LATENCY_BUCKETS - 1)
}

/// The middle of a bucket, in microseconds.
fn value_of(bucket: usize) -> f64 {
    let bucket = bucket as u64;
    if bucket < LINEAR {
        return bucket as f64;
    }
    let exponent = (bucket - LINEAR) / SUB_BUCKETS + 4;
    let sub = (bucket - LINEAR) % SUB_BUCKETS;
    let width = 1u64 << (exponent - 3);
    ((SUB_BUCKETS + sub) * width) as f64 + width as f64 / 2.0
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self {
            success: AtomicU64::new(0),
            failure: AtomicU64::new(0),
            timeout: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            latency: (0..LATENCY_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(crate) fn record(&self, outcome: Outcome, elapsed: Duration) {
        let counter = match outcome {
            Outcome::Success => &self.success,
            Outcome::Failure => &self.failure,
            Outcome::Timeout => &self.timeout,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reject(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn counts(&self) -> CallCounts {
        CallCounts {
            success: self.success.load(Ordering::Relaxed),
            failure: self.failure.load(Ordering::Relaxed),
            timeout: self.timeout.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn percentiles(&self) -> LatencyPercentiles {
        let counts: Vec<u64> = self
            .latency
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return LatencyPercentiles::default();
        }
        let at = |quantile: f64| {
            let rank = ((total as f64) * quantile).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (bucket, count) in counts.iter().enumerate() {
                seen += count;
                if seen >= rank {
                    return Some(value_of(bucket) / 1000.0);
                }
            }
            None
        };
        LatencyPercentiles {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
        }
    }

    pub(crate) fn clear(&self) {
        for counter in [&self.success, &self.failure, &self.timeout, &self.rejected] {
            counter.store(0, Ordering::Relaxed);
        }
        for bucket in self.latency.iter() {
            bucket.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_within_an_eighth() {
        let mut last = 0;
        for micros in (0..100_000u64).step_by(7).chain([u64::MAX]) {
            let bucket = bucket_of(micros);
            assert!(bucket >= last, "{micros}");
            last = bucket;
            if (LINEAR..1 << 40).contains(&micros) {
                let error = (value_of(bucket) - micros as f64).abs() / micros as f64;
                assert!(error <= 0.125, "{micros} -> {}", value_of(bucket));
            }
        }
    }

    #[test]
    fn percentiles_come_from_the_recorded_latencies() {
        let stats = Stats::new();
        assert_eq!(stats.percentiles(), LatencyPercentiles::default());
        for ms in 1..=100 {
            stats.record(Outcome::Success, Duration::from_millis(ms));
        }
        let p = stats.percentiles();
        let near = |got: Option<f64>, want: f64| (got.unwrap() - want).abs() / want < 0.13;
        assert!(
            near(p.p50, 50.0) && near(p.p95, 95.0) && near(p.p99, 99.0),
            "{p:?}"
        );
        stats.reject();
        assert_eq!(stats.counts().success, 100);
        assert_eq!(stats.counts().rejected, 1);
        stats.clear();
        assert_eq!(stats.counts(), CallCounts::default());
    }
}
