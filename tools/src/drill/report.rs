//! The drill's report: what was published and delivered, what Realtime holds, consistency per
//! category outside the fault window, the times to open, roll back, close and drain, the
//! timeline of stage changes and breaker transitions, and the promises checked against them.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Mutex, broadcast};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use super::DrillArgs;
use super::dashboards::Seen;
use super::plans::{PlanState, Plans};
use crate::failover::compare;
use crate::failover::stream::Batch;
use switchyard::breaker::Transition;
use switchyard::realtime::RealtimeStatus;

/// The category of each of the producer's event types (`stream::TYPES`, in order).
const CATEGORY_OF_TYPE: [&str; 5] = [
    "critical",
    "performance",
    "user_activity",
    "system",
    "debug",
];
/// The consistency the legacy plan promised (REFERENCE.md section 1).
const CONSISTENCY_TARGET: f64 = 99.9;

/// Stage changes, transitions and the drill's own steps, in seconds since the start.
#[derive(Clone)]
pub struct Timeline {
    start: Instant,
    entries: Arc<Mutex<Vec<(f64, String)>>>,
    /// Print each entry to stderr as it happens (the text report's progress).
    progress: bool,
}

impl Timeline {
    pub fn start(progress: bool) -> Self {
        Self {
            start: Instant::now(),
            entries: Arc::default(),
            progress,
        }
    }

    pub async fn note(&self, what: &str) {
        let at = self.start.elapsed().as_secs_f64();
        if self.progress {
            eprintln!("  {at:>7.2} s  {what}");
        }
        self.entries.lock().await.push((at, what.to_string()));
    }

    pub fn follow_breaker(
        &self,
        mut transitions: broadcast::Receiver<Transition>,
    ) -> JoinHandle<()> {
        let timeline = self.clone();
        tokio::spawn(async move {
            while let Ok(t) = transitions.recv().await {
                let what = format!("breaker {} -> {}: {}", t.from, t.to, t.reason);
                timeline.note(&what).await;
            }
        })
    }

