//! The governed path end to end, through the running app: producers publish over HTTP while
//! dashboards listen on `/v1/ws`, the flags choose the strategy, and the Realtime target (a
//! database of its own) sits behind the fault proxy. Each test ends by comparing id sets: every
//! subscriber received every accepted event exactly once, and the Realtime table holds exactly
//! the events whose receipt says they were routed there, each once.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use switchyard::breaker::{BreakerState, Transition};
use switchyard::realtime::RealtimeStatus;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::support::proxy::{Fault, FaultProxy};
use crate::support::wait::{self, Look};
use crate::support::ws::{Ws, next_event};
use crate::support::{TargetedApp, TestApp, TestDatabase, WAIT, spawn_app_with_target};

/// One event type per category, so every route is exercised.
const TYPES: [&str; 5] = ["error", "cache_metrics", "session_start", "stats", "debug"];

/// An app whose Realtime target is a database of its own behind the fault proxy, with a
/// breaker that trips after 3 failures and probes after 1 s.
struct Drill {
    app: TestApp,
    proxy: FaultProxy,
    target: TestDatabase,
}

impl Drill {
    /// `call_timeout_ms`: short for the fault drills; the default 5 s where a healthy write
    /// must never time out (a late commit would be replayed and skipped as a duplicate).
    async fn start(call_timeout_ms: u64) -> Self {
        let TargetedApp { app, proxy, target } = spawn_app_with_target(|config| {
            config.circuit_breaker_failure_threshold = Some("3".into());
            config.circuit_breaker_recovery_time_s = Some(1);
            config.legacy.timeout_ms = Some(call_timeout_ms);
        })
        .await;
        Self { app, proxy, target }
    }

    /// Waits until the router has swapped to `strategy`.
    async fn wait_for_strategy(&self, strategy: &str) {
        self.wait_until(&format!("the {strategy} strategy"), |app| {
            let now = app.state.ingest.router().current();
            serde_json::to_value(now.strategy).unwrap() == strategy
        })
        .await;
    }

    fn realtime(&self) -> RealtimeStatus {
        self.app.state.realtime.status()
    }

    fn transitions(&self) -> broadcast::Receiver<Transition> {
        self.app
            .state
            .breakers
            .get("realtime")
            .expect("the realtime breaker")
            .subscribe()
    }

    /// Waits until `done` holds for the app; a time-out shows the Realtime path's status.
    async fn wait_until(&self, what: &str, done: impl Fn(&TestApp) -> bool) {
        wait::until(what, async || {
            if done(&self.app) {
                Look::Ready(())
            } else {
                Look::NotYet(format!("{:#?}", self.realtime()))
            }
        })
        .await;
    }

    /// Waits until the target table holds every id in `want`; returns all its ids (read
    /// directly, not through the proxy).
    async fn rows_once_complete(&self, want: &HashSet<Uuid>) -> Vec<Uuid> {
        self.target
            .realtime_ids_holding(want)
            .await
            .unwrap_or_else(|| {
                panic!(
                    "the target never held every routed event: {:#?}",
                    self.realtime()
                )
            })
    }
}

/// What the producer was told about one event.
#[derive(Debug, Clone, Copy)]
struct Accepted {
    id: Uuid,
    realtime: bool,
}

fn receipts(body: &Value) -> Vec<Accepted> {
    body["events"]
        .as_array()
        .expect("receipts")
        .iter()
        .map(|receipt| Accepted {
            id: receipt["id"].as_str().unwrap().parse().unwrap(),
            realtime: receipt["realtime"].as_bool().expect("a realtime field"),
        })
        .collect()
}

/// A producer publishing batches of 5 events over HTTP every few milliseconds until stopped;
/// every request must be answered with 202 (ingest keeps answering whatever the target does).
struct Stream {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Vec<Accepted>>,
}

impl Stream {
    fn start(app: &TestApp) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (client, url, key) = (
            app.client.clone(),
            app.url("/v1/events"),
            app.admin_key.clone(),
        );
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let mut accepted = Vec::new();
            let mut n = 0usize;
            while !stopping.load(Ordering::Relaxed) {
                let batch: Vec<Value> = (0..5)
                    .map(|i| {
                        n += 1;
                        json!({"event_type": TYPES[(n + i) % 5], "source": "stream", "data": {"n": n}})
                    })
                    .collect();
                let response = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&batch)
                    .send()
                    .await
                    .expect("ingest answers");
                assert_eq!(response.status().as_u16(), 202, "ingest refused a batch");
                accepted.extend(receipts(&response.json().await.expect("JSON receipts")));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            accepted
        });
        Self { stop, task }
    }

    async fn stop(self) -> Vec<Accepted> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the producer")
    }
}

