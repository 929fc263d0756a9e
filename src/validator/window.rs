//! Aggregation of resolutions, pure: per category, expected and matched events, counts and
//! example ids per discrepancy type, latency per path; consistency against the per-category
//! mismatch thresholds (REFERENCE.md section 1).
//!
//! Two views of the same stream: a *sliding* window (the last `window` of time, kept as ten
//! buckets, so the summary moves every tenth of a window) for `GET /v1/validation/summary` and
//! the alerts, and *closed* windows (one every `window`, back to back) that become the stored
//! reports.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::tracker::{DISCREPANCY_KINDS, Discrepancy, Resolution};
use crate::event::Category;

/// Example ids kept per discrepancy type and category.
const EXAMPLES: usize = 5;
const BUCKETS: u32 = 10;
/// The consistency switchyard aims for, in percent.
pub const TARGET_CONSISTENCY_PERCENT: f64 = 99.9;

/// The mismatch rate above which a category alerts, in percent.
pub fn threshold_percent(category: Category) -> f64 {
    match category {
        Category::Critical => 1.0,
        Category::Performance => 5.0,
        Category::UserActivity => 3.0,
        Category::System => 2.0,
        Category::Debug => 10.0,
    }
}

#[derive(Clone)]
struct Tally {
    expected: u64,
    matched: u64,
    discrepancies: [u64; DISCREPANCY_KINDS],
    examples: [Vec<Uuid>; DISCREPANCY_KINDS],
    websocket_us: Histogram<u64>,
    realtime_us: Histogram<u64>,
}

fn histogram() -> Histogram<u64> {
    // Microseconds up to an hour, two significant digits: a few KiB each.
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("valid bounds")
}

impl Tally {
    fn new() -> Self {
        Self {
            expected: 0,
            matched: 0,
            discrepancies: [0; DISCREPANCY_KINDS],
            examples: Default::default(),
            websocket_us: histogram(),
            realtime_us: histogram(),
        }
    }

    fn record(&mut self, resolution: &Resolution) {
        if resolution.counts_as_expected {
            self.expected += 1;
            self.matched += u64::from(resolution.matched);
        }
        for kind in &resolution.discrepancies {
            let i = kind.index();
            self.discrepancies[i] += 1;
            if self.examples[i].len() < EXAMPLES {
                self.examples[i].push(resolution.id);
            }
        }
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        if let Some(latency) = resolution.websocket_latency {
            self.websocket_us.saturating_record(micros(latency));
        }
        if let Some(latency) = resolution.realtime_latency {
            self.realtime_us.saturating_record(micros(latency));
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.expected += other.expected;
        self.matched += other.matched;
        for i in 0..DISCREPANCY_KINDS {
            self.discrepancies[i] += other.discrepancies[i];
            let room = EXAMPLES.saturating_sub(self.examples[i].len());
            self.examples[i].extend(other.examples[i].iter().take(room));
        }
        // Same bounds on both sides: adding cannot fail.
        let _ = self.websocket_us.add(&other.websocket_us);
        let _ = self.realtime_us.add(&other.realtime_us);
    }

    fn summary(&self, category: Option<Category>) -> CategorySummary {
        let consistency =
            (self.expected > 0).then(|| self.matched as f64 * 100.0 / self.expected as f64);
        let threshold = category.map(threshold_percent);
        let mismatch = consistency.map(|c| 100.0 - c);
        let pick = |f: &dyn Fn(usize) -> u64| {
            Discrepancy::ALL
                .iter()
                .map(|d| (d.as_str(), f(d.index())))
                .collect::<BTreeMap<_, _>>()
        };
        let websocket = Percentiles::of(&self.websocket_us);
        let realtime = Percentiles::of(&self.realtime_us);
        CategorySummary {
            category,
            expected: self.expected,
            matched: self.matched,
            consistency_percent: consistency,
            mismatch_percent: mismatch,
            threshold_percent: threshold,
            breached: matches!((mismatch, threshold), (Some(m), Some(t)) if m > t),
            discrepancies: pick(&|i| self.discrepancies[i]),
            examples: Discrepancy::ALL
                .iter()
                .filter(|d| !self.examples[d.index()].is_empty())
                .map(|d| (d.as_str(), self.examples[d.index()].clone()))
                .collect(),
            latency_ms: Latency {
                difference: websocket.difference(&realtime),
                websocket,
                realtime,
            },
        }
    }
}

/// p50 / p95 / p99 in milliseconds (none without samples).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct Percentiles {
    pub samples: u64,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

impl Percentiles {
    fn of(histogram: &Histogram<u64>) -> Self {
        let at = |q: f64| {
            (!histogram.is_empty()).then(|| histogram.value_at_quantile(q) as f64 / 1_000.0)
        };
        Self {
            samples: histogram.len(),
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
        }
    }

