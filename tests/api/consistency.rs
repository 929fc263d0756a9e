//! The consistency validator against real Postgres: the Realtime target is a database of its
//! own, tampered with by triggers (a row whose payload is changed on its way in; a row that
//! never lands) or cut off by the fault proxy, and the validator must report exactly those
//! events, with their ids, from the rows it reads back.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::nats::TestStream;
use crate::support::proxy::{Fault, FaultProxy};
use crate::support::wait::{self, Look, Patience};
use crate::support::ws::next_json;
use crate::support::{
    Credential, POSTGRES_ADDR, TargetedApp, TestApp, assert_problem, expect_json,
    spawn_app_on_with, spawn_app_with, spawn_app_with_target,
};

/// An app with its own Realtime target, the `realtime` strategy and validation on, with an
/// order window of one second and reports every `window_s`.
async fn validating_app(window_s: u64) -> TargetedApp {
    let targeted = spawn_app_with_target(|config| quick(config, window_s)).await;
    validate_realtime(&[&targeted.app]).await;
    targeted
}

/// Reports every `window_s`, an order window of one second, and a Realtime breaker that opens
/// after three failed writes of 300 ms and tries again after a second.
fn quick(config: &mut switchyard::config::Config, window_s: u64) {
    config.validation.window_s = window_s;
    config.validation.order_window_s = 1;
    config.circuit_breaker_failure_threshold = Some("3".into());
    config.circuit_breaker_recovery_time_s = Some(1);
    config.legacy.timeout_ms = Some(300);
}

/// Sets the `realtime` strategy and turns validation on (the flags `apps` share), and waits
/// until every one of them has both.
async fn validate_realtime(apps: &[&TestApp]) {
    apps[0].set_strategy("realtime").await;
    apps[0].flip_ok("validation.enabled", true).await;
    for app in apps {
        wait_for(app, "validation on and the strategy swapped", |app, s| {
            s["enabled"] == true
                && serde_json::to_value(app.state.ingest.router().current().strategy).unwrap()
                    == "realtime"
        })
        .await;
    }
}

/// A performance event: its batches linger 0.1 s, well inside a one-second order window.
fn performance_event(i: i32) -> Value {
    json!({"event_type": "cache_metrics", "source": "api", "data": {"i": i}})
}

/// Publishes a warm-up event to `app` and waits until its validator matched it (the first
/// write also creates the target's schema).
async fn warm_up(app: &TestApp) {
    publish_id(app, performance_event(-1)).await;
    wait_for(app, "the warm-up event to match", |_, s| {
        s["overall"]["matched"] == 1
    })
    .await;
}

async fn summary(app: &TestApp) -> Value {
    let response = app.get("/v1/validation/summary", app.admin()).await;
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.expect("JSON")
}

/// Waits until `done` holds for the summary.
async fn wait_for(app: &TestApp, what: &str, done: impl Fn(&TestApp, &Value) -> bool) -> Value {
    wait::until(what, async || {
        let now = summary(app).await;
        if done(app, &now) {
            Look::Ready(now)
        } else {
            Look::NotYet(format!("{now:#}"))
        }
    })
    .await
}

fn category<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["categories"]
        .as_array()
        .expect("categories")
        .iter()
        .find(|c| c["category"] == name)
        .expect("the category")
}

