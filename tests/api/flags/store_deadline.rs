//! A control store that stops answering (blackholed: connections stay open, nothing comes
//! back) costs a request at most `SWITCHYARD_STORE_TIMEOUT_MS`, then 503 with Retry-After:
//! flag writes, breaker actions (audited first), key lookups not in the cache. Meanwhile
//! events keep flowing to subscribers and evaluation keeps answering from the last snapshot.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use switchyard::api::auth::Scope;

use crate::support::proxy::{Fault, FaultProxy};
use crate::support::wait::{self, Look};
use crate::support::ws::next_event;
use crate::support::{Credential, POSTGRES_ADDR, TestApp, assert_problem, event, spawn_app_with};

/// Short, so the test is quick; the default is 3 s.
const STORE_TIMEOUT_MS: u64 = 400;
/// Far above the deadline: only a request that hangs reaches it.
const HANG: Duration = Duration::from_secs(8);

async fn app_behind(proxy: &FaultProxy) -> TestApp {
    spawn_app_with(|config| {
        config.database_url = config
            .database_url
            .replace(POSTGRES_ADDR, &proxy.address().to_string());
        config.store_timeout_ms = STORE_TIMEOUT_MS;
        config.flag_resync_s = 1;
    })
    .await
}

/// Asserts the request answered (not hung) with 503, `Retry-After` and problem+json.
async fn answers_unavailable(
    request: impl Future<Output = reqwest::Response>,
    what: &str,
) -> Value {
    let response = tokio::time::timeout(HANG, request)
        .await
        .unwrap_or_else(|_| panic!("{what} hung with the control store blackholed"));
    assert!(
        response.headers().get("retry-after").is_some(),
        "{what}: 503 carries Retry-After: {:?}",
        response.headers()
    );
    let problem = assert_problem(response, 503).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("unavailable"),
        "{what}: {problem}"
    );
    problem
}

#[tokio::test]
async fn with_the_control_store_blackholed_writes_answer_503_and_events_keep_flowing() {
    let proxy = FaultProxy::start(POSTGRES_ADDR.parse().unwrap())
        .await
        .expect("start the proxy");
    let app = app_behind(&proxy).await;
    app.create_boolean_flag("held").await;
    app.flip_ok("held", true).await;
    let publisher = app.create_key(Scope::Publish).await;
    let mut subscriber = app.subscribe_all().await;
    let context = json!({"targeting_key": "u-1"});

    // The pool's connections stay open: a write takes one and its statements never return.
    proxy.set(Fault::Blackhole);

    answers_unavailable(app.flip("held", false), "a flag write").await;
    answers_unavailable(
        app.as_admin(
            Method::POST,
            "/v1/breakers/realtime",
            &json!({"action": "force_open", "reason": "drill"}),
        ),
        "an audited breaker action",
    )
    .await;
    answers_unavailable(
        app.publish_as(
            Credential::Bearer(&publisher.key),
            &event("cache_metrics", "outage"),
        ),
        "a publish with a key not in the cache",
    )
    .await;

    // Nothing was written: the flag still evaluates as it was.
    let result = app.evaluate("held", context.clone()).await;
    assert_eq!(result["value"], true, "{result}");

    // Events flow without the control store (the admin key needs no lookup).
    let receipt = app.publish_ok(&event("cache_metrics", "outage")).await;
    let delivered = next_event(&mut subscriber).await;
    assert_eq!(
        delivered["event"]["id"], receipt["events"][0]["id"],
        "{delivered}"
    );

    // Evaluation answers from the last snapshot and says it is stale once a resync failed.
    let stale = wait::until("the snapshot to be marked stale", async || {
        let all = app.evaluate_all(context.clone()).await;
        Look::ready_if(all["stale"] == true, all)
    })
    .await;
    assert_eq!(app.evaluate("held", context.clone()).await["value"], true);
    // And how stale: the snapshot's age grows while the store is away.
    let age = |all: &Value| all["snapshot_age_s"].as_f64().expect("snapshot_age_s");
    let age_when_stale = age(&stale);
    wait::until("the snapshot's age to grow", async || {
        let all = app.evaluate_all(context.clone()).await;
        Look::ready_if(
            all["stale"] == true && age(&all) >= age_when_stale + 1.0,
            all,
        )
    })
    .await;

    // Back again: the same write succeeds.
    proxy.restore();
    wait::until("writes to succeed again", async || {
        let status = app.flip("held", false).await.status().as_u16();
        Look::ready_if(status == 200, status)
    })
    .await;
    wait::until("a fresh snapshot again", async || {
        let all = app.evaluate_all(context.clone()).await;
        Look::ready_if(all["stale"] == false && age(&all) < age_when_stale, all)
    })
    .await;
}

#[tokio::test]
async fn requests_refused_by_the_store_deadline_are_counted_in_metrics_and_readiness() {
    let proxy = FaultProxy::start(POSTGRES_ADDR.parse().unwrap())
        .await
        .expect("start the proxy");
    let app = app_behind(&proxy).await;
    app.create_boolean_flag("counted").await;
    let metric = async || {
        let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
        let text = metrics.text().await.unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("switchyard_store_deadline_refusals_total "))
            .unwrap_or_else(|| panic!("no store deadline counter in /metrics:\n{text}"))
            .to_string();
        line.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
    };
    assert_eq!(metric().await, 0, "nothing refused while the store answers");

    proxy.set(Fault::Blackhole);
    answers_unavailable(app.flip("counted", true), "a flag write").await;
    answers_unavailable(app.flip("counted", false), "another flag write").await;
    // `/metrics` never waits for the control store: it answers during the outage.
    assert_eq!(metric().await, 2, "each refusal counted once");

    proxy.restore();
    let ready = wait::until("readiness with the control store back", async || {
        let response = app.get("/health/ready", Credential::Nothing).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or_default();
        Look::ready_if(status == 200 && body["database"] == "up", body)
    })
    .await;
    let refusals = ready["store_deadline_refusals"].as_u64().expect("a count");
    assert!(refusals >= 2, "{ready}");
    assert_eq!(metric().await, refusals, "one count, two places");
}
