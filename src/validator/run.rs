//! The validator's task: feeds the tracker from its channels, asks the read-back task for
//! committed rows, closes windows into stored reports, raises and clears alerts, and publishes
//! the summary.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::PgPool;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::checksum::{Checksum, Json, Payload};
use super::tracker::{Gaps, Held, Resolution, Tracker};
use super::window::{CategorySummary, ClosedWindow, TARGET_CONSISTENCY_PERCENT, Windows};
use super::{Expectation, Shared, ValidationSummary, ValidatorSettings};
use crate::event::Category;
use crate::hub::{AlertState, Hub, Published, SystemFrame, Tap};
use crate::metrics::Metrics;
use crate::realtime::{CommitKind, CommittedBatch, RealtimePath, StoredRow};
use crate::store;

/// Ids per read-back query at most.
const READ_BACK_CHUNK: usize = 1_000;
/// A read-back that takes longer is abandoned and retried.
const READ_BACK_TIMEOUT: Duration = Duration::from_secs(5);

/// The validator's views of the two paths. Held only while there is something to check: with
/// validation off and nothing pending they are dropped, so the hub does not wake the validator
/// for every event and the Realtime path stops announcing commits to nobody.
#[derive(Default)]
pub(super) struct Views {
    tap: Option<Tap>,
    committed: Option<broadcast::Receiver<CommittedBatch>>,
}

impl Views {
    pub(super) fn open(hub: &Hub, realtime: &RealtimePath) -> Self {
        Self {
            tap: Some(hub.tap()),
            committed: Some(realtime.subscribe_committed()),
        }
    }
}

/// What the validator reads from and reports to.
pub(super) struct Links {
    pub hub: Hub,
    pub realtime: RealtimePath,
    pub metrics: Metrics,
    pub control: PgPool,
}

/// Committed ids to read back, with when they were committed.
type Requests = Vec<(Uuid, Instant)>;

enum ReadBack {
    Rows(Requests, Vec<StoredRow>),
    /// The target did not answer: ask again later.
    Failed(Requests),
}

struct Validation {
    shared: Arc<Shared>,
    settings: ValidatorSettings,
    tracker: Tracker,
    windows: Windows,
    gaps: Gaps,
    alerting: [bool; 5],
    to_read: Requests,
    hub: Hub,
    metrics: Metrics,
    control: PgPool,
}

pub(super) async fn run(
    shared: Arc<Shared>,
    settings: ValidatorSettings,
    mut expectations: mpsc::Receiver<Expectation>,
    links: Links,
    shutdown: CancellationToken,
) {
    let Links {
        hub,
        realtime,
        metrics,
        control,
    } = links;
    let (requests, request_rx) = mpsc::channel::<Requests>(16);
    let (results_tx, mut results) = mpsc::channel::<ReadBack>(16);
    tokio::spawn(read_back(realtime.clone(), request_rx, results_tx));
    let now = Instant::now();
    let mut v = Validation {
        tracker: Tracker::new(settings.capacity, settings.order_window, settings.grace),
        windows: Windows::new(settings.window, now),
        gaps: Gaps::default(),
        alerting: [false; 5],
        to_read: Vec::new(),
        shared,
        settings,
        hub,
        metrics,
        control,
    };
    let mut tick = tokio::time::interval(v.settings.tick);
    let mut retention = tokio::time::interval(Duration::from_secs(3600));
    let mut views = Views::default();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            () = v.shared.woken.notified() => v.watch(&mut views),
            Some(expectation) = expectations.recv() => v.expect(expectation),
            sent = next(views.tap.as_mut().map(|tap| &mut tap.receiver)) => match sent {
                Ok(published) => v.saw_websocket(&published, &mut expectations),
                Err(RecvError::Lagged(_)) => v.gaps.websocket = Some(Instant::now()),
                Err(RecvError::Closed) => return,
            },
            committed = next(views.committed.as_mut()) => match committed {
                Ok(batch) if batch.kind == CommitKind::Dropped => {
                    for id in batch.ids {
                        let resolution = v.tracker.row_absent(id);
                        v.record(resolution);
                    }
                }
                Ok(batch) if batch.kind == CommitKind::Quarantined => {
                    for id in batch.ids {
                        let resolution = v.tracker.row_quarantined(id);
                        v.record(resolution);
                    }
                }
                Ok(batch) => {
                    let at = batch.committed_at.into_std();
                    v.to_read.extend(batch.ids.into_iter().map(|id| (id, at)));
                }
                Err(RecvError::Lagged(_)) => v.gaps.realtime = Some(Instant::now()),
                Err(RecvError::Closed) => return,
            },
            Some(result) = results.recv() => v.read_back_done(result),
            _ = tick.tick() => {
                v.request_read_back(&requests);
                v.tick(Held {
                    backlog: realtime.holds_backlog(),
                    above: realtime.work_queue_floor(),
                });
                let enabled = v.shared.enabled.load(Ordering::Relaxed);
                if !enabled && v.tracker.pending() == 0 && v.to_read.is_empty() {
                    views = Views::default();
                }
            }
            _ = retention.tick() => v.apply_retention(),
        }
    }
}

