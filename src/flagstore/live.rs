//! The live flag set of one instance: the compiled [`Snapshot`] in an `ArcSwap`, kept current
//! by Postgres `NOTIFY` (followed through `store::listen`) and a periodic resync, and the
//! stream of changes it announces.
//!
//! Evaluation reads the snapshot without locks or I/O. Every reload compares flag versions
//! with the previous load, so a change is announced once whether it arrived by this
//! instance's own write, a NOTIFY, or a resync after a missed notification. With the database
//! down the last snapshot keeps serving and is marked stale.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::Utc;
use serde::Serialize;
use sqlx::PgPool;
use sqlx::postgres::PgNotification;
use tokio::sync::{Mutex, broadcast};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::config::LegacyEnv;
use crate::flags::{Flag, FlagRecord, Pin, Snapshot, pins};
use crate::store::flags::{self as flag_store, FLAG_CHANNEL};
use crate::store::listen::{self, Follower};

/// Longest one reload may take before the snapshot counts as stale.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(3);

/// One flag that changed, as subscribers are told.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlagChange {
    pub key: String,
    /// The flag's version after the change (0 when it no longer exists).
    pub version: i64,
    pub revision: i64,
    pub archived: bool,
}

/// Where pins come from (boot-time settings).
#[derive(Debug, Clone, Default)]
pub struct PinSources {
    pub legacy: LegacyEnv,
    pub flag_env: BTreeMap<String, String>,
}

#[derive(Clone)]
pub struct LiveFlags {
    inner: Arc<Inner>,
}

struct Inner {
    snapshot: ArcSwap<Snapshot>,
    /// Every stored flag (archived too) as last loaded: what the admin API and diffs read.
    records: ArcSwap<Vec<FlagRecord>>,
    sources: PinSources,
    stale: AtomicBool,
    /// Unix milliseconds of the last successful load.
    synced_at_ms: AtomicI64,
    reload_lock: Mutex<()>,
    changes: broadcast::Sender<FlagChange>,
}

impl LiveFlags {
    /// Loads the flag set; with the database unreachable it starts from the pins alone,
    /// marked stale, and the listener catches up when the database is back.
    pub async fn load(pool: &PgPool, sources: PinSources) -> Self {
        let (changes, _) = broadcast::channel(1024);
        let (pins, _) = pins::resolve(&sources.legacy, &sources.flag_env, &[]);
        let live = Self {
            inner: Arc::new(Inner {
                snapshot: ArcSwap::from_pointee(Snapshot::compile(0, &[], &pins)),
                records: ArcSwap::from_pointee(Vec::new()),
                sources,
                stale: AtomicBool::new(true),
                synced_at_ms: AtomicI64::new(0),
                reload_lock: Mutex::new(()),
                changes,
            }),
        };
        match live.reload(pool).await {
            Ok(_) => {
                let (_, warnings) = live.resolve_pins(&live.records());
                for warning in warnings {
                    tracing::warn!(warning, "flag pin ignored");
                }
                for (key, pin) in live.snapshot().pins() {
                    tracing::info!(flag = key, variable = pin.source_variable, value = %pin.value, "flag pinned by the environment");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot load flags; serving pins only until the database is back")
            }
        }
        live
    }

    /// The current snapshot (a cheap `Arc` clone).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.load_full()
    }

    /// Every stored flag as last loaded, archived ones included.
    pub fn records(&self) -> Arc<Vec<FlagRecord>> {
        self.inner.records.load_full()
    }

    /// The pin on `key`, if the environment pins it.
    pub fn pin(&self, key: &str) -> Option<Pin> {
        self.snapshot().pin(key).cloned()
    }

    /// True when the last attempt to load from the database failed.
    pub fn is_stale(&self) -> bool {
        self.inner.stale.load(Ordering::Relaxed)
    }

    /// Seconds since the last successful load (since start when there was none).
    pub fn staleness_seconds(&self) -> f64 {
        let synced = self.inner.synced_at_ms.load(Ordering::Relaxed);
        if synced == 0 {
            return f64::INFINITY;
        }
        (Utc::now().timestamp_millis() - synced).max(0) as f64 / 1000.0
    }

    pub fn subscribe(&self) -> broadcast::Receiver<FlagChange> {
        self.inner.changes.subscribe()
    }

    fn resolve_pins(&self, records: &[FlagRecord]) -> (BTreeMap<String, Pin>, Vec<String>) {
        pins::resolve(
            &self.inner.sources.legacy,
            &self.inner.sources.flag_env,
            records,
        )
    }

