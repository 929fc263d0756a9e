//! Failures stay isolated: a stalled subscriber does not hold up the others and is told it
//! lagged (DESIGN.md invariants 2 and 4), and the hub keeps delivering when the database is
//! gone (invariant 1).

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::proxy::{Fault, FaultProxy};
use crate::support::wait::{self, Look};
use crate::support::ws::{Ws, next_event, next_json, read_until_close};
use crate::support::{Credential, POSTGRES_ADDR, TestApp, event, spawn_app_with};

/// Events per request: 9 of 100 kB fit the 1 MiB body limit.
const BATCH: usize = 9;
/// 144 events of 100 kB: far more than a stalled socket's buffers hold (a 4 MiB send buffer
/// on the server, a few kB on the client) plus the 16-event queue, so the stalled subscriber
/// must fall behind.
const BATCHES: usize = 16;
/// The event size limit these tests raise: their events are larger than the 64 KiB default
/// (`SWITCHYARD_MAX_EVENT_BYTES`) so that few of them fill a socket's buffers.
const LARGE_EVENT_LIMIT: u32 = 256 * 1024;

fn large_event(n: usize) -> Value {
    json!({"event_type": "cache_metrics", "source": "bulk",
           "data": {"n": n, "blob": "x".repeat(100_000)}})
}

/// Publishes `BATCHES` batches of large events. After each one, `healthy` must receive the
/// whole batch before the next is sent: the stalled subscriber never holds it up. Returns the
/// last offset.
async fn publish_past_a_stalled_subscriber(app: &TestApp, healthy: &mut Ws) -> u64 {
    let mut last = 0;
    for batch in 0..BATCHES {
        let events: Vec<Value> = (0..BATCH).map(|i| large_event(batch * BATCH + i)).collect();
        app.publish_ok(&Value::Array(events)).await;
        for _ in 0..BATCH {
            let frame = next_event(healthy).await;
            let offset = frame["offset"].as_u64().unwrap();
            assert_eq!(offset, last + 1, "the healthy subscriber missed an event");
            last = offset;
        }
    }
    last
}

/// A `/v1/ws` subscriber with a tiny receive buffer that the test then stops reading.
async fn stalled_subscriber(app: &TestApp) -> Ws {
    let mut ws = app.connect_ws_small_buffer("/v1/ws").await;
    crate::support::ws::send_json(&mut ws, &json!({"op": "subscribe"})).await;
    assert_eq!(next_json(&mut ws).await["op"], "subscribed");
    ws
}

#[tokio::test]
async fn a_stalled_subscriber_does_not_delay_a_healthy_one_and_is_told_it_lagged() {
    let app = spawn_app_with(|config| {
        config.subscriber_queue = 16;
        config.history_size = 10_000;
        config.limits.max_event_bytes = LARGE_EVENT_LIMIT;
    })
    .await;
    let mut stalled = stalled_subscriber(&app).await;
    let mut healthy = app.subscribe_all().await;

    let last = publish_past_a_stalled_subscriber(&app, &mut healthy).await;

    // Reading again, the stalled subscriber gets a lagged notice and catches up from history:
    // every event exactly once, in order.
    let mut offsets = Vec::new();
    let mut lagged = Vec::new();
    while offsets.last() != Some(&last) {
        let frame = next_json(&mut stalled).await;
        match frame["op"].as_str() {
            Some("event") => offsets.push(frame["offset"].as_u64().unwrap()),
            Some("lagged") => lagged.push(frame),
            Some("system") => {}
            _ => panic!("unexpected frame {frame}"),
        }
    }
    assert!(
        !lagged.is_empty(),
        "the stalled subscriber was not told it lagged"
    );
    assert!(lagged[0]["missed"].as_u64().unwrap() > 0, "{}", lagged[0]);
    assert_eq!(offsets, (1..=last).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_subscriber_stalled_past_history_is_closed_with_4001_and_cannot_recover() {
    let app = spawn_app_with(|config| {
        config.subscriber_queue = 16;
        config.history_size = 20;
        config.limits.max_event_bytes = LARGE_EVENT_LIMIT;
    })
    .await;
    let mut stalled = stalled_subscriber(&app).await;
    let mut healthy = app.subscribe_all().await;

    publish_past_a_stalled_subscriber(&app, &mut healthy).await;

    let (mut frames, close) = read_until_close(&mut stalled).await;
    frames.retain(|f| f["op"] != "system");
    let close = close.expect("a close frame");
    assert_eq!(close.code, CloseCode::Library(4001), "{close:?}");
    let notice = frames.last().expect("a lagged notice before the close");
    assert_eq!(notice["op"], "lagged", "{notice}");
    let delivered: Vec<u64> = frames
        .iter()
        .filter(|f| f["op"] == "event")
        .map(|f| f["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(delivered, (1..=delivered.len() as u64).collect::<Vec<_>>());
    assert_eq!(notice["offset"], delivered.len() as u64);

    // Resuming from where it stopped is refused as a whole: nothing partial is replayed.
    let (mut again, subscribed) = app
        .subscribe_v1(json!({"op": "subscribe", "since": {
            "epoch": app.state.hub.epoch(), "offset": notice["offset"]}}))
        .await;
    assert_eq!(subscribed["recovered"], false, "{subscribed}");
    app.assert_nothing_was_broadcast(&mut again).await;
}

async fn ready(app: &TestApp) -> Value {
    let response = app.get("/health/ready", Credential::Nothing).await;
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_hub_still_delivers_after_the_database_goes_away() {
    let proxy = FaultProxy::start(POSTGRES_ADDR.parse().unwrap())
        .await
        .expect("start the proxy");
    let app = spawn_app_with(|config| {
        config.database_url = config
            .database_url
            .replace(POSTGRES_ADDR, &proxy.address().to_string());
    })
    .await;
    let mut subscriber = app.subscribe_all().await;
    assert_eq!(ready(&app).await["database"], "up");

    proxy.set(Fault::Reset);

    let receipt = app
        .publish_ok(&event("health_check", "during_outage"))
        .await;
    let frame = next_event(&mut subscriber).await;
    assert_eq!(frame["event"]["source"], "during_outage");
    assert_eq!(frame["offset"], receipt["events"][0]["offset"]);
    let (mut sse, _) = app.stream("").await;
    app.publish_ok(&event("health_check", "still_down")).await;
    assert_eq!(sse.next_event().await.1["event"]["source"], "still_down");
    let readiness = ready(&app).await;
    assert_eq!(readiness["database"], "down", "{readiness}");
    assert_eq!(readiness["hub"], "running");
    let live = app.get("/health/live", Credential::Nothing).await;
    assert_eq!(live.status().as_u16(), 200);

    // Once the database is back, readiness says so again.
    proxy.restore();
    wait::until("readiness to say the database is up again", async || {
        let readiness = ready(&app).await;
        if readiness["database"] == "up" {
            Look::Ready(())
        } else {
            Look::NotYet(format!("{readiness:#}"))
        }
    })
    .await;
}