/// The next message of `receiver`, or never while there is none.
async fn next<T: Clone>(receiver: Option<&mut broadcast::Receiver<T>>) -> Result<T, RecvError> {
    match receiver {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

impl Validation {
    /// Takes the views `Validator::set_enabled` opened, unless the task still holds views
    /// that never closed (validation switched off and on with events pending).
    fn watch(&mut self, views: &mut Views) {
        let opened = self
            .shared
            .opened
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(opened) = opened
            && views.tap.is_none()
        {
            *views = opened;
        }
    }

    fn expect(&mut self, expectation: Expectation) {
        self.tracker
            .expect(expectation.id, expectation.category, expectation.at);
    }

    fn saw_websocket(&mut self, published: &Published, queued: &mut mpsc::Receiver<Expectation>) {
        let id = published.event.id;
        if !self.tracker.knows(&id) {
            // Ingest queues the expectation before it publishes: if it is not taken in yet,
            // it is in the channel now.
            while let Ok(expectation) = queued.try_recv() {
                self.expect(expectation);
            }
            if !self.tracker.knows(&id) {
                return;
            }
        }
        let checksum = frame_checksum(published);
        let event = &published.event;
        let resolution = self.tracker.saw_websocket(
            id,
            event.category,
            published.offset,
            Instant::now(),
            checksum,
        );
        self.record(resolution);
    }

    fn request_read_back(&mut self, requests: &mpsc::Sender<Requests>) {
        while !self.to_read.is_empty() {
            let n = self.to_read.len().min(READ_BACK_CHUNK);
            let chunk: Requests = self.to_read.drain(..n).collect();
            if let Err(mpsc::error::TrySendError::Full(chunk)) = requests.try_send(chunk) {
                self.to_read.splice(0..0, chunk);
                return;
            }
        }
    }

    fn read_back_done(&mut self, result: ReadBack) {
        let (requested, rows) = match result {
            ReadBack::Rows(requested, rows) => (requested, rows),
            ReadBack::Failed(requested) => {
                self.to_read.extend(requested);
                return;
            }
        };
        let found: HashSet<Uuid> = rows.iter().map(|row| row.id).collect();
        let committed: HashMap<Uuid, Instant> = requested.iter().copied().collect();
        let committed_at = |id: Uuid| committed.get(&id).copied();
        for row in &rows {
            let category = row
                .category
                .as_deref()
                .and_then(Category::parse)
                .unwrap_or(Category::System);
            let offset = row
                .sequence_id
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(0);
            let at = committed_at(row.id).unwrap_or_else(Instant::now);
            let resolution =
                self.tracker
                    .saw_realtime(row.id, category, offset, at, row_checksum(row));
            self.record(resolution);
        }
        for (id, _) in requested.iter().filter(|(id, _)| !found.contains(id)) {
            let resolution = self.tracker.row_absent(*id);
            self.record(resolution);
        }
    }

    fn record(&mut self, resolution: Option<Resolution>) {
        if let Some(resolution) = resolution {
            self.windows.record(Instant::now(), &resolution);
            self.count(&resolution);
        }
    }

    fn count(&self, resolution: &Resolution) {
        let kinds: Vec<&'static str> = resolution
            .discrepancies
            .iter()
            .map(|d| d.as_str())
            .collect();
        self.metrics.validation().record(
            resolution.category,
            resolution.counts_as_expected,
            &kinds,
        );
    }

    fn tick(&mut self, held: Held) {
        let now = Instant::now();
        for resolution in self.tracker.expire(now, held, self.gaps) {
            self.windows.record(now, &resolution);
            self.count(&resolution);
        }
        if let Some(closed) = self.windows.advance(now) {
            self.store_report(closed);
        }
        let (categories, overall) = self.windows.summary();
        for summary in &categories {
            if let (Some(category), Some(percent)) = (summary.category, summary.consistency_percent)
            {
                self.metrics
                    .validation()
                    .set_consistency(category, percent / 100.0);
            }
        }
        self.alert(&categories);
        let overflowed = self.shared.overflowed.load(Ordering::Relaxed);
        self.shared.summary.store(Arc::new(ValidationSummary {
            enabled: self.shared.enabled.load(Ordering::Relaxed),
            window_s: self.settings.window.as_secs(),
            order_window_s: self.settings.order_window.as_secs(),
            target_consistency_percent: TARGET_CONSISTENCY_PERCENT,
            pending: self.tracker.pending(),
            unchecked: self.tracker.unchecked() + overflowed,
            generated_at: Utc::now(),
            overall,
            alerting: categories
                .iter()
                .filter(|c| c.breached)
                .filter_map(|c| c.category)
                .collect(),
            categories,
        }));
    }

    /// A `validation_alert` system frame (and a log line) when a category crosses its
    /// threshold, and again when it is back under it.
    fn alert(&mut self, categories: &[CategorySummary]) {
        for (i, summary) in categories.iter().enumerate() {
            if summary.breached == self.alerting[i] {
                continue;
            }
            self.alerting[i] = summary.breached;
            if let Some(category) = summary.category {
                self.metrics
                    .validation()
                    .set_alerting(category, summary.breached);
            }
            let category = summary.category.map(Category::as_str).unwrap_or("all");
            let state = if summary.breached {
                AlertState::Firing
            } else {
                AlertState::Resolved
            };
            if summary.breached {
                tracing::warn!(category, mismatch_percent = ?summary.mismatch_percent, threshold_percent = ?summary.threshold_percent, "validation alert: {category} mismatch above its threshold");
            } else {
                tracing::info!(category, "validation alert resolved: {category}");
            }
            self.hub.publish_system(&SystemFrame::ValidationAlert {
                state,
                category,
                consistency_percent: summary.consistency_percent,
                mismatch_percent: summary.mismatch_percent,
                threshold_percent: summary.threshold_percent,
                window_s: self.settings.window.as_secs(),
                discrepancies: summary.discrepancies.clone(),
                examples: summary.examples.clone(),
            });
        }
    }

    fn store_report(&self, closed: ClosedWindow) {
        if closed
            .categories
            .iter()
            .all(|c| c.expected == 0 && c.discrepancies.values().all(|n| *n == 0))
        {
            return;
        }
        let pool = self.control.clone();
        tokio::spawn(async move {
            if let Err(e) = store::validation::insert_reports(&pool, &closed).await {
                tracing::warn!(error = %e, window_end = %closed.ended_at, "validation report not stored");
            }
        });
    }

    fn apply_retention(&self) {
        let days = self.settings.report_retention_days;
        if days == 0 {
            return;
        }
        let pool = self.control.clone();
        tokio::spawn(async move {
            let Some(cutoff) = chrono::Duration::try_days(i64::from(days))
                .and_then(|age| Utc::now().checked_sub_signed(age))
            else {
                return;
            };
            match store::validation::delete_reports_before(&pool, cutoff).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "pruned validation reports past retention"),
                Err(e) => tracing::warn!(error = %e, "validation report retention failed"),
            }
        });
    }
}