/// A dashboard on `/v1/ws` collecting event ids (in arrival order) until the sentinel.
fn listen(mut ws: Ws) -> JoinHandle<Vec<Uuid>> {
    tokio::spawn(async move {
        let mut ids = Vec::new();
        loop {
            let frame = next_event(&mut ws).await;
            let id: Uuid = frame["event"]["id"].as_str().unwrap().parse().unwrap();
            if frame["event"]["event_type"] == "sentinel" {
                return ids;
            }
            ids.push(id);
        }
    })
}

/// Publishes the sentinel that ends every listener; returns its receipt.
async fn publish_sentinel(app: &TestApp) -> Accepted {
    let body = app
        .publish_ok(&json!({"event_type": "sentinel", "source": "tests"}))
        .await;
    receipts(&body)[0]
}

/// Every accepted event reached the listener exactly once.
fn assert_received_exactly_once(received: &[Uuid], accepted: &[Accepted]) {
    let distinct: HashSet<Uuid> = received.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        received.len(),
        "a subscriber got an event twice"
    );
    let want: HashSet<Uuid> = accepted.iter().map(|a| a.id).collect();
    assert_eq!(distinct, want, "a subscriber missed events");
}

/// The target holds each routed event once, and nothing that was not routed there.
fn assert_committed_exactly_once(rows: &[Uuid], routed: &HashSet<Uuid>) {
    let distinct: HashSet<Uuid> = rows.iter().copied().collect();
    assert_eq!(distinct.len(), rows.len(), "a row is duplicated");
    assert_eq!(&distinct, routed, "the table and the routed events differ");
}

