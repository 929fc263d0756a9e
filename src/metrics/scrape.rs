//! The figures read at scrape time from what the service already keeps: the hub's counters,
//! each breaker's status, the Realtime path's status and write latency, the flag snapshot.
//! Nothing here is on a hot path: it runs once per scrape.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::Sources;
use crate::breaker::BreakerState;
use crate::realtime::{BatchClass, TargetHealth};

type Labels = Vec<(&'static str, String)>;

pub(super) struct Scraped {
    sources: Sources,
}

impl Scraped {
    pub fn new(sources: Sources) -> Self {
        Self { sources }
    }
}

impl fmt::Debug for Scraped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scraped")
    }
}

fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs.into_iter().map(|(k, v)| (k, v.to_string())).collect()
}

/// One family: its descriptor, then every sample (none is fine: the family is still listed).
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: Vec<(Labels, M)>,
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in &samples {
        value.encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> fmt::Result {
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    ConstCounter::new(value).encode(encoder.encode_descriptor(
        name,
        help,
        None,
        MetricType::Counter,
    )?)
}

fn class_label(class: BatchClass) -> &'static str {
    match class {
        BatchClass::High => "high",
        BatchClass::Medium => "medium",
        BatchClass::Low => "low",
    }
}

impl Collector for Scraped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        self.broadcast(&mut encoder)?;
        self.breakers(&mut encoder)?;
        self.realtime(&mut encoder)?;
        self.flags(&mut encoder)
    }
}

impl Scraped {
    /// Events by path and outcome, and the hub's subscriber troubles.
    fn broadcast(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let hub = self.sources.hub.counters();
        let read = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        let realtime = self.sources.realtime.status();
        let path = |path: &str, outcome: &str, n: u64| {
            (
                labels([("path", path), ("outcome", outcome)]),
                ConstCounter::new(n),
            )
        };
        family(
            encoder,
            "switchyard_broadcast_events",
            "Events by delivery path and outcome: websocket/published (every accepted event), realtime/written (live batches), replayed (from the backlog), dead_letter_replayed, duplicate (already in the target), dead_lettered, dropped, quarantined (refused by the target for its content, set aside with the error)",
            MetricType::Counter,
            vec![
                path("websocket", "published", read(&hub.published)),
                path("realtime", "written", realtime.written),
                path("realtime", "replayed", realtime.replayed),
                path(
                    "realtime",
                    "dead_letter_replayed",
                    realtime.dead_letter_replayed,
                ),
                path("realtime", "duplicate", realtime.skipped_duplicates),
                path("realtime", "dead_lettered", realtime.dead_lettered),
                path("realtime", "dropped", realtime.dropped),
                path("realtime", "quarantined", realtime.quarantined),
            ],
        )?;
        counter(
            encoder,
            "switchyard_subscribers_lagged",
            "Times a subscriber fell a whole queue behind and was sent a `lagged` notice (every protocol)",
            read(&hub.lagged),
        )?;
        counter(
            encoder,
            "switchyard_subscribers_dropped",
            "Subscribers closed because they fell behind past the history ring (every protocol)",
            read(&hub.dropped_subscribers),
        )?;
        gauge(
            encoder,
            "switchyard_hub_head_offset",
            "Offset of the newest event in this epoch",
            self.sources.hub.head() as f64,
        )?;
        match self.sources.hub.stream() {
            Some(engine) => gauge(
                encoder,
                "switchyard_nats_connected",
                "1 while this instance reaches its NATS JetStream stream, 0 while publishes are refused (NATS mode only)",
                if engine.connected() { 1.0 } else { 0.0 },
            ),
            None => Ok(()),
        }
    }