    /// Reloads from the database if it holds a newer revision; announces what changed.
    /// Returns the revision now served.
    pub async fn reload(&self, pool: &PgPool) -> Result<i64, sqlx::Error> {
        let _one_at_a_time = self.inner.reload_lock.lock().await;
        // A database that stops answering (not refusing) must not hold the reload forever:
        // past the timeout the snapshot is marked stale and the next resync tries again.
        let loaded = tokio::time::timeout(RELOAD_TIMEOUT, async {
            let mut conn = pool.acquire().await?;
            flag_store::load_all(&mut conn).await
        })
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut));
        let (revision, stored) = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                self.inner.stale.store(true, Ordering::Relaxed);
                return Err(e);
            }
        };
        self.inner.stale.store(false, Ordering::Relaxed);
        self.inner
            .synced_at_ms
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
        let current = self.snapshot().revision();
        if revision <= current && current > 0 {
            return Ok(current);
        }
        let records: Vec<FlagRecord> = stored
            .into_iter()
            .filter_map(|row| match record_from_store(&row) {
                Ok(record) => Some(record),
                Err(e) => {
                    tracing::error!(flag = row.key, error = %e, "stored flag definition does not parse; skipped");
                    None
                }
            })
            .collect();
        let (pins, _) = self.resolve_pins(&records);
        let previous = self.inner.records.swap(Arc::new(records.clone()));
        self.inner
            .snapshot
            .store(Arc::new(Snapshot::compile(revision, &records, &pins)));
        // The first load at start announces nothing: nobody has seen an earlier state.
        let changes = if previous.is_empty() {
            Vec::new()
        } else {
            diff(&previous, &records, revision)
        };
        for change in changes {
            tracing::info!(
                flag = change.key,
                version = change.version,
                revision,
                "flag changed"
            );
            let _ = self.inner.changes.send(change);
        }
        Ok(revision)
    }

    /// Listens for NOTIFY and resyncs every `resync` until `shutdown`. Reconnects with backoff.
    pub fn spawn_listener(
        &self,
        pool: PgPool,
        resync: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let mut follower = SnapshotFollower {
            live: self.clone(),
            pool: pool.clone(),
        };
        tokio::spawn(async move {
            listen::follow(
                &pool,
                &[FLAG_CHANNEL],
                Some(resync),
                &mut follower,
                &shutdown,
            )
            .await;
        })
    }
}

/// Reloads the snapshot on every flag notification, resync and reconnection.
struct SnapshotFollower {
    live: LiveFlags,
    pool: PgPool,
}

impl Follower for SnapshotFollower {
    async fn caught_up(&mut self) {
        let _ = self.live.reload(&self.pool).await;
    }

    async fn notified(&mut self, _: PgNotification) {
        if let Err(e) = self.live.reload(&self.pool).await {
            tracing::warn!(error = %e, "flag reload after NOTIFY failed");
        }
    }

    async fn resync(&mut self) {
        if let Err(e) = self.live.reload(&self.pool).await {
            tracing::warn!(error = %e, "flag resync failed; serving the last snapshot (stale)");
        }
    }

    fn disconnected(&mut self, error: &sqlx::Error, connecting: bool, retry: Duration) {
        self.live.inner.stale.store(true, Ordering::Relaxed);
        if connecting {
            tracing::warn!(error = %error, retry_ms = retry.as_millis() as u64, "flag listener cannot connect");
        } else {
            tracing::warn!(error = %error, "flag listener lost its connection");
        }
    }
}

/// A stored row as a typed record.
pub fn record_from_store(row: &flag_store::StoredFlag) -> Result<FlagRecord, serde_json::Error> {
    let mut flag: Flag = serde_json::from_value(row.definition.clone())?;
    flag.archived = row.archived;
    Ok(FlagRecord {
        flag,
        version: row.version,
        updated_at: row.updated_at,
    })
}

/// Flags whose version or archived state differs between two loads.
fn diff(before: &[FlagRecord], after: &[FlagRecord], revision: i64) -> Vec<FlagChange> {
    let old: BTreeMap<&str, (i64, bool)> = before
        .iter()
        .map(|r| (r.flag.key.as_str(), (r.version, r.flag.archived)))
        .collect();
    let mut changes: Vec<FlagChange> = after
        .iter()
        .filter(|r| old.get(r.flag.key.as_str()) != Some(&(r.version, r.flag.archived)))
        .map(|r| FlagChange {
            key: r.flag.key.as_str().to_string(),
            version: r.version,
            revision,
            archived: r.flag.archived,
        })
        .collect();
    let now: std::collections::BTreeSet<&str> = after.iter().map(|r| r.flag.key.as_str()).collect();
    changes.extend(
        old.keys()
            .filter(|k| !now.contains(*k))
            .map(|k| FlagChange {
                key: k.to_string(),
                version: 0,
                revision,
                archived: true,
            }),
    );
    changes
}
