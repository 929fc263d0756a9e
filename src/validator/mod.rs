//! The consistency validator: while events are dual-written (routed to Realtime as well as
//! the WebSocket path) and the `validation.enabled` flag is on, it compares what the
//! WebSocket path sent with what the Realtime table actually holds.
//!
//! ```text
//! ingest ─expect (try_send)─> validator task <── hub tap (the frames the WebSocket path sent)
//!                                   ^   └──────> read-back task ── SELECT … WHERE id = ANY($1)
//!                                   └── committed batches (ids the Realtime path committed)
//! ```
//!
//! Its inputs are channels it reads on its own task: ingest never waits for it (a full
//! channel counts the event as unchecked), a slow validator never slows the hub (its tap lags
//! like a slow subscriber, and what it missed is counted unchecked, not missing), and reading
//! rows back happens on another task so a slow target delays only the verdicts. The rules are
//! in `tracker` and the arithmetic in `window`, both pure; `run` wires them to the channels.
//! The read-back observes the committed rows themselves, so a row changed or removed in the
//! table after the write is found.

pub mod checksum;
mod run;
pub mod tracker;
pub mod window;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::config::ValidationConfig;
use crate::event::{Category, Event};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::realtime::RealtimePath;
use window::CategorySummary;

/// The validator's settings (`crate::config::ValidationConfig`).
#[derive(Debug, Clone)]
pub struct ValidatorSettings {
    /// The sliding window of the summary and the length of each stored report.
    pub window: Duration,
    /// How long after ingest an event may arrive in order; later is `late`, and past it a
    /// path that never showed the event is declared missing.
    pub order_window: Duration,
    /// Added to the order window before a path that never showed an event is declared to
    /// have lost it: the longest a healthy Realtime write may take (the longest batch linger
    /// plus the breaker's call timeout).
    pub grace: Duration,
    /// Events tracked at most at once.
    pub capacity: usize,
    /// Days stored reports are kept (0 keeps everything).
    pub report_retention_days: u32,
    /// How often verdicts, windows and alerts are brought up to date.
    pub tick: Duration,
}

impl ValidatorSettings {
    /// `write_timeout`: the Realtime breaker's call timeout.
    pub fn from_config(config: &ValidationConfig, write_timeout: Duration) -> Self {
        Self {
            window: Duration::from_secs(config.window_s.max(1)),
            order_window: Duration::from_secs(config.order_window_s.max(1)),
            grace: crate::realtime::LONGEST_LINGER + write_timeout,
            capacity: config.capacity.max(1) as usize,
            report_retention_days: config.report_retention_days,
            tick: Duration::from_millis(250),
        }
    }
}

/// An event ingest routed to Realtime, with when.
struct Expectation {
    id: Uuid,
    category: Category,
    at: Instant,
}

/// The validator now: `GET /v1/validation/summary`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ValidationSummary {
    /// Whether events are being checked now (`validation.enabled`).
    pub enabled: bool,
    pub window_s: u64,
    pub order_window_s: u64,
    pub target_consistency_percent: f64,
    /// Events waiting for one of the paths (or for the Realtime backlog to drain).
    pub pending: usize,
    /// Events not checked: over capacity, or during a gap in the validator's own view.
    pub unchecked: u64,
    pub generated_at: DateTime<Utc>,
    /// Every category together (no threshold applies).
    pub overall: CategorySummary,
    pub categories: Vec<CategorySummary>,
    /// Categories whose mismatch rate is above their threshold now.
    pub alerting: Vec<Category>,
}

struct Shared {
    enabled: AtomicBool,
    expectations: mpsc::Sender<Expectation>,
    /// Expectations dropped because the validator's queue was full.
    overflowed: AtomicU64,
    summary: ArcSwap<ValidationSummary>,
    /// Views of both paths opened when validation is switched on (before the switch returns,
    /// so no event published after it is missed), for the task to take.
    opened: std::sync::Mutex<Option<run::Views>>,
    woken: tokio::sync::Notify,
    hub: Hub,
    realtime: RealtimePath,
}

/// The validator of this instance. Cheap to clone.
#[derive(Clone)]
pub struct Validator {
    shared: Arc<Shared>,
}

/// Expectations queued for the validator task at most (a burst beyond is unchecked).
const EXPECTATION_QUEUE: usize = 65_536;

impl Validator {
    /// Starts the validator's tasks; it checks nothing until enabled.
    pub fn start(
        settings: ValidatorSettings,
        hub: &Hub,
        realtime: &RealtimePath,
        metrics: Metrics,
        control: PgPool,
        shutdown: CancellationToken,
    ) -> Self {
        let (expectations, receiver) = mpsc::channel(EXPECTATION_QUEUE);
        let shared = Arc::new(Shared {
            enabled: AtomicBool::new(false),
            expectations,
            overflowed: AtomicU64::new(0),
            summary: ArcSwap::from_pointee(run::empty_summary(&settings)),
            opened: std::sync::Mutex::new(None),
            woken: tokio::sync::Notify::new(),
            hub: hub.clone(),
            realtime: realtime.clone(),
        });
        tokio::spawn(run::run(
            shared.clone(),
            settings,
            receiver,
            run::Links {
                hub: hub.clone(),
                realtime: realtime.clone(),
                metrics,
                control,
            },
            shutdown,
        ));
        Self { shared }
    }

    pub fn enabled(&self) -> bool {
        self.shared.enabled.load(Ordering::Relaxed)
    }

    /// Follows the `validation.enabled` flag (or its pin).
    pub fn set_enabled(&self, enabled: bool) {
        if enabled && !self.shared.enabled.load(Ordering::Relaxed) {
            let views = run::Views::open(&self.shared.hub, &self.shared.realtime);
            *self.shared.opened.lock().unwrap_or_else(|e| e.into_inner()) = Some(views);
            self.shared.woken.notify_one();
        }
        if self.shared.enabled.swap(enabled, Ordering::Relaxed) != enabled {
            tracing::info!(
                enabled,
                "consistency validation {}",
                if enabled { "enabled" } else { "disabled" }
            );
        }
    }

    /// Ingest routed `event` to Realtime (called before the hub publishes it): compare the
    /// paths for it. Never waits.
    pub fn expect(&self, event: &Event) {
        if !self.enabled() {
            return;
        }
        let expectation = Expectation {
            id: event.id,
            category: event.category,
            at: Instant::now(),
        };
        if self.shared.expectations.try_send(expectation).is_err() {
            self.shared.overflowed.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn summary(&self) -> Arc<ValidationSummary> {
        self.shared.summary.load_full()
    }
}