    fn breakers(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let statuses: Vec<_> = self
            .sources
            .breakers
            .all()
            .iter()
            .map(|b| b.status())
            .collect();
        let mut states = Vec::new();
        let mut calls = Vec::new();
        let mut latency = Vec::new();
        for status in &statuses {
            for state in BreakerState::ALL {
                let on = if status.state == state { 1 } else { 0 };
                let labels = labels([("breaker", &status.name), ("state", state.as_str())]);
                states.push((labels, ConstGauge::new(on)));
            }
            let c = status.calls;
            for (outcome, n) in [
                ("success", c.success),
                ("failure", c.failure),
                ("timeout", c.timeout),
                ("rejected", c.rejected),
            ] {
                let labels = labels([("breaker", &status.name), ("outcome", outcome)]);
                calls.push((labels, ConstCounter::new(n)));
            }
            let p = status.latency_ms;
            for (quantile, ms) in [("0.5", p.p50), ("0.95", p.p95), ("0.99", p.p99)] {
                if let Some(ms) = ms {
                    let labels = labels([("breaker", &status.name), ("quantile", quantile)]);
                    latency.push((labels, ConstGauge::new(ms / 1000.0)));
                }
            }
        }
        let per_breaker = |value: fn(&crate::breaker::BreakerStatus) -> f64| {
            statuses
                .iter()
                .map(|s| (labels([("breaker", &s.name)]), ConstGauge::new(value(s))))
                .collect::<Vec<_>>()
        };
        family(
            encoder,
            "switchyard_breaker_state",
            "1 for the state each breaker is in, 0 for the others",
            MetricType::Gauge,
            states,
        )?;
        family(
            encoder,
            "switchyard_breaker_calls",
            "Calls through each breaker by outcome (success, failure, timeout, rejected); restart from 0 when the breaker is reset",
            MetricType::Counter,
            calls,
        )?;
        family(
            encoder,
            "switchyard_breaker_failure_rate",
            "Failures / calls over the breaker policy's window, 0 to 1",
            MetricType::Gauge,
            per_breaker(|s| s.failure_rate),
        )?;
        family(
            encoder,
            "switchyard_breaker_consecutive_failures",
            "Failures in a row right now",
            MetricType::Gauge,
            per_breaker(|s| f64::from(s.consecutive_failures)),
        )?;
        family(
            encoder,
            "switchyard_breaker_call_latency_seconds",
            "Latency quantiles of the calls each breaker ran (0.5, 0.95, 0.99), since start or reset",
            MetricType::Gauge,
            latency,
        )
    }

