//! Prometheus metrics: one registry per application, rendered at `GET /metrics` in the
//! Prometheus text format.
//!
//! The registry lives in the application's state, not in a process-global recorder, so the
//! integration tests (many apps in one process) read each app's own figures. Most figures are
//! read at scrape time from what the service already keeps ([`scrape`]: the hub's counters,
//! the breakers' status, the Realtime path's status, the flag snapshot); counters and
//! histograms are kept here only where nothing else counts: events ingested by category and
//! source, subscribers by protocol, HTTP requests ([`http`]), flag evaluations and changes,
//! breaker transitions ([`follow`]), Realtime write latency ([`latency`]) and the validator's
//! figures ([`validation`]). Every name starts with `switchyard_`; the README lists them all.

pub mod connections;
mod follow;
pub mod http;
pub mod latency;
mod listed;
pub mod panics;
pub mod rollouts;
mod scrape;
mod sources;
pub mod validation;

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::event::Event;
use crate::flags::{ErrorCode, Evaluation, Reason};
use crate::ingest::Receipt;
pub use latency::LatencyHistogram;
pub use panics::{PanicMetrics, PanicSite};
use sources::SourceCap;
pub use sources::{MAX_SOURCES, OTHER_SOURCE};
pub use validation::ValidationMetrics;

/// `Content-Type` of the exposition: the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What the scrape-time figures are read from: the parts of the application that keep them.
#[derive(Clone)]
pub struct Sources {
    pub hub: crate::hub::Hub,
    pub breakers: crate::breaker::Registry,
    pub realtime: crate::realtime::RealtimePath,
    pub flags: crate::flagstore::LiveFlags,
}

