//! Client connections and event streams that the server refused or cut: the connection cap,
//! the header-read timeout, the send timeout, the per-key stream cap, the `Origin` check and
//! the liveness pings. Each refusal or cut is counted here with its reason and logged once
//! here, so the metric and the log line cannot disagree; refusals that come in floods (the
//! connection cap) are logged at most once per [`WARN_EVERY`], with the count since.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::listed::Listed;

/// Least time between two warnings about refused connections.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Why a connection or a stream was refused or closed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CutReason {
    /// `SWITCHYARD_MAX_CONNECTIONS` connections were open already.
    MaxConnections,
    /// The client did not send a request's headers within `SWITCHYARD_HEADER_READ_TIMEOUT_MS`
    /// (or left a keep-alive connection idle that long).
    HeaderTimeout,
    /// A write to the client waited longer than `SWITCHYARD_SEND_TIMEOUT_MS`: it stopped reading.
    SendTimeout,
    /// The key (or anonymous address) had `SWITCHYARD_MAX_STREAMS_PER_KEY` streams open.
    StreamsPerKey,
    /// The WebSocket upgrade came from an origin not in `SWITCHYARD_ALLOWED_ORIGINS`.
    Origin,
    /// The client answered no ping for two ping intervals.
    Unresponsive,
}

impl CutReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CutReason::MaxConnections => "max_connections",
            CutReason::HeaderTimeout => "header_timeout",
            CutReason::SendTimeout => "send_timeout",
            CutReason::StreamsPerKey => "streams_per_key",
            CutReason::Origin => "origin",
            CutReason::Unresponsive => "unresponsive",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StreamLabels {
    protocol: &'static str,
    reason: &'static str,
}

pub struct ConnectionMetrics {
    open: Gauge,
    refused: Family<ReasonLabels, Counter>,
    closed: Family<ReasonLabels, Counter>,
    streams_refused: Family<ReasonLabels, Counter>,
    streams_closed: Family<StreamLabels, Counter>,
    started: Instant,
    /// Seconds since `started` before which no refusal warning is logged again.
    next_warning_s: AtomicU64,
    /// Refusals since the last warning.
    unwarned: AtomicU64,
}

impl ConnectionMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let open = Gauge::default();
        registry.register(
            "switchyard_connections_open",
            "Client TCP connections open now (HTTP, SSE and WebSocket)",
            open.clone(),
        );
        let refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "switchyard_connections_refused",
            "Client connections refused at accept, by reason (max_connections)",
            Listed(refused.clone()),
        );
        let closed = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "switchyard_connections_closed",
            "Client connections the server cut, by reason (header_timeout, send_timeout)",
            Listed(closed.clone()),
        );
        let streams_refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "switchyard_streams_refused",
            "Event streams (/v1/ws, /v1/stream, /ws, /events) refused, by reason (streams_per_key, origin)",
            Listed(streams_refused.clone()),
        );
        let streams_closed = Family::<StreamLabels, Counter>::default();
        registry.register(
            "switchyard_streams_closed",
            "Event streams the server closed on a stalled or silent client, by protocol and reason (send_timeout, unresponsive)",
            Listed(streams_closed.clone()),
        );
        drop(refused.get_or_create(&ReasonLabels {
            reason: CutReason::MaxConnections.as_str(),
        }));
        for reason in [CutReason::HeaderTimeout, CutReason::SendTimeout] {
            drop(closed.get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            }));
        }
        for reason in [CutReason::StreamsPerKey, CutReason::Origin] {
            drop(streams_refused.get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            }));
        }
        Self {
            open,
            refused,
            closed,
            streams_refused,
            streams_closed,
            started: Instant::now(),
            next_warning_s: AtomicU64::new(0),
            unwarned: AtomicU64::new(0),
        }
    }

    /// Counts a connection as open until the returned guard is dropped.
    pub fn opened(&self) -> OpenConnection {
        self.open.inc();
        OpenConnection(self.open.clone())
    }

    /// A connection refused at accept; warns at most once per [`WARN_EVERY`].
    pub fn refused(&self, reason: CutReason, limit: u32) {
        self.refused
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
        let refused = self.unwarned.fetch_add(1, Ordering::Relaxed) + 1;
        let now_s = self.started.elapsed().as_secs();
        let due = self.next_warning_s.load(Ordering::Relaxed);
        if now_s >= due
            && self
                .next_warning_s
                .compare_exchange(
                    due,
                    now_s + WARN_EVERY.as_secs(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.unwarned.fetch_sub(refused, Ordering::Relaxed);
            tracing::warn!(
                reason = reason.as_str(),
                limit,
                refused,
                "refusing client connections: SWITCHYARD_MAX_CONNECTIONS reached"
            );
        }
    }

    /// A connection the server cut (logged by the caller, which knows the peer).
    pub fn closed(&self, reason: CutReason) {
        self.closed
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// An event stream refused before it opened.
    pub fn stream_refused(&self, reason: CutReason) {
        self.streams_refused
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// An event stream the server closed on its client, logged here.
    pub fn stream_closed(&self, protocol: &'static str, reason: CutReason) {
        self.streams_closed
            .get_or_create(&StreamLabels {
                protocol,
                reason: reason.as_str(),
            })
            .inc();
        tracing::info!(
            protocol,
            reason = reason.as_str(),
            "closed an event stream on its client"
        );
    }
}

/// The figures above as one document (`/v1/status/stream`'s `connections`).
#[derive(Debug, Clone, Copy, Default, serde::Serialize, utoipa::ToSchema)]
pub struct ConnectionTotals {
    /// Client TCP connections open now (HTTP, SSE, WebSocket).
    pub open: i64,
    /// Connections refused at accept since start (`SWITCHYARD_MAX_CONNECTIONS`).
    pub refused_total: u64,
    /// Connections cut since start: headers not sent in time, or a client that stopped reading.
    pub header_timeouts_total: u64,
    pub send_timeouts_total: u64,
    /// Event streams refused since start: too many for their key, or an origin not allowed.
    pub streams_refused_total: u64,
    /// Event streams closed on a stalled (send timeout) or silent (no pong) client since start.
    pub streams_closed_total: u64,
}

/// The `protocol` labels of the event streams.
const STREAM_PROTOCOLS: [&str; 4] = ["ws", "sse", "legacy_ws", "ingest_ws"];

impl ConnectionMetrics {
    pub fn totals(&self) -> ConnectionTotals {
        let reason = |family: &Family<ReasonLabels, Counter>, reason: CutReason| {
            family
                .get_or_create(&ReasonLabels {
                    reason: reason.as_str(),
                })
                .get()
        };
        let streams_closed = STREAM_PROTOCOLS
            .iter()
            .flat_map(|protocol| {
                [CutReason::SendTimeout, CutReason::Unresponsive].map(|reason| {
                    self.streams_closed
                        .get_or_create(&StreamLabels {
                            protocol,
                            reason: reason.as_str(),
                        })
                        .get()
                })
            })
            .sum();
        ConnectionTotals {
            open: self.open.get(),
            refused_total: reason(&self.refused, CutReason::MaxConnections),
            header_timeouts_total: reason(&self.closed, CutReason::HeaderTimeout),
            send_timeouts_total: reason(&self.closed, CutReason::SendTimeout),
            streams_refused_total: reason(&self.streams_refused, CutReason::StreamsPerKey)
                + reason(&self.streams_refused, CutReason::Origin),
            streams_closed_total: streams_closed,
        }
    }
}

/// An open client connection; dropping it counts the connection as closed.
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}