    fn realtime(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let status = self.sources.realtime.status();
        let up = if status.target == TargetHealth::Up {
            1.0
        } else {
            0.0
        };
        gauge(
            encoder,
            "switchyard_realtime_target_up",
            "1 when the latest write that reached the Realtime target succeeded",
            up,
        )?;
        gauge(
            encoder,
            "switchyard_realtime_queue_depth",
            "Events waiting in the queue in front of the batcher",
            status.queue_depth as f64,
        )?;
        gauge(
            encoder,
            "switchyard_realtime_queue_capacity",
            "Capacity of the queue in front of the batcher",
            status.queue_capacity as f64,
        )?;
        gauge(
            encoder,
            "switchyard_realtime_backlog_depth",
            "Events held in memory for replay (the fallback while the target fails)",
            status.backlog_depth as f64,
        )?;
        gauge(
            encoder,
            "switchyard_realtime_backlog_bytes",
            "Bytes the events held in memory for replay hold: parsed event, encodings, allocations (bounded by SWITCHYARD_REALTIME_BACKLOG_BYTES)",
            status.backlog_bytes as f64,
        )?;
        gauge(
            encoder,
            "switchyard_hub_history_bytes",
            "Bytes the events in the hub's history ring hold: parsed event, encodings, allocations (bounded by SWITCHYARD_HISTORY_BYTES)",
            self.sources.hub.history_held().1 as f64,
        )?;
        if let Some(queue) = status.work_queue {
            gauge(
                encoder,
                "switchyard_realtime_work_queue_waiting",
                "Routed events in the shared NATS stream not yet handed to any instance (the backlog of a scale-out deployment)",
                queue.waiting as f64,
            )?;
            gauge(
                encoder,
                "switchyard_realtime_work_queue_unacknowledged",
                "Routed events handed to an instance and not yet committed (acknowledged)",
                queue.unacknowledged as f64,
            )?;
        }
        gauge(
            encoder,
            "switchyard_realtime_backlog_capacity",
            "Events the backlog may hold before overflow",
            status.backlog_capacity as f64,
        )?;
        gauge(
            encoder,
            "switchyard_realtime_backlog_oldest_age_seconds",
            "Age of the oldest event in the backlog (0 when it is empty)",
            status.oldest_backlog_age_s.unwrap_or(0.0),
        )?;
        let failed = vec![
            (
                labels([("reason", "failed")]),
                ConstCounter::new(status.failed_batches),
            ),
            (
                labels([("reason", "rejected")]),
                ConstCounter::new(status.rejected_batches),
            ),
        ];
        family(
            encoder,
            "switchyard_realtime_failed_batches",
            "Batches not written: failed (error or timeout) or rejected (breaker not admitting); their events went to the backlog",
            MetricType::Counter,
            failed,
        )?;
        let per_class = |value: fn(&crate::realtime::ClassStatus) -> f64| {
            status
                .classes
                .iter()
                .map(|c| {
                    (
                        labels([("class", class_label(c.class))]),
                        ConstGauge::new(value(c)),
                    )
                })
                .collect::<Vec<_>>()
        };
        family(
            encoder,
            "switchyard_realtime_batch_size",
            "Events that fill a batch now, by batch class (adaptive)",
            MetricType::Gauge,
            per_class(|c| c.batch_size as f64),
        )?;
        family(
            encoder,
            "switchyard_realtime_linger_seconds",
            "How long a batch waits for more events now, by batch class (adaptive)",
            MetricType::Gauge,
            per_class(|c| c.linger_ms as f64 / 1000.0),
        )?;
        family(
            encoder,
            "switchyard_realtime_batch_waiting",
            "Events in each class's open batch",
            MetricType::Gauge,
            per_class(|c| c.waiting as f64),
        )?;
        counter(
            encoder,
            "switchyard_realtime_retention_deleted_rows",
            "Realtime rows deleted by retention",
            status.retention_deleted,
        )?;
        let spool = &status.spool;
        gauge(
            encoder,
            "switchyard_realtime_spool_files",
            "Spool files waiting in SWITCHYARD_SPOOL_DIR to be written to the Realtime target",
            spool.files_waiting as f64,
        )?;
        counter(
            encoder,
            "switchyard_realtime_spooled_events",
            "Events this run kept in the local spool at shutdown",
            spool.spooled,
        )?;
        counter(
            encoder,
            "switchyard_realtime_spool_replayed_events",
            "Events this run replayed from the local spool into the Realtime target",
            spool.replayed,
        )?;
        let latency = self.sources.realtime.write_latency().snapshot();
        let metric = encoder.encode_descriptor(
            "switchyard_realtime_write_duration_seconds",
            "Duration of each successful write (one multi-row INSERT) to the Realtime target",
            None,
            MetricType::Histogram,
        )?;
        let mut metric = metric;
        metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            latency.sum_seconds,
            latency.count,
            &latency.buckets,
            None,
        )
    }

    fn flags(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let live = &self.sources.flags;
        let snapshot = live.snapshot();
        gauge(
            encoder,
            "switchyard_flags_revision",
            "Revision of the flag snapshot this instance evaluates",
            snapshot.revision() as f64,
        )?;
        gauge(
            encoder,
            "switchyard_flags",
            "Flags in the snapshot",
            snapshot.flags().count() as f64,
        )?;
        gauge(
            encoder,
            "switchyard_flags_snapshot_stale",
            "1 while the snapshot could not be refreshed from the control store (served as is)",
            if live.is_stale() { 1.0 } else { 0.0 },
        )?;
        gauge(
            encoder,
            "switchyard_flags_snapshot_age_seconds",
            "Seconds since the flags were last loaded from the control store (+Inf before the first load)",
            live.staleness_seconds(),
        )
    }
}