    /// Notes each plan's change of status or percentage (read every 100 ms).
    pub fn follow_plans(&self, plans: Plans) -> JoinHandle<()> {
        let timeline = self.clone();
        tokio::spawn(async move {
            let mut last: BTreeMap<String, (String, u64)> = BTreeMap::new();
            loop {
                if let Ok(states) = plans.snapshot().await {
                    for plan in states {
                        let now = (plan.status.clone(), plan.percentage);
                        if last.get(&plan.flag) != Some(&now) {
                            let what = format!("{} {} at {}%", plan.flag, now.0, now.1);
                            timeline.note(&what).await;
                            last.insert(plan.flag, now);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    }

    pub async fn entries(&self) -> Vec<(f64, String)> {
        self.entries.lock().await.clone()
    }
}

/// What the report is built from.
pub struct Inputs<'a> {
    pub args: &'a DrillArgs,
    pub elapsed_s: f64,
    pub sent: &'a [Batch],
    pub accepted: &'a [Uuid],
    pub routed: &'a HashSet<Uuid>,
    pub rows: &'a [Uuid],
    pub seen: &'a [Seen],
    pub fault_window: (Instant, Instant),
    pub status: &'a RealtimeStatus,
    pub backlog_peak: usize,
    pub plans: &'a [PlanState],
    pub open_ms: f64,
    pub rollback_ms: f64,
    pub close_ms: f64,
    pub drain_ms: f64,
    pub timeline: Vec<(f64, String)>,
}

#[derive(Debug, Serialize)]
pub struct Dashboard {
    pub delivered: usize,
    pub missing: usize,
    /// Up to three accepted ids this dashboard never received, to look up.
    pub missing_examples: Vec<Uuid>,
    pub duplicated: usize,
    pub transport_changes: Vec<String>,
    pub lagged: usize,
    pub after_sentinel: usize,
    pub unreadable: usize,
}

#[derive(Debug, Serialize)]
pub struct DrillReport {
    pub rate: u32,
    pub subscribers: u32,
    pub elapsed_s: f64,
    pub published: usize,
    pub failed_requests: usize,
    pub dashboards: Vec<Dashboard>,
    pub routed_to_realtime: usize,
    pub realtime_rows: usize,
    pub realtime_missing: usize,
    pub realtime_unexpected: usize,
    pub realtime_duplicated: usize,
    pub dropped: u64,
    pub replayed: u64,
    pub backlog_peak: usize,
    /// Per category, outside the fault window: routed events present on both paths, percent.
    pub consistency_percent: BTreeMap<&'static str, Option<f64>>,
    pub fault_to_open_ms: f64,
    pub open_to_rolled_back_ms: f64,
    pub restore_to_closed_ms: f64,
    pub closed_to_drained_ms: f64,
    pub plans: Vec<PlanState>,
    pub timeline: Vec<(f64, String)>,
}

impl DrillReport {
    pub fn build(i: Inputs<'_>) -> Self {
        let dashboards: Vec<Dashboard> = i
            .seen
            .iter()
            .map(|seen| {
                let (missing, duplicated) = compare(i.accepted, seen.ids.iter().copied());
                let got: HashSet<Uuid> = seen.ids.iter().copied().collect();
                let missing_examples = (i.accepted.iter())
                    .filter(|id| !got.contains(id))
                    .take(3)
                    .copied()
                    .collect();
                Dashboard {
                    delivered: seen.ids.len(),
                    missing,
                    missing_examples,
                    duplicated,
                    transport_changes: seen.transport_changes.clone(),
                    lagged: seen.lagged,
                    after_sentinel: seen.after_sentinel,
                    unreadable: seen.unreadable,
                }
            })
            .collect();
        let routed: Vec<Uuid> = i.routed.iter().copied().collect();
        let (realtime_missing, realtime_duplicated) = compare(&routed, i.rows.iter().copied());
        let realtime_unexpected = i.rows.iter().filter(|id| !i.routed.contains(id)).count();
        Self {
            rate: i.args.rate,
            subscribers: i.args.subscribers,
            elapsed_s: i.elapsed_s,
            published: i.accepted.len(),
            failed_requests: i.sent.iter().filter(|b| !b.ok).count(),
            consistency_percent: consistency(&i),
            dashboards,
            routed_to_realtime: i.routed.len(),
            realtime_rows: i.rows.len(),
            realtime_missing,
            realtime_unexpected,
            realtime_duplicated,
            dropped: i.status.dropped,
            replayed: i.status.replayed,
            backlog_peak: i.backlog_peak,
            fault_to_open_ms: i.open_ms,
            open_to_rolled_back_ms: i.rollback_ms,
            restore_to_closed_ms: i.close_ms,
            closed_to_drained_ms: i.drain_ms,
            plans: i.plans.to_vec(),
            timeline: i.timeline,
        }
    }

    /// Every promise of the drill that did not hold, in words; empty when all held.
    pub fn broken_promises(&self) -> Vec<String> {
        let mut broken = Vec::new();
        let mut check = |held: bool, promise: String| {
            if !held {
                broken.push(promise);
            }
        };
        check(
            self.failed_requests == 0,
            format!("{} publish requests failed", self.failed_requests),
        );
        for (n, d) in self.dashboards.iter().enumerate() {
            check(
                d.missing == 0 && d.duplicated == 0,
                format!(
                    "dashboard {n}: {} missing, {} duplicated",
                    d.missing, d.duplicated
                ),
            );
            check(
                d.transport_changes.iter().any(|t| t == "websocket"),
                format!("dashboard {n} was never told to move to websocket"),
            );
        }
        check(
            self.realtime_missing == 0
                && self.realtime_duplicated == 0
                && self.realtime_unexpected == 0,
            format!(
                "Realtime: {} routed ids missing, {} duplicated, {} not routed",
                self.realtime_missing, self.realtime_duplicated, self.realtime_unexpected
            ),
        );
        check(
            self.dropped == 0,
            format!("{} events dropped from the backlog", self.dropped),
        );
        for (category, percent) in &self.consistency_percent {
            check(
                percent.is_none_or(|p| p >= CONSISTENCY_TARGET),
                format!("{category}: consistency {percent:?}% < {CONSISTENCY_TARGET}%"),
            );
        }
        let stepped_back = |flag: &str| {
            self.timeline
                .iter()
                .any(|(_, what)| what.starts_with(flag) && what.ends_with("rolled_back at 10%"))
        };
        for plan in &self.plans {
            check(
                stepped_back(&plan.flag),
                format!("{} never rolled back to 10%", plan.flag),
            );
            check(
                plan.status == "completed" && plan.percentage == 100,
                format!(
                    "{} ended {} at {}%",
                    plan.flag, plan.status, plan.percentage
                ),
            );
        }
        broken
    }

    pub fn print(&self) {
        println!(
            "switchyard drill: {} events/s over 5 categories, {} dashboards, {:.1} s",
            self.rate, self.subscribers, self.elapsed_s
        );
        let delivered = self.dashboards.iter().map(|d| d.delivered);
        let (min, max) = (
            delivered.clone().min().unwrap_or(0),
            delivered.max().unwrap_or(0),
        );
        let missing: usize = self.dashboards.iter().map(|d| d.missing).sum();
        let lagged: usize = self.dashboards.iter().map(|d| d.lagged).sum();
        let late: usize = self.dashboards.iter().map(|d| d.after_sentinel).sum();
        let unreadable: usize = self.dashboards.iter().map(|d| d.unreadable).sum();
        let duplicated: usize = self.dashboards.iter().map(|d| d.duplicated).sum();
        println!(
            "published {} ({} requests failed); delivered per dashboard {min}..{max}; missing {missing}, duplicated {duplicated}; lag notices {lagged}; after the sentinel {late}; unreadable frames {unreadable}",
            self.published, self.failed_requests
        );
        println!(
            "Realtime: {} routed, {} rows; missing {}, duplicated {}, not routed {}; dropped {}, replayed {} (backlog peak {})",
            self.routed_to_realtime,
            self.realtime_rows,
            self.realtime_missing,
            self.realtime_duplicated,
            self.realtime_unexpected,
            self.dropped,
            self.replayed,
            self.backlog_peak
        );
        for (category, percent) in &self.consistency_percent {
            let shown = percent.map_or("-".to_string(), |p| format!("{p:.3}%"));
            println!("consistency outside the fault window, {category:<13} {shown}");
        }
        println!(
            "fault -> open {:.0} ms; open -> rolled back {:.0} ms; restore -> closed {:.0} ms; closed -> drained {:.0} ms",
            self.fault_to_open_ms,
            self.open_to_rolled_back_ms,
            self.restore_to_closed_ms,
            self.closed_to_drained_ms
        );
        println!("timeline:");
        for (at, what) in &self.timeline {
            println!("  {at:>7.2} s  {what}");
        }
        let broken = self.broken_promises();
        if broken.is_empty() {
            println!("every promise held");
        } else {
            for promise in broken {
                println!("BROKEN: {promise}");
            }
            let examples: Vec<String> = (self.dashboards.iter())
                .flat_map(|d| d.missing_examples.iter().map(Uuid::to_string))
                .take(5)
                .collect();
            if !examples.is_empty() {
                println!("missing ids, for example: {}", examples.join(", "));
            }
        }
    }
}

/// Per category, among the events routed to Realtime outside the fault window: the share
/// present on both paths (the first dashboard and the Realtime table).
fn consistency(i: &Inputs<'_>) -> BTreeMap<&'static str, Option<f64>> {
    let (from, to) = i.fault_window;
    let on_websocket: HashSet<Uuid> = i
        .seen
        .first()
        .map(|s| s.ids.iter().copied().collect())
        .unwrap_or_default();
    let on_realtime: HashSet<Uuid> = i.rows.iter().copied().collect();
    let mut counts: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    for batch in i
        .sent
        .iter()
        .filter(|b| b.sent_at < from || b.sent_at >= to)
    {
        for ((id, routed), kind) in batch.ids.iter().zip(&batch.routed).zip(&batch.types) {
            let entry = counts.entry(CATEGORY_OF_TYPE[*kind]).or_default();
            if *routed {
                entry.0 += 1;
                entry.1 += usize::from(on_websocket.contains(id) && on_realtime.contains(id));
            }
        }
    }
    counts
        .into_iter()
        .map(|(category, (routed, both))| {
            let percent = (routed > 0).then(|| both as f64 * 100.0 / routed as f64);
            (category, percent)
        })
        .collect()
}