    /// Realtime minus WebSocket at each percentile.
    fn difference(&self, realtime: &Self) -> Self {
        let minus = |r: Option<f64>, w: Option<f64>| Some(r? - w?);
        Self {
            samples: self.samples.min(realtime.samples),
            p50: minus(realtime.p50, self.p50),
            p95: minus(realtime.p95, self.p95),
            p99: minus(realtime.p99, self.p99),
        }
    }
}

/// Latency per path: ingest -> WebSocket send, ingest -> Realtime commit, and their difference.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Latency {
    pub websocket: Percentiles,
    pub realtime: Percentiles,
    pub difference: Percentiles,
}

/// One category's figures over a window (`category` is absent for the overall figures).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CategorySummary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    /// Events resolved in the window (both paths seen, or one declared missing).
    pub expected: u64,
    /// Of those, carried by both paths with the same payload.
    pub matched: u64,
    pub consistency_percent: Option<f64>,
    pub mismatch_percent: Option<f64>,
    /// The mismatch rate above which this category alerts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_percent: Option<f64>,
    pub breached: bool,
    /// Count per discrepancy type (all six, zeros included).
    #[schema(value_type = Object)]
    pub discrepancies: BTreeMap<&'static str, u64>,
    /// Up to five event ids per discrepancy type seen.
    #[schema(value_type = Object)]
    pub examples: BTreeMap<&'static str, Vec<Uuid>>,
    pub latency_ms: Latency,
}

/// A closed window, ready to be stored.
pub struct ClosedWindow {
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub categories: Vec<CategorySummary>,
}

pub struct Windows {
    window: Duration,
    /// (start, per category), oldest first.
    buckets: VecDeque<(Instant, Vec<Tally>)>,
    closing: Vec<Tally>,
    closing_since: (Instant, DateTime<Utc>),
}

fn tallies() -> Vec<Tally> {
    vec![Tally::new(); Category::ALL.len()]
}

fn slot(category: Category) -> usize {
    Category::ALL
        .iter()
        .position(|c| *c == category)
        .expect("listed")
}