/// The checksum of the payload the WebSocket path sent: the event its frame was encoded from
/// (the hub encodes the frame once, from this very value, and sends those bytes to every
/// subscriber; re-parsing them would double the validator's cost for no new information).
fn frame_checksum(published: &Published) -> Checksum {
    let event = &published.event;
    Payload {
        category: event.category.as_str(),
        event_type: &event.event_type,
        source: &event.source,
        timestamp: event.timestamp,
        data: Json::Object(&event.data),
        metadata: Json::Object(&event.metadata),
    }
    .checksum()
}

/// The checksum of the payload the Realtime table holds.
fn row_checksum(row: &StoredRow) -> Checksum {
    Payload {
        category: row.category.as_deref().unwrap_or(""),
        event_type: &row.event_type,
        source: &row.source,
        timestamp: row.timestamp,
        data: Json::Value(&row.data),
        metadata: Json::Value(&row.metadata),
    }
    .checksum()
}

/// Reads committed rows back, one request at a time, off the validator's task.
async fn read_back(
    realtime: RealtimePath,
    mut requests: mpsc::Receiver<Requests>,
    results: mpsc::Sender<ReadBack>,
) {
    while let Some(requested) = requests.recv().await {
        let ids: Vec<Uuid> = requested.iter().map(|(id, _)| *id).collect();
        let result = match tokio::time::timeout(READ_BACK_TIMEOUT, realtime.read_rows(&ids)).await {
            Ok(Ok(rows)) => ReadBack::Rows(requested, rows),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "validator read-back failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                ReadBack::Failed(requested)
            }
            Err(_) => ReadBack::Failed(requested),
        };
        if results.send(result).await.is_err() {
            return;
        }
    }
}

pub(super) fn empty_summary(settings: &ValidatorSettings) -> ValidationSummary {
    let (categories, overall) = Windows::new(settings.window, Instant::now()).summary();
    ValidationSummary {
        enabled: false,
        window_s: settings.window.as_secs(),
        order_window_s: settings.order_window.as_secs(),
        target_consistency_percent: TARGET_CONSISTENCY_PERCENT,
        pending: 0,
        unchecked: 0,
        generated_at: Utc::now(),
        overall,
        categories,
        alerting: Vec::new(),
    }
}