async fn wait_for(transitions: &mut broadcast::Receiver<Transition>, state: BreakerState) {
    tokio::time::timeout(WAIT, async {
        loop {
            match transitions.recv().await {
                Ok(transition) if transition.to == state => return,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("the breaker is gone"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the breaker never became {state}"));
}

#[tokio::test]
async fn a_blackholed_target_under_a_steady_stream_loses_nothing_on_either_path() {
    let drill = Drill::start(300).await;
    drill.app.set_strategy("realtime").await;
    drill.wait_for_strategy("realtime").await;
    let listeners = [
        listen(drill.app.subscribe_all().await),
        listen(drill.app.subscribe_all().await),
    ];
    let mut transitions = drill.transitions();
    let stream = Stream::start(&drill.app);
    drill
        .wait_until("live writes", |app| {
            app.state.realtime.status().written >= 50
        })
        .await;

    drill.proxy.set(Fault::Blackhole);
    wait_for(&mut transitions, BreakerState::Open).await;
    let held = drill.realtime().backlog_depth;
    drill
        .wait_until("events held while open", |app| {
            app.state.realtime.status().backlog_depth >= held + 100
        })
        .await;

    drill.proxy.restore();
    wait_for(&mut transitions, BreakerState::HalfOpen).await;
    wait_for(&mut transitions, BreakerState::Closed).await;
    drill
        .wait_until("the backlog to replay", |app| {
            app.state.realtime.status().backlog_depth == 0
        })
        .await;
    let mut accepted = stream.stop().await;
    accepted.push(publish_sentinel(&drill.app).await);

    assert!(accepted.iter().all(|a| a.realtime), "realtime routes all");
    for listener in listeners {
        // The sentinel ends the listener; it is accepted but not in the received list.
        let received = listener.await.expect("a listener");
        assert_received_exactly_once(&received, &accepted[..accepted.len() - 1]);
    }
    let routed: HashSet<Uuid> = accepted.iter().map(|a| a.id).collect();
    let rows = drill.rows_once_complete(&routed).await;
    assert_committed_exactly_once(&rows, &routed);
    let status = drill.realtime();
    assert!(status.replayed >= 100, "{status:#?}");
    assert_eq!(
        (status.dropped, status.dead_lettered),
        (0, 0),
        "{status:#?}"
    );
}

#[tokio::test]
async fn flipping_the_strategy_100_times_during_a_stream_loses_and_duplicates_nothing() {
    let drill = Drill::start(5_000).await;
    let listener = listen(drill.app.subscribe_all().await);
    let stream = Stream::start(&drill.app);
    for flip in 0..100 {
        drill
            .app
            .set_strategy(["realtime", "dual", "websocket"][flip % 3])
            .await;
    }
    drill.wait_for_strategy("realtime").await;
    // A last stretch on the final strategy, so the stream outlives the flips.
    let before = drill.realtime().written;
    drill
        .wait_until("writes after the last flip", |app| {
            app.state.realtime.status().written >= before + 20
        })
        .await;
    let mut accepted = stream.stop().await;
    accepted.push(publish_sentinel(&drill.app).await);

    let received = listener.await.expect("the listener");
    assert_received_exactly_once(&received, &accepted[..accepted.len() - 1]);
    let routed: HashSet<Uuid> = accepted
        .iter()
        .filter(|a| a.realtime)
        .map(|a| a.id)
        .collect();
    assert!(
        !routed.is_empty() && routed.len() < accepted.len(),
        "the flips changed the routing during the stream ({} of {} routed)",
        routed.len(),
        accepted.len()
    );
    let rows = drill.rows_once_complete(&routed).await;
    assert_committed_exactly_once(&rows, &routed);
    // Rows are visible to other connections as the server commits them, a moment before the
    // worker reads the COMMIT's answer and counts them: wait for the count to catch up.
    let routed_count = routed.len() as u64;
    drill
        .wait_until("the last commit counted", |app| {
            let status = app.state.realtime.status();
            status.written + status.replayed >= routed_count
        })
        .await;
    let status = drill.realtime();
    assert_eq!(
        status.written + status.replayed,
        routed_count,
        "each routed event was submitted once: {status:#?}"
    );
    assert_eq!(status.skipped_duplicates, 0, "{status:#?}");
}

#[tokio::test]
async fn a_dashboard_moving_from_realtime_to_websocket_resumes_from_its_last_row_without_a_gap() {
    let drill = Drill::start(300).await;
    drill.app.set_strategy("realtime").await;
    drill.wait_for_strategy("realtime").await;
    let mut seen = Vec::new();
    for i in 0..20 {
        let body = drill
            .app
            .publish_ok(&json!({"event_type": "stats", "source": "dash", "data": {"i": i}}))
            .await;
        seen.extend(receipts(&body));
    }
    let routed: HashSet<Uuid> = seen.iter().map(|a| a.id).collect();
    drill.rows_once_complete(&routed).await;
    // What a Realtime dashboard saw last: the newest row, with its (epoch, sequence_id).
    let target = sqlx::PgPool::connect(&drill.target.url()).await.unwrap();
    let (epoch, offset): (String, i64) = sqlx::query_as(
        "SELECT epoch, sequence_id FROM monitoring.monitoring_events ORDER BY sequence_id DESC LIMIT 1",
    )
    .fetch_one(&target)
    .await
    .unwrap();
    target.close().await;

    // Realtime fails; events keep coming and never reach the table.
    let mut transitions = drill.transitions();
    drill.proxy.set(Fault::Blackhole);
    let mut missed = Vec::new();
    for i in 0..10 {
        let body = drill
            .app
            .publish_ok(&json!({"event_type": "stats", "source": "dash", "data": {"late": i}}))
            .await;
        missed.extend(receipts(&body).into_iter().map(|a| a.id));
    }
    wait_for(&mut transitions, BreakerState::Open).await;

    // Told to move, the dashboard subscribes on /v1/ws from its last row.
    let (mut ws, subscribed) = drill
        .app
        .subscribe_v1(json!({"op": "subscribe", "since": {"epoch": epoch, "offset": offset}}))
        .await;
    assert_eq!(subscribed["recovered"], true, "{subscribed}");
    let mut resumed = Vec::new();
    for _ in 0..missed.len() {
        let frame = next_event(&mut ws).await;
        resumed.push(
            frame["event"]["id"]
                .as_str()
                .unwrap()
                .parse::<Uuid>()
                .unwrap(),
        );
    }
    assert_eq!(
        resumed, missed,
        "exactly the events after its last row, in order"
    );
    drill.app.assert_nothing_was_broadcast(&mut ws).await;
}
