//! The Realtime path against real Postgres: a target database of its own, reached through the
//! fault proxy, and a control store of its own. Events are real hub events; the breaker is the
//! real breaker with short timeouts and a consecutive-failures policy. Every test ends by
//! comparing the target table's ids with the submitted ones: each exactly once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchyard::breaker::{
    Breaker, BreakerConfig, BreakerMode, BreakerState, FailurePolicy, Transition,
};
use switchyard::hub::{Hub, Published};
use switchyard::realtime::{RealtimePath, RealtimeSettings, RealtimeStatus, TargetHealth};
use switchyard::store;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::support::proxy::{Fault, FaultProxy};
use crate::support::wait::{self, Look, Patience};
use crate::support::{Credential, POSTGRES_ADDR, TestDatabase, WAIT, spawn_app};

const CALL_TIMEOUT: Duration = Duration::from_millis(300);
const FAILURES_TO_OPEN: u32 = 3;

/// A Realtime path with its own control store and target, the target behind a fault proxy.
struct Rig {
    path: RealtimePath,
    breaker: Breaker,
    transitions: broadcast::Receiver<Transition>,
    hub: Hub,
    proxy: FaultProxy,
    target: TestDatabase,
    control: TestDatabase,
    shutdown: CancellationToken,
}

fn breaker_config() -> BreakerConfig {
    BreakerConfig {
        failure_policy: FailurePolicy::ConsecutiveFailures(FAILURES_TO_OPEN),
        call_timeout: CALL_TIMEOUT,
        backoff_initial: Duration::from_millis(200),
        backoff_max: Duration::from_millis(400),
        jitter: 0.0,
        half_open_permits: 2,
        half_open_successes: 2,
        // These drills count the failure policy's failures (FAILURES_TO_OPEN per outage); the
        // stall rule, which opens on the first timeout, has its own tests in src/breaker/.
        stall_trip: false,
    }
}

impl Rig {
    /// Starts the path with the proxy in `fault` from the start; `tune` may change settings.
    async fn start(fault: Fault, tune: impl FnOnce(&mut RealtimeSettings)) -> Self {
        let control = TestDatabase::new();
        let control_pool = store::connect_and_migrate(&control.url())
            .await
            .expect("a control store");
        let target = TestDatabase::new();
        let proxy = FaultProxy::start(POSTGRES_ADDR.parse().unwrap())
            .await
            .unwrap();
        proxy.set(fault);
        let hub = Hub::new(100_000, 1024);
        let url = format!("postgres://postgres@{}/{}", proxy.address(), target.name);
        let mut settings = RealtimeSettings::new(url, hub.epoch());
        settings.replay_rate_per_s = 2_000;
        settings.probe_interval = Duration::from_millis(100);
        tune(&mut settings);
        let shutdown = CancellationToken::new();
        let breaker = Breaker::start("realtime", breaker_config(), shutdown.clone());
        let transitions = breaker.subscribe();
        let control_url = control.url();
        let started = RealtimePath::start(
            settings,
            control_pool,
            &control_url,
            breaker.clone(),
            shutdown.clone(),
        );
        let path = tokio::time::timeout(WAIT, started)
            .await
            .expect("start does not wait for the target");
        Self {
            path,
            breaker,
            transitions,
            hub,
            proxy,
            target,
            control,
            shutdown,
        }
    }

    /// Publishes `n` events on the hub, across every category, and submits them.
    fn submit(&self, n: usize) -> Vec<Uuid> {
        const TYPES: [&str; 5] = [
            "cache_metrics",
            "session_start",
            "health_check",
            "stats",
            "debug",
        ];
        let events: Vec<Arc<Published>> = (0..n)
            .map(|i| {
                let body = json!({"event_type": TYPES[i % 5], "source": "realtime-test", "data": {"i": i}});
                let event = switchyard::event::parse_event(&body, None, chrono::Utc::now()).unwrap();
                self.hub.publish(event);
                self.hub.recent(1).pop().unwrap()
            })
            .collect();
        for published in &events {
            self.path.submit(published.clone());
        }
        events.iter().map(|p| p.event.id).collect()
    }

    /// Waits for the breaker's next transition into `state`, skipping others.
    async fn wait_for_transition(&mut self, state: BreakerState) -> Transition {
        let transitions = &mut self.transitions;
        let waited = tokio::time::timeout(WAIT, async {
            loop {
                match transitions.recv().await {
                    Ok(transition) if transition.to == state => return transition,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => panic!("the breaker is gone"),
                }
            }
        });
        waited.await.unwrap_or_else(|_| {
            panic!(
                "the breaker never became {state}; it is {}",
                self.breaker.state()
            )
        })
    }