impl Windows {
    pub fn new(window: Duration, now: Instant) -> Self {
        Self {
            window,
            buckets: VecDeque::from([(now, tallies())]),
            closing: tallies(),
            closing_since: (now, Utc::now()),
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    pub fn record(&mut self, now: Instant, resolution: &Resolution) {
        self.advance(now);
        let i = slot(resolution.category);
        if let Some((_, bucket)) = self.buckets.back_mut() {
            bucket[i].record(resolution);
        }
        self.closing[i].record(resolution);
    }

    /// Starts a new bucket when the newest is a tenth of a window old, drops buckets older
    /// than the window, and returns the closed window when one is due.
    pub fn advance(&mut self, now: Instant) -> Option<ClosedWindow> {
        let bucket = self.window / BUCKETS;
        if self
            .buckets
            .back()
            .is_none_or(|(start, _)| now.saturating_duration_since(*start) >= bucket)
        {
            self.buckets.push_back((now, tallies()));
        }
        while self
            .buckets
            .front()
            .is_some_and(|(start, _)| now.saturating_duration_since(*start) > self.window)
        {
            self.buckets.pop_front();
        }
        if now.saturating_duration_since(self.closing_since.0) < self.window {
            return None;
        }
        let closed = std::mem::replace(&mut self.closing, tallies());
        let ended_at = Utc::now();
        let started_at = std::mem::replace(&mut self.closing_since, (now, ended_at)).1;
        Some(ClosedWindow {
            started_at,
            ended_at,
            categories: Category::ALL
                .iter()
                .zip(&closed)
                .map(|(category, tally)| tally.summary(Some(*category)))
                .collect(),
        })
    }

    /// The sliding window: per category, then overall.
    pub fn summary(&self) -> (Vec<CategorySummary>, CategorySummary) {
        let mut merged = tallies();
        for (_, bucket) in &self.buckets {
            for (into, from) in merged.iter_mut().zip(bucket) {
                into.merge(from);
            }
        }
        let mut overall = Tally::new();
        for tally in &merged {
            overall.merge(tally);
        }
        let categories = Category::ALL
            .iter()
            .zip(&merged)
            .map(|(category, tally)| tally.summary(Some(*category)))
            .collect();
        (categories, overall.summary(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolution(category: Category, matched: bool, kinds: Vec<Discrepancy>) -> Resolution {
        Resolution {
            id: Uuid::new_v4(),
            category,
            counts_as_expected: true,
            matched,
            discrepancies: kinds,
            websocket_latency: Some(Duration::from_millis(1)),
            realtime_latency: Some(Duration::from_millis(21)),
        }
    }

    #[test]
    fn consistency_is_matched_over_expected_and_breaches_past_the_category_threshold() {
        let t0 = Instant::now();
        let mut windows = Windows::new(Duration::from_secs(300), t0);
        for _ in 0..98 {
            windows.record(t0, &resolution(Category::Critical, true, vec![]));
        }
        let bad = resolution(
            Category::Critical,
            false,
            vec![Discrepancy::PayloadMismatch],
        );
        windows.record(t0, &bad);
        windows.record(
            t0,
            &resolution(
                Category::Critical,
                false,
                vec![Discrepancy::MissingInRealtime],
            ),
        );
        windows.record(
            t0,
            &resolution(Category::Debug, true, vec![Discrepancy::Late]),
        );
        let (categories, overall) = windows.summary();
        let critical = &categories[0];
        assert_eq!((critical.expected, critical.matched), (100, 98));
        assert_eq!(critical.consistency_percent, Some(98.0));
        assert!(critical.breached, "2% > the 1% critical threshold");
        assert_eq!(critical.discrepancies["payload_mismatch"], 1);
        assert_eq!(critical.examples["payload_mismatch"], vec![bad.id]);
        let debug = &categories[4];
        assert!(!debug.breached && debug.consistency_percent == Some(100.0));
        assert_eq!(overall.expected, 101);
        // Two significant digits: 21 ms - 1 ms within a percent.
        let difference = critical.latency_ms.difference.p50.unwrap();
        assert!((19.8..20.3).contains(&difference), "{difference}");
        assert!(
            categories[1].consistency_percent.is_none(),
            "no events, no figure"
        );
    }

    #[test]
    fn the_sliding_window_forgets_old_buckets_and_closed_windows_come_out_whole() {
        let t0 = Instant::now();
        let window = Duration::from_secs(10);
        let mut windows = Windows::new(window, t0);
        windows.record(t0, &resolution(Category::System, true, vec![]));
        assert!(windows.advance(t0 + Duration::from_secs(5)).is_none());
        windows.record(
            t0 + Duration::from_secs(5),
            &resolution(Category::System, true, vec![]),
        );
        let closed = windows.advance(t0 + window).expect("a closed window");
        assert_eq!(closed.categories[3].expected, 2);
        // Past the window the first bucket is gone from the summary.
        windows.advance(t0 + Duration::from_secs(12));
        assert_eq!(windows.summary().0[3].expected, 1);
        assert!(windows.advance(t0 + Duration::from_secs(15)).is_none());
    }
}