fn examples(summary: &Value, name: &str, kind: &str) -> Vec<String> {
    category(summary, name)["examples"][kind]
        .as_array()
        .map(|ids| {
            ids.iter()
                .map(|id| id.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn publish_id(app: &TestApp, event: Value) -> String {
    let body = app.publish_ok(&event).await;
    body["events"][0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_tampered_row_is_a_payload_mismatch_and_a_missing_row_is_missing_in_realtime() {
    let targeted = validating_app(300).await;
    let app = &targeted.app;
    // The first write creates the target's schema; then the trigger goes in.
    publish_id(app, json!({"event_type": "stats", "source": "warm-up"})).await;
    wait_for(app, "the warm-up event to match", |_, s| {
        category(s, "system")["matched"] == 1
    })
    .await;
    targeted.tamper_with_target().await;
    let mut ws = app.subscribe_all().await;

    for i in 0..20 {
        publish_id(
            app,
            json!({"event_type": "error", "source": "api", "data": {"i": i}}),
        )
        .await;
    }
    let tampered = publish_id(
        app,
        json!({"event_type": "error", "source": "tamper", "data": {"i": 1}}),
    )
    .await;
    let vanished = publish_id(app, json!({"event_type": "stats", "source": "vanish"})).await;

    let now = wait_for(app, "both discrepancies", |_, s| {
        category(s, "critical")["expected"] == 21 && category(s, "system")["expected"] == 2
    })
    .await;
    let critical = category(&now, "critical");
    assert_eq!(critical["matched"], 20, "{critical:#}");
    assert_eq!(critical["discrepancies"]["payload_mismatch"], 1);
    assert_eq!(
        examples(&now, "critical", "payload_mismatch"),
        vec![tampered]
    );
    assert_eq!(
        examples(&now, "system", "missing_in_realtime"),
        vec![vanished]
    );
    assert_eq!(
        category(&now, "system")["discrepancies"]["payload_mismatch"],
        0
    );
    // 1 of 21 critical events is 4.8%: above the 1% threshold.
    assert_eq!(critical["breached"], true);
    assert!(
        now["alerting"]
            .as_array()
            .unwrap()
            .contains(&json!("critical"))
    );
    assert!(
        critical["latency_ms"]["realtime"]["p99"].is_number(),
        "{critical:#}"
    );

    let alert = Patience::DEFAULT
        .every(Duration::ZERO)
        .until("a validation_alert frame for critical", async || {
            let frame = next_json(&mut ws).await;
            let done = frame["kind"] == "validation_alert" && frame["category"] == "critical";
            Look::ready_if(done, frame)
        })
        .await;
    assert_eq!(alert["state"], "firing");
    assert_eq!(alert["threshold_percent"], 1.0);
    let metrics = app
        .get("/metrics", Credential::Nothing)
        .await
        .text()
        .await
        .unwrap();
    for line in [
        r#"switchyard_validation_discrepancies_total{category="critical",kind="payload_mismatch"} 1"#,
        r#"switchyard_validation_discrepancies_total{category="system",kind="missing_in_realtime"} 1"#,
        r#"switchyard_validation_alerting{category="critical"} 1"#,
        r#"switchyard_validation_alerts_total{category="critical"} 1"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} not in /metrics");
    }
    let legacy: Value = app
        .get("/metrics/validation", Credential::Nothing)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(legacy["metrics"]["validation_enabled"], true);
    assert_eq!(legacy["metrics"]["discrepancies"]["payload_mismatch"], 1);
}

#[tokio::test]
async fn events_held_in_the_backlog_are_pending_not_missing_and_arrive_late() {
    let targeted = validating_app(300).await;
    let app = &targeted.app;
    warm_up(app).await;

    targeted.proxy.set(Fault::Blackhole);
    let mut held = Vec::new();
    for i in 0..10 {
        held.push(publish_id(app, performance_event(i)).await);
    }
    // Past the order window and the grace for a write in flight (1 s + 4.3 s), with the
    // events still held in the backlog.
    let realtime = &app.state.realtime;
    wait::until("the oldest held event to be 6 s old", async || {
        let status = realtime.status();
        Look::ready_if(status.oldest_backlog_age_s.unwrap_or(0.0) >= 6.0, status)
    })
    .await;
    let release = async || targeted.proxy.restore();
    pending_then_late(app, chrono::Utc::now(), &held, 11, release).await;
}

/// `held`, the performance events published after a warm-up one that matched, are pending
/// and none missing in a summary made after `deadline`; once `release` lets them through,
/// all `expected` match and the held ones are late.
async fn pending_then_late(
    app: &TestApp,
    deadline: chrono::DateTime<chrono::Utc>,
    held: &[String],
    expected: usize,
    release: impl AsyncFnOnce(),
) {
    let during = wait_for(app, "a summary made after the deadline passed", |_, s| {
        let made: chrono::DateTime<chrono::Utc> =
            s["generated_at"].as_str().unwrap().parse().unwrap();
        made > deadline
    })
    .await;
    assert_eq!(during["pending"], held.len(), "{during:#}");
    assert_eq!(
        during["overall"]["discrepancies"]["missing_in_realtime"], 0,
        "{during:#}"
    );

    release().await;
    let after = wait_for(app, "the held events to be resolved", |_, s| {
        s["pending"] == 0 && s["overall"]["expected"] == expected
    })
    .await;
    let overall = &after["overall"];
    assert_eq!(overall["matched"], expected, "{after:#}");
    assert_eq!(overall["discrepancies"]["missing_in_realtime"], 0);
    assert_eq!(overall["discrepancies"]["late"], held.len(), "{after:#}");
    // The summary keeps five examples of each kind.
    let late = examples(&after, "performance", "late");
    assert!(
        late.len() == held.len().min(5) && late.iter().all(|id| held.contains(id)),
        "{late:?}"
    );
}

/// On a shared NATS stream an open breaker leaves routed events in the work queue, not in
/// this instance's backlog (the instance stops pulling): above the queue's ack floor they are
/// pending, then late once written, never missing.
#[tokio::test]
async fn on_a_stream_events_waiting_in_the_work_queue_are_pending_not_missing() {
    let stream = TestStream::new();
    let app = &spawn_app_with(|config| {
        stream.configure(config);
        quick(config, 300);
    })
    .await;
    validate_realtime(&[app]).await;
    warm_up(app).await;

    app.force_breaker_open("validator test").await;
    // Until its last pull expires, the feed would still take events (into the local backlog).
    let client = async_nats::connect(stream.url.as_str()).await.unwrap();
    let nats = async_nats::jetstream::new(client);
    let consumer = format!("{}-realtime", stream.name);
    wait::until("the work queue with no pull outstanding", async || {
        let queue = match nats.get_stream(&stream.name).await {
            Ok(s) => {
                s.get_consumer::<async_nats::jetstream::consumer::pull::Config>(&consumer)
                    .await
            }
            Err(e) => return Look::NotYet(e.to_string()),
        };
        match queue {
            Ok(mut queue) => {
                let waiting = queue.info().await.map(|i| i.num_waiting).unwrap_or(1);
                Look::ready_if(waiting == 0, waiting)
            }
            Err(e) => Look::NotYet(e.to_string()),
        }
    })
    .await;
    let mut held = Vec::new();
    for i in 0..5 {
        held.push(publish_id(app, performance_event(i)).await);
    }
    assert!(
        !app.state.realtime.holds_backlog(),
        "they wait in the stream"
    );
    // Where an operator sees them: the work queue on /v1/realtime and in /metrics.
    let queue = wait::until("the work queue read with the five waiting", async || {
        let status = expect_json(app.get("/v1/realtime", app.admin()).await, 200).await;
        let queue = status["work_queue"].clone();
        Look::ready_if(queue["waiting"] == 5, queue)
    })
    .await;
    assert_eq!(queue["unacknowledged"], 0, "{queue}");
    assert!(
        queue["ack_floor"].as_u64().is_some() && queue["read_age_s"].as_f64().is_some(),
        "{queue}"
    );
    let metrics = app
        .get("/metrics", Credential::Nothing)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "switchyard_realtime_work_queue_waiting 5.0"),
        "{metrics}"
    );
    // Past the order window and the grace for a write in flight (1 s + 4.3 s).
    let deadline = chrono::Utc::now() + chrono::Duration::milliseconds(6_500);
    let release = async || {
        let auto = json!({"action": "auto"});
        let response = app
            .as_admin(reqwest::Method::POST, "/v1/breakers/realtime", &auto)
            .await;
        expect_json(response, 200).await;
    };
    pending_then_late(app, deadline, &held, 6, release).await;
}

/// Two instances on one stream: the events one instance pulled and holds (its target
/// blackholed, its breaker open) are pending in the other's validator, not missing; once the
/// first writes them, the other hears of the commit and reads the rows back: late, not missing.
#[tokio::test]
async fn events_another_instance_holds_then_writes_are_pending_then_late() {
    let stream = TestStream::new();
    let validating = |config: &mut switchyard::config::Config| {
        stream.configure(config);
        quick(config, 300);
        // Held events must not come back to the other instance before the deadline.
        config.nats.ack_wait_s = 60;
    };
    let b = &spawn_app_with(validating).await;
    let proxy = FaultProxy::start(POSTGRES_ADDR.parse().unwrap())
        .await
        .expect("start the proxy");
    let a = &spawn_app_on_with(b, |config| {
        validating(config);
        let through = b
            .state
            .config
            .database_url
            .replace(POSTGRES_ADDR, &proxy.address().to_string());
        config.realtime.database_url = Some(through);
    })
    .await;
    validate_realtime(&[b, a]).await;
    warm_up(b).await;

    // Only A pulls: B's breaker is open (its feed pauses once its last pull expires).
    b.force_breaker_open("another instance holds").await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    proxy.set(Fault::Blackhole);
    let mut held = Vec::new();
    for i in 0..5 {
        held.push(publish_id(b, performance_event(i)).await);
    }
    wait::until("A to hold the five", async || {
        let status = a.state.realtime.status();
        Look::ready_if(status.backlog_depth == 5, status.backlog_depth)
    })
    .await;
    let auto = json!({"action": "auto"});
    let response = b
        .as_admin(reqwest::Method::POST, "/v1/breakers/realtime", &auto)
        .await;
    expect_json(response, 200).await;
    assert!(!b.state.realtime.holds_backlog(), "B holds none of them");

    // Past the order window and the grace for a write in flight (1 s + 4.3 s).
    let deadline = chrono::Utc::now() + chrono::Duration::milliseconds(6_500);
    let release = async || proxy.restore();
    pending_then_late(b, deadline, &held, 6, release).await;
}

/// Two healthy instances on one stream share the writes; each validator expects every event
/// and, hearing of the other's commits, matches all of them.
#[tokio::test]
async fn two_instances_each_match_every_event_whichever_wrote_it() {
    let stream = TestStream::new();
    let validating = |config: &mut switchyard::config::Config| {
        stream.configure(config);
        quick(config, 300);
    };
    let a = &spawn_app_with(validating).await;
    let b = &spawn_app_on_with(a, validating).await;
    validate_realtime(&[a, b]).await;
    for i in 0..40 {
        let to = if i % 2 == 0 { a } else { b };
        publish_id(
            to,
            json!({"event_type": "stats", "source": format!("s{i}")}),
        )
        .await;
    }
    // Both pull from one work queue: the writes are shared (how, the queue decides; without
    // the commit relay each validator counted the other's share missing).
    let written = |app: &TestApp| app.state.realtime.status().written;
    wait::until("the instances to have written all forty", async || {
        let (by_a, by_b) = (written(a), written(b));
        Look::ready_if(by_a + by_b == 40, (by_a, by_b))
    })
    .await;
    for app in [a, b] {
        let summary = wait_for(app, "every event matched", |_, s| {
            s["overall"]["expected"] == 40 && s["pending"] == 0
        })
        .await;
        let overall = &summary["overall"];
        assert_eq!(overall["matched"], 40, "{summary:#}");
        assert_eq!(
            overall["discrepancies"]["missing_in_realtime"], 0,
            "{summary:#}"
        );
    }
}

#[tokio::test]
async fn closed_windows_are_stored_as_reports_per_category() {
    let targeted = validating_app(1).await;
    let app = &targeted.app;
    for _ in 0..3 {
        publish_id(app, json!({"event_type": "cache_metrics", "source": "api"})).await;
    }
    let report = wait::until("stored reports matching all 3 events", async || {
        let response = app
            .get("/v1/validation/reports?category=performance", app.admin())
            .await;
        assert_eq!(response.status().as_u16(), 200);
        let reports: Vec<Value> = response.json().await.unwrap();
        let matched: i64 = reports.iter().map(|r| r["matched"].as_i64().unwrap()).sum();
        if matched == 3 {
            Look::Ready(reports[0].clone())
        } else {
            Look::NotYet(format!("{reports:#?}"))
        }
    })
    .await;
    assert_eq!(report["category"], "performance");
    assert_eq!(report["threshold_percent"], 5.0);
    assert!(report["window_end"].is_string() && report["latency_ms"]["websocket"].is_object());
}

#[tokio::test]
async fn with_validation_off_nothing_is_tracked() {
    let app = spawn_app_with(|_| {}).await;
    app.set_strategy("realtime").await;
    for _ in 0..5 {
        publish_id(&app, json!({"event_type": "stats", "source": "api"})).await;
    }
    // The events were routed to Realtime and written, but not expected by the validator.
    let realtime = &app.state.realtime;
    wait::until("the 5 events to be written to Realtime", async || {
        let status = realtime.status();
        Look::ready_if(status.written >= 5, status)
    })
    .await;
    let now = summary(&app).await;
    assert_eq!(now["enabled"], false);
    assert_eq!(
        (now["pending"].as_u64(), now["overall"]["expected"].as_u64()),
        (Some(0), Some(0))
    );
}

#[tokio::test]
async fn bad_report_queries_are_400_naming_the_field_and_readers_need_a_key() {
    let app = spawn_app_with(|_| {}).await;
    let problem = assert_problem(
        app.get("/v1/validation/reports?category=nope&limit=0", app.admin())
            .await,
        400,
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["category", "limit"], "{problem:#}");
    assert_problem(
        app.get("/v1/validation/summary", Credential::Nothing).await,
        401,
    )
    .await;
}