    /// Waits until `done` holds for the path's status.
    async fn wait_until(
        &self,
        what: &str,
        done: impl Fn(&RealtimeStatus) -> bool,
    ) -> RealtimeStatus {
        wait::until(what, async || {
            let status = self.path.status();
            Look::ready_if(done(&status), status)
        })
        .await
    }

    /// Waits until the target holds every id in `ids`; returns its ids (a direct connection,
    /// not through the proxy).
    async fn wait_for_rows(&self, ids: &[Uuid]) -> Vec<Uuid> {
        let want: HashSet<Uuid> = ids.iter().copied().collect();
        self.target
            .realtime_ids_holding(&want)
            .await
            .unwrap_or_else(|| {
                panic!(
                    "the target never held every event: {:#?}",
                    self.path.status()
                )
            })
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.path.stopped())
            .await
            .expect("the path stops");
    }
}

/// Events the target has committed, live or replayed (a first write can time out while it
/// creates the database and applies the schema; its events are then replayed).
fn committed(status: &RealtimeStatus) -> u64 {
    status.written + status.replayed
}

/// Every submitted id exactly once, and nothing else.
fn assert_exactly_once(rows: &[Uuid], submitted: &[Uuid]) {
    let distinct: HashSet<Uuid> = rows.iter().copied().collect();
    assert_eq!(rows.len(), distinct.len(), "a row is duplicated");
    assert_eq!(distinct, submitted.iter().copied().collect::<HashSet<_>>());
}