/// The subscriber protocols, as the `protocol` label says them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `GET /v1/ws`.
    Ws,
    /// `GET /v1/stream`.
    Sse,
    /// The legacy dashboard socket `GET /ws`.
    LegacyWs,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::Ws, Protocol::Sse, Protocol::LegacyWs];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Ws => "ws",
            Protocol::Sse => "sse",
            Protocol::LegacyWs => "legacy_ws",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct IngestLabels {
    category: &'static str,
    source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ProtocolLabels {
    protocol: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EvaluationLabels {
    flag: String,
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FlagLabels {
    flag: String,
}

/// This application's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    ingested: Family<IngestLabels, Counter>,
    sources: SourceCap,
    subscribers: Family<ProtocolLabels, Gauge>,
    subscriptions: Family<ProtocolLabels, Counter>,
    evaluations: Family<EvaluationLabels, Counter>,
    http: http::HttpMetrics,
    validation: ValidationMetrics,
    rollouts: rollouts::RolloutMetrics,
    connections: connections::ConnectionMetrics,
    panics: PanicMetrics,
}

impl Metrics {
    /// Registers every family and starts the tasks that count breaker transitions and flag
    /// changes (until `shutdown`).
    pub fn new(sources: Sources, shutdown: CancellationToken) -> Self {
        let mut registry = Registry::default();
        let ingested = Family::<IngestLabels, Counter>::default();
        registry.register(
            "switchyard_events_ingested",
            "Events accepted (not idempotent repeats), by category and source (the first 100 sources by name, then `other`)",
            listed::Listed(ingested.clone()),
        );
        let subscribers = Family::<ProtocolLabels, Gauge>::default();
        registry.register(
            "switchyard_subscribers",
            "Subscriber connections open now, by protocol",
            listed::Listed(subscribers.clone()),
        );
        let subscriptions = Family::<ProtocolLabels, Counter>::default();
        registry.register(
            "switchyard_subscriptions",
            "Subscriber connections opened since start, by protocol",
            listed::Listed(subscriptions.clone()),
        );
        // Zero rather than absent before the first connection, so dashboards show a line.
        for protocol in Protocol::ALL {
            let labels = ProtocolLabels {
                protocol: protocol.as_str(),
            };
            drop(subscribers.get_or_create(&labels));
            drop(subscriptions.get_or_create(&labels));
        }
        let evaluations = Family::<EvaluationLabels, Counter>::default();
        registry.register(
            "switchyard_flag_evaluations",
            "Flag evaluations served over the API (/v1/evaluate, OFREP), by flag and reason; `unknown` for flags that do not exist",
            listed::Listed(evaluations.clone()),
        );
        let flag_changes = Family::<FlagLabels, Counter>::default();
        registry.register(
            "switchyard_flag_changes",
            "Flag changes this instance applied (its own writes and other instances' via NOTIFY), by flag",
            listed::Listed(flag_changes.clone()),
        );
        let http = http::HttpMetrics::register(&mut registry);
        let validation = ValidationMetrics::register(&mut registry);
        let rollouts = rollouts::RolloutMetrics::register(&mut registry);
        let connections = connections::ConnectionMetrics::register(&mut registry);
        let panics = PanicMetrics::register(&mut registry);
        let transitions = follow::register_transitions(&mut registry);
        follow::spawn(&sources, transitions, flag_changes, shutdown);
        registry.register_collector(Box::new(scrape::Scraped::new(sources)));
        Self {
            inner: Arc::new(Inner {
                registry,
                ingested,
                sources: SourceCap::default(),
                subscribers,
                subscriptions,
                evaluations,
                http,
                validation,
                rollouts,
                connections,
                panics,
            }),
        }
    }

    /// The exposition, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// The labels each event will be counted under once accepted: taken before the events move
    /// into ingest. Pair with [`Metrics::count_ingested`].
    pub fn ingest_labels(&self, events: &[Event]) -> Vec<IngestLabel> {
        events
            .iter()
            .map(|event| self.ingest_label(event))
            .collect()
    }

    /// The label of one event (the legacy ingest socket takes them one by one).
    pub fn ingest_label(&self, event: &Event) -> IngestLabel {
        IngestLabel(IngestLabels {
            category: event.category.as_str(),
            source: self.inner.sources.label(&event.source),
        })
    }

    /// Counts the events that were accepted, not the idempotent repeats.
    pub fn count_ingested(&self, labels: Vec<IngestLabel>, receipts: &[Receipt]) {
        for (label, receipt) in labels.into_iter().zip(receipts) {
            if !receipt.duplicate {
                self.inner.ingested.get_or_create(&label.0).inc();
            }
        }
    }

    /// Counts a subscriber connection as open until the returned guard is dropped.
    pub fn subscriber(&self, protocol: Protocol) -> SubscriberGuard {
        let labels = ProtocolLabels {
            protocol: protocol.as_str(),
        };
        self.inner.subscriptions.get_or_create(&labels).inc();
        let gauge = self.inner.subscribers.get_or_create_owned(&labels);
        gauge.inc();
        SubscriberGuard(gauge)
    }

    /// Counts one evaluation served to a client. A flag that does not exist is counted as
    /// `unknown`: its key comes from the client, and would let clients grow the label set.
    pub fn count_evaluation(&self, evaluation: &Evaluation) {
        let flag = if evaluation.error_code == Some(ErrorCode::FlagNotFound) {
            "unknown".to_string()
        } else {
            evaluation.key.clone()
        };
        let labels = EvaluationLabels {
            flag,
            reason: reason_label(evaluation.reason),
        };
        self.inner.evaluations.get_or_create(&labels).inc();
    }

    pub fn http(&self) -> &http::HttpMetrics {
        &self.inner.http
    }

    /// The validator's figures (consistency per category, discrepancies).
    /// Panics caught and survived.
    pub fn panics(&self) -> &PanicMetrics {
        &self.inner.panics
    }

    pub fn rollouts(&self) -> &rollouts::RolloutMetrics {
        &self.inner.rollouts
    }

    pub fn validation(&self) -> &ValidationMetrics {
        &self.inner.validation
    }

    /// Connections and streams refused or cut, with their reasons; open connections.
    pub fn connections(&self) -> &connections::ConnectionMetrics {
        &self.inner.connections
    }
}

/// The label an event is counted under; opaque outside this module.
pub struct IngestLabel(IngestLabels);

/// An open subscriber connection; dropping it counts the connection as closed.
pub struct SubscriberGuard(Gauge);

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The reason as the evaluation API spells it.
fn reason_label(reason: Reason) -> &'static str {
    match reason {
        Reason::Static => "STATIC",
        Reason::TargetingMatch => "TARGETING_MATCH",
        Reason::Split => "SPLIT",
        Reason::Disabled => "DISABLED",
        Reason::Default => "DEFAULT",
        Reason::Error => "ERROR",
    }
}
