//! Many instances, one stream (`SWITCHYARD_NATS_URL`): three switchyards on one NATS
//! JetStream stream (each test its own stream, deleted after) deliver every event to every
//! subscriber once and in one order, resume a client on any instance, write the Realtime table
//! once per event, de-duplicate ids across instances, and refuse events while NATS is away.
//! An instance stopped gracefully (in-process) here; one killed with SIGKILL (a real process
//! of the built binary) in `killed`.

use std::collections::HashSet;

use serde_json::{Value, json};
use uuid::Uuid;

mod killed;
mod process;
mod realtime;

use crate::support::nats::{OwnNats, TestStream};
use crate::support::wait::{self, Look};
use crate::support::ws::{Ws, next_event, next_json};
use crate::support::{TestApp, event, expect_json, spawn_app_on_with, spawn_app_with};

/// Three instances on one control store and one stream.
async fn three(stream: &TestStream) -> (TestApp, TestApp, TestApp) {
    let a = spawn_app_with(|c| stream.configure(c)).await;
    let b = spawn_app_on_with(&a, |c| stream.configure(c)).await;
    let c = spawn_app_on_with(&a, |c| stream.configure(c)).await;
    (a, b, c)
}

/// The next `n` events on `ws`: (offset, event id).
async fn events(ws: &mut Ws, n: usize) -> Vec<(u64, String)> {
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        let frame = next_event(ws).await;
        let offset = frame["offset"].as_u64().expect("an offset");
        got.push((offset, frame["event"]["id"].as_str().unwrap().to_string()));
    }
    got
}