#[tokio::test]
async fn a_blackholed_target_opens_the_breaker_and_the_backlog_replays_every_event_once() {
    let mut rig = Rig::start(Fault::Pass, |_| {}).await;
    let mut submitted = rig.submit(100);
    rig.wait_until("the first events to be written", |s| committed(s) == 100)
        .await;

    rig.proxy.set(Fault::Blackhole);
    for _ in 0..20 {
        submitted.extend(rig.submit(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rig.wait_for_transition(BreakerState::Open).await;
    let held_before = rig.path.status().backlog_depth;
    submitted.extend(rig.submit(100));
    let status = rig
        .wait_until("new events to wait in the backlog", |s| {
            s.backlog_depth >= held_before + 100
        })
        .await;
    assert_eq!(status.target, TargetHealth::Down);
    assert!(
        status.failed_batches >= u64::from(FAILURES_TO_OPEN),
        "{status:#?}"
    );

    rig.proxy.restore();
    let closed = rig.wait_for_transition(BreakerState::Closed).await;
    assert_eq!(
        closed.from,
        BreakerState::HalfOpen,
        "it closes through half-open trials"
    );
    let rows = rig.wait_for_rows(&submitted).await;
    assert_exactly_once(&rows, &submitted);
    let status = rig
        .wait_until("the backlog to drain", |s| s.backlog_depth == 0)
        .await;
    assert!(status.replayed >= 300, "{status:#?}");
    assert_eq!((status.dropped, status.dead_lettered), (0, 0));
    rig.stop().await;
}

#[tokio::test]
async fn a_slow_target_opens_the_breaker_and_nothing_is_lost_or_duplicated() {
    let mut rig = Rig::start(Fault::Pass, |_| {}).await;
    let mut submitted = rig.submit(50);
    rig.wait_until("the first events to be written", |s| committed(s) == 50)
        .await;

    rig.proxy.set(Fault::Latency(CALL_TIMEOUT * 2));
    submitted.extend(rig.submit(200));
    rig.wait_for_transition(BreakerState::Open).await;
    assert!(
        rig.breaker.status().calls.timeout >= 1,
        "slow writes time out"
    );

    rig.proxy.restore();
    rig.wait_for_transition(BreakerState::Closed).await;
    // Writes that timed out may have committed late: the replay skips those rows.
    let rows = rig.wait_for_rows(&submitted).await;
    assert_exactly_once(&rows, &submitted);
    rig.stop().await;
}

#[tokio::test]
async fn a_flapping_target_reopens_the_breaker_each_time_and_still_loses_nothing() {
    let mut rig = Rig::start(Fault::Pass, |_| {}).await;
    let mut submitted = rig.submit(50);
    rig.wait_until("the first events to be written", |s| committed(s) == 50)
        .await;

    // Three outages, each reset at the TCP level, each followed by a recovery: the breaker
    // opens, probes, closes, and opens again; events keep arriving throughout.
    for outage in 0..3 {
        rig.proxy.set(Fault::Reset);
        for _ in 0..10 {
            submitted.extend(rig.submit(10));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        rig.wait_for_transition(BreakerState::Open).await;
        submitted.extend(rig.submit(20));
        rig.proxy.restore();
        let closed = rig.wait_for_transition(BreakerState::Closed).await;
        assert_eq!(closed.from, BreakerState::HalfOpen, "outage {outage}");
    }
    let rows = rig.wait_for_rows(&submitted).await;
    assert_exactly_once(&rows, &submitted);
    let status = rig
        .wait_until("the backlog to drain", |s| s.backlog_depth == 0)
        .await;
    assert!(
        status.failed_batches >= 3 * u64::from(FAILURES_TO_OPEN),
        "each outage tripped the breaker: {status:#?}"
    );
    assert_eq!((status.dropped, status.dead_lettered), (0, 0));
    rig.stop().await;
}

#[tokio::test]
async fn the_backlog_drains_even_while_arrivals_outpace_the_replay_rate() {
    // Replay at 50 events/s while 200 events/s keep arriving behind the backlog.
    let rig = Rig::start(Fault::Pass, |s| s.replay_rate_per_s = 50).await;
    rig.wait_until("the target to be known up", |s| {
        s.target == TargetHealth::Up
    })
    .await;
    rig.breaker.set_mode(BreakerMode::ForceOpen, "test", None);
    let mut submitted = rig.submit(100);
    rig.wait_until("the outage's events to be held", |s| s.backlog_depth == 100)
        .await;
    rig.breaker.set_mode(BreakerMode::Auto, "test", None);
    // Each look first submits 10 more and lets 50 ms pass: the arrivals set the pace.
    Patience::DEFAULT
        .every(Duration::ZERO)
        .until("the backlog to drain while arrivals continue", async || {
            submitted.extend(rig.submit(10));
            tokio::time::sleep(Duration::from_millis(50)).await;
            let status = rig.path.status();
            Look::ready_if(status.backlog_depth == 0, status)
        })
        .await;
    let rows = rig.wait_for_rows(&submitted).await;
    assert_exactly_once(&rows, &submitted);
    rig.stop().await;
}

#[tokio::test]
async fn a_replay_of_events_the_target_already_has_never_duplicates_a_row() {
    let rig = Rig::start(Fault::Pass, |_| {}).await;
    rig.wait_until("the schema to be applied", |s| s.target == TargetHealth::Up)
        .await;
    rig.breaker.set_mode(BreakerMode::ForceOpen, "test", None);
    let submitted = rig.submit(60);
    rig.wait_until("every event to be held", |s| s.backlog_depth == 60)
        .await;

    // As if a write had committed but its answer never came back: half the events are there.
    let target = sqlx::PgPool::connect(&rig.target.url()).await.unwrap();
    let already = &submitted[..30];
    sqlx::query(
        "INSERT INTO monitoring.monitoring_events (id, event_type, \"timestamp\", source, data)
         SELECT id, 'stats', now(), 'earlier-write', '{}' FROM UNNEST($1::uuid[]) AS t(id)",
    )
    .bind(already)
    .execute(&target)
    .await
    .expect("insert the earlier write's rows");

    rig.breaker.set_mode(BreakerMode::Auto, "test", None);
    let rows = rig.wait_for_rows(&submitted).await;
    assert_exactly_once(&rows, &submitted);
    let status = rig
        .wait_until("the replay to finish", |s| s.backlog_depth == 0)
        .await;
    assert_eq!(status.skipped_duplicates, 30, "{status:#?}");
    // The rows already there are a replay, not rows the target refuses.
    assert_eq!(
        (status.content_refusals, status.quarantined),
        (0, 0),
        "{status:#?}"
    );
    rig.stop().await;
}

#[tokio::test]
async fn backlog_overflow_spills_to_the_dead_letter_and_is_replayed_when_the_target_is_back() {
    let rig = Rig::start(Fault::Pass, |s| s.backlog_capacity = 40).await;
    rig.wait_until("the target to be known up", |s| {
        s.target == TargetHealth::Up
    })
    .await;
    rig.breaker.set_mode(BreakerMode::ForceOpen, "test", None);
    let submitted = rig.submit(100);
    let status = rig
        .wait_until("the overflow to reach the dead letter", |s| {
            s.dead_lettered == 60
        })
        .await;
    assert_eq!((status.backlog_depth, status.dropped), (40, 0));
    let control = sqlx::PgPool::connect(&rig.control.url()).await.unwrap();
    assert_eq!(store::dead_letter::count(&control).await.unwrap(), 60);

    rig.breaker.set_mode(BreakerMode::Auto, "test", None);
    let rows = rig.wait_for_rows(&submitted).await;
    assert_exactly_once(&rows, &submitted);
    let status = rig
        .wait_until("the dead letter to drain", |s| !s.dead_letter_waiting)
        .await;
    assert_eq!((status.replayed, status.dead_letter_replayed), (40, 60));
    assert_eq!(store::dead_letter::count(&control).await.unwrap(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn a_target_down_at_start_gets_its_database_and_schema_when_it_comes_back() {
    let mut rig = Rig::start(Fault::Blackhole, |_| {}).await;
    let submitted = rig.submit(30);
    rig.wait_for_transition(BreakerState::Open).await;
    assert_eq!(rig.path.status().target, TargetHealth::Down);

    rig.proxy.restore();
    rig.wait_for_transition(BreakerState::Closed).await;
    let rows = rig.wait_for_rows(&submitted).await;
    assert_exactly_once(&rows, &submitted);
    rig.stop().await;
}

#[tokio::test]
async fn overflow_without_a_dead_letter_is_counted_as_dropped() {
    let database = TestDatabase::new();
    let pool = store::connect_and_migrate(&database.url()).await.unwrap();
    let hub = Hub::new(1000, 16);
    let mut settings = RealtimeSettings::new(database.url(), hub.epoch());
    settings.backlog_capacity = 10;
    let shutdown = CancellationToken::new();
    let breaker = Breaker::start("realtime", breaker_config(), shutdown.clone());
    breaker.set_mode(BreakerMode::ForceOpen, "test", None);
    let path =
        RealtimePath::start(settings, pool, &database.url(), breaker, shutdown.clone()).await;
    let mut announced = path.subscribe_committed();
    for i in 0..15 {
        let body = json!({"event_type": "stats", "source": format!("s{i}")});
        hub.publish(switchyard::event::parse_event(&body, None, chrono::Utc::now()).unwrap());
        path.submit(hub.recent(1).pop().unwrap());
    }
    let status = wait::until("every event held or counted", async || {
        let status = path.status();
        Look::ready_if(status.backlog_depth + status.dropped as usize == 15, status)
    })
    .await;
    assert_eq!((status.backlog_depth, status.dropped), (10, 5));
    // Each dropped event is announced, so the validator reports it missing at once.
    let mut dropped = Vec::new();
    while dropped.len() < 5 {
        let batch = tokio::time::timeout(WAIT, announced.recv())
            .await
            .expect("an announcement")
            .expect("the channel");
        assert_eq!(batch.kind, switchyard::realtime::CommitKind::Dropped);
        dropped.extend(batch.ids);
    }
    assert_eq!(dropped.len(), 5);
    assert_eq!(serde_json::to_value(&status).unwrap()["overflow"], "drop");
    shutdown.cancel();
    path.stopped().await;
}

#[tokio::test]
async fn the_realtime_status_is_served_to_readers() {
    let app = spawn_app().await;
    let response = app.get("/v1/realtime", app.admin()).await;
    assert_eq!(response.status().as_u16(), 200);
    let status: serde_json::Value = response.json().await.unwrap();
    for field in [
        "target",
        "queue_depth",
        "backlog_depth",
        "oldest_backlog_age_s",
        "replayed",
        "dropped",
        "write_latency",
    ] {
        assert!(
            status.get(field).is_some(),
            "{field} missing from {status:#}"
        );
    }
    assert_eq!(status["classes"].as_array().map(Vec::len), Some(3));
    assert!(
        status["work_queue"].is_null(),
        "no shared work queue with the in-process hub: {status:#}"
    );
    assert_eq!(
        status["overflow"], "drop",
        "the default target is the control store"
    );
    let anonymous = app.get("/v1/realtime", Credential::Nothing).await;
    assert_eq!(anonymous.status().as_u16(), 401);
}