fn ids(receipt: &Value) -> Vec<String> {
    receipt["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn an_event_published_to_any_instance_reaches_every_subscriber_once_in_one_order() {
    let stream = TestStream::new();
    let (a, b, c) = three(&stream).await;
    let mut subscribers = vec![
        a.subscribe_all().await,
        b.subscribe_all().await,
        c.subscribe_all().await,
    ];
    let mut sent = Vec::new();
    for i in 0..30 {
        let app = [&a, &b, &c][i % 3];
        sent.extend(ids(&app
            .publish_ok(&event("cpu", &format!("host-{i}")))
            .await));
    }
    let mut orders = Vec::new();
    for ws in &mut subscribers {
        let got = events(ws, 30).await;
        let offsets: Vec<u64> = got.iter().map(|(o, _)| *o).collect();
        assert!(
            offsets.windows(2).all(|w| w[1] == w[0] + 1),
            "offsets are the stream's sequence, without gaps or repeats: {offsets:?}"
        );
        let got_ids: Vec<String> = got.into_iter().map(|(_, id)| id).collect();
        assert_eq!(
            got_ids.iter().collect::<HashSet<_>>().len(),
            30,
            "each event once"
        );
        orders.push(got_ids);
    }
    assert_eq!(orders[0], orders[1], "A and B deliver in one order");
    assert_eq!(orders[1], orders[2], "B and C deliver in one order");
    assert_eq!(orders[0], sent, "the order the instances accepted them in");
    // Nothing more arrives: the next event everywhere is a new one.
    let sentinel = a.publish_ok(&event("sentinel", "tests")).await;
    for ws in &mut subscribers {
        let next = next_event(ws).await;
        assert_eq!(next["event"]["id"], sentinel["events"][0]["id"], "{next}");
        assert_eq!(next["offset"], sentinel["events"][0]["offset"]);
    }
}

#[tokio::test]
async fn a_client_of_a_stopped_instance_resumes_on_another_and_misses_nothing() {
    let stream = TestStream::new();
    let (a, mut b, c) = three(&stream).await;
    let (mut on_b, subscribed_b) = b.subscribe_v1(json!({"op": "subscribe"})).await;
    for i in 0..5 {
        a.publish_ok(&event("cpu", &format!("before-{i}"))).await;
    }
    let seen = events(&mut on_b, 5).await;
    let last = seen.last().unwrap().0;
    b.trigger_shutdown();
    b.stopped().await.unwrap();
    let mut missed = Vec::new();
    for i in 0..5 {
        missed.extend(ids(&a
            .publish_ok(&event("cpu", &format!("after-{i}")))
            .await));
    }
    let since = json!({"epoch": subscribed_b["epoch"], "offset": last});
    let (mut on_c, subscribed_c) = c
        .subscribe_v1(json!({"op": "subscribe", "since": since}))
        .await;
    assert_eq!(
        subscribed_c["epoch"], subscribed_b["epoch"],
        "one epoch: the stream's"
    );
    assert_eq!(subscribed_c["recovered"], true, "{subscribed_c}");
    let resumed = events(&mut on_c, 5).await;
    assert_eq!(
        resumed.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>(),
        missed
    );
    assert_eq!(resumed[0].0, last + 1);

    // An instance started after all of this holds none of it in its ring: it reads the
    // stream back, from the very first event.
    let d = spawn_app_on_with(&a, |config| stream.configure(config)).await;
    let since = json!({"epoch": subscribed_b["epoch"], "offset": 0});
    let (mut on_d, subscribed_d) = d
        .subscribe_v1(json!({"op": "subscribe", "since": since}))
        .await;
    assert_eq!(subscribed_d["recovered"], true, "{subscribed_d}");
    let replayed = events(&mut on_d, 10).await;
    assert_eq!(replayed.first().unwrap().0, 1);
    assert_eq!(replayed.last().unwrap().0, 10);
    d.assert_nothing_was_broadcast(&mut on_d).await;
}

#[tokio::test]
async fn a_client_id_sent_to_two_instances_is_one_event() {
    let stream = TestStream::new();
    let (a, b, c) = three(&stream).await;
    let mut on_c = c.subscribe_all().await;
    let id = Uuid::new_v4();
    let body = json!({"id": id, "event_type": "cpu", "source": "retry"});
    let first = a.publish_ok(&body).await;
    let again = b.publish_ok(&body).await;
    assert_eq!(again["events"][0]["duplicate"], true, "{again}");
    assert_eq!(again["events"][0]["offset"], first["events"][0]["offset"]);
    let frame = next_event(&mut on_c).await;
    assert_eq!(frame["event"]["id"], id.to_string());
    c.assert_nothing_was_broadcast(&mut on_c).await;
}

#[tokio::test]
async fn while_nats_is_away_events_are_refused_and_ready_fails_then_both_recover() {
    let mut nats = OwnNats::start().await;
    let stream = TestStream::on(&nats.url());
    let app = spawn_app_with(|c| stream.configure(c)).await;
    let mut ws = app.subscribe_all().await;
    let before = app.publish_ok(&event("cpu", "before")).await;
    assert_eq!(
        next_event(&mut ws).await["event"]["id"],
        before["events"][0]["id"]
    );

    nats.stop();
    wait::until("ready to report NATS down", async || {
        let response = app
            .client
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        Look::ready_if(status == 503 && body["nats"] == "down", (status, body))
    })
    .await;
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("switchyard_nats_connected 0"), "{metrics}");
    let refused = app.publish(&event("cpu", "during")).await;
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );

    nats.restart().await;
    wait::until("ready to report NATS up again", async || {
        let response = app
            .client
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        Look::ready_if(status == 200 && body["nats"] == "up", (status, body))
    })
    .await;
    let after = app.publish_ok(&event("cpu", "after")).await;
    let frame = next_event(&mut ws).await;
    assert_eq!(
        frame["event"]["id"], after["events"][0]["id"],
        "fan-out resumed by itself"
    );
    assert_eq!(
        frame["offset"].as_u64(),
        before["events"][0]["offset"].as_u64().map(|o| o + 1)
    );
    let ready = expect_json(
        app.client
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(ready["offset"], frame["offset"]);
}

#[tokio::test]
async fn an_unreachable_nats_at_start_is_an_error_naming_the_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    let database = crate::support::TestDatabase::migrated().await;
    let mut config = switchyard::Config::for_database(database.url());
    config.nats.url = Some(url.clone());
    let error = match switchyard::Application::build(config).await {
        Ok(_) => panic!("switchyard started without its NATS"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains(&url), "{error}");
    assert!(error.contains("NATS"), "{error}");
}

#[tokio::test]
async fn every_protocol_of_every_instance_delivers_the_stream() {
    let stream = TestStream::new();
    let (a, b, c) = three(&stream).await;
    let (mut legacy_on_b, _) = b.connect_legacy().await;
    let (mut sse_on_c, _) = c.stream("").await;
    let body = json!({"event_type": "cpu", "source": "host-1", "data": {"load": 0.5}});
    let receipt = a.publish_ok(&body).await;
    let frame = next_json(&mut legacy_on_b).await;
    assert_eq!(frame["type"], "cpu", "the legacy frame on B: {frame}");
    assert_eq!(frame["data"], json!({"load": 0.5}));
    let (offset, frame) = sse_on_c.next_event().await;
    assert_eq!(Some(offset), receipt["events"][0]["offset"].as_u64());
    assert_eq!(frame["event"]["id"], receipt["events"][0]["id"], "{frame}");
}
