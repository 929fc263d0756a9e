//! `GET /v1/ws`: delivery, filters, resume with `since`, and the protocol's small frames.

use serde_json::{Value, json};

use crate::support::ws::{next_event, next_json, send_json, send_text};
use crate::support::{TestApp, event, spawn_app, spawn_app_with};

/// The epoch of the app's stream, as `/health/ready` reports it.
async fn epoch_of(app: &TestApp) -> String {
    let ready: Value = app
        .get("/health/ready", crate::support::Credential::Nothing)
        .await
        .json()
        .await
        .unwrap();
    ready["epoch"].as_str().unwrap().to_string()
}

/// Publishes these events one request each; returns their offsets.
async fn publish_each(app: &TestApp, event_types: &[&str]) -> Vec<u64> {
    let mut offsets = Vec::new();
    for event_type in event_types {
        let receipt = app.publish_ok(&event(event_type, "tests")).await;
        offsets.push(receipt["events"][0]["offset"].as_u64().unwrap());
    }
    offsets
}

#[tokio::test]
async fn published_event_reaches_a_v1_ws_subscriber() {
    let app = spawn_app().await;
    let (mut ws, subscribed) = app.subscribe_v1(json!({"op": "subscribe"})).await;
    assert_eq!(subscribed["offset"], 0);
    assert_eq!(subscribed["recovered"], false);
    assert!(subscribed["epoch"].as_str().is_some_and(|e| !e.is_empty()));

    let receipt = app
        .publish_ok(&json!({"event_type": "cache_metrics", "source": "redis",
                            "timestamp": "2025-10-18T23:00:00+11:00",
                            "data": {"hits": 3}, "metadata": {"region": "au"}}))
        .await;

    let frame = next_event(&mut ws).await;
    assert_eq!(frame["offset"], receipt["events"][0]["offset"]);
    let delivered = &frame["event"];
    assert_eq!(delivered["id"], receipt["events"][0]["id"]);
    assert_eq!(delivered["event_type"], "cache_metrics");
    assert_eq!(delivered["category"], "performance");
    assert_eq!(delivered["source"], "redis");
    assert_eq!(delivered["data"], json!({"hits": 3}));
    assert_eq!(delivered["metadata"], json!({"region": "au"}));
    let timestamp = chrono::DateTime::parse_from_rfc3339(delivered["timestamp"].as_str().unwrap());
    assert_eq!(
        timestamp.unwrap(),
        chrono::DateTime::parse_from_rfc3339("2025-10-18T12:00:00Z").unwrap()
    );
}

#[tokio::test]
async fn every_v1_ws_subscriber_receives_every_event() {
    let app = spawn_app().await;
    let mut first = app.subscribe_all().await;
    let mut second = app.subscribe_all().await;

    publish_each(&app, &["a", "b"]).await;

    for ws in [&mut first, &mut second] {
        assert_eq!(next_event(ws).await["event"]["event_type"], "a");
        assert_eq!(next_event(ws).await["event"]["event_type"], "b");
    }
}

/// Subscribes with `filter`, publishes a mixed batch, and returns the event types received
/// before the final `sentinel` (which every filter in these tests lets through).
async fn received_with_filter(filter: Value) -> Vec<String> {
    let app = spawn_app().await;
    let (mut ws, _) = app
        .subscribe_v1(json!({"op": "subscribe", "filter": filter}))
        .await;
    let batch = json!([
        event("health_check", "redis"),
        event("cache_metrics", "redis"),
        event("session_start", "websocket"),
        event("cache_metrics", "supabase"),
        event("debug", "websocket"),
        {"event_type": "sentinel", "source": "sentinel_source", "data": {"error": "x"}}
    ]);
    app.publish_ok(&batch).await;
    let mut received = Vec::new();
    loop {
        let frame = next_event(&mut ws).await;
        let event_type = frame["event"]["event_type"].as_str().unwrap().to_string();
        if event_type == "sentinel" {
            return received;
        }
        received.push(event_type);
    }
}

#[tokio::test]
async fn v1_ws_filters_by_event_type() {
    let received =
        received_with_filter(json!({"event_types": ["cache_metrics", "sentinel"]})).await;
    assert_eq!(received, ["cache_metrics", "cache_metrics"]);
}

#[tokio::test]
async fn v1_ws_filters_by_category() {
    // The sentinel is classified critical by its `error` data key.
    let received = received_with_filter(json!({"categories": ["critical", "debug"]})).await;
    assert_eq!(received, ["health_check", "debug"]);
}

#[tokio::test]
async fn v1_ws_filters_by_source() {
    let received = received_with_filter(json!({"sources": ["websocket", "sentinel_source"]})).await;
    assert_eq!(received, ["session_start", "debug"]);
}

#[tokio::test]
async fn v1_ws_filter_parts_combine_with_and() {
    let filter = json!({"event_types": ["cache_metrics", "sentinel"],
                        "sources": ["supabase", "sentinel_source"]});
    assert_eq!(received_with_filter(filter).await, ["cache_metrics"]);
}

#[tokio::test]
async fn v1_ws_refuses_an_unknown_category_with_an_error_frame() {
    let app = spawn_app().await;
    let mut ws = app
        .connect_ws("/v1/ws", app.admin())
        .await
        .expect("connect");

    send_json(
        &mut ws,
        &json!({"op": "subscribe", "filter": {"categories": ["urgent"]}}),
    )
    .await;

    let frame = next_json(&mut ws).await;
    assert_eq!(frame["op"], "error", "{frame}");
    assert_eq!(frame["code"], "bad_filter");
    assert!(frame["message"].as_str().unwrap().contains("urgent"));
}

#[tokio::test]
async fn v1_ws_answers_ping_with_pong_and_an_unreadable_frame_with_an_error() {
    let app = spawn_app().await;
    let mut ws = app
        .connect_ws("/v1/ws", app.admin())
        .await
        .expect("connect");

    send_json(&mut ws, &json!({"op": "ping"})).await;
    assert_eq!(next_json(&mut ws).await, json!({"op": "pong"}));

    send_text(&mut ws, "not json").await;
    let frame = next_json(&mut ws).await;
    assert_eq!(frame["op"], "error", "{frame}");
    assert_eq!(frame["code"], "bad_request");

    send_json(&mut ws, &json!({"op": "dance"})).await;
    assert_eq!(next_json(&mut ws).await["op"], "error");
}

#[tokio::test]
async fn v1_ws_resume_with_since_recovers_exactly_the_missed_events() {
    let app = spawn_app().await;
    let (mut first, subscribed) = app.subscribe_v1(json!({"op": "subscribe"})).await;
    let epoch = subscribed["epoch"].clone();
    publish_each(&app, &["seen_1", "seen_2"]).await;
    next_event(&mut first).await;
    let last_seen = next_event(&mut first).await["offset"].as_u64().unwrap();
    assert_eq!(last_seen, 2);
    drop(first);

    let missed = publish_each(&app, &["missed_3", "missed_4", "missed_5"]).await;
    let (mut second, subscribed) = app
        .subscribe_v1(json!({"op": "subscribe", "since": {"epoch": epoch, "offset": last_seen}}))
        .await;

    assert_eq!(subscribed["recovered"], true, "{subscribed}");
    assert_eq!(subscribed["offset"], 5);
    for (offset, event_type) in missed.iter().zip(["missed_3", "missed_4", "missed_5"]) {
        let frame = next_event(&mut second).await;
        assert_eq!(frame["offset"], *offset);
        assert_eq!(frame["event"]["event_type"], event_type);
    }
    // Live events follow without a gap or a repeat.
    publish_each(&app, &["live_6"]).await;
    let frame = next_event(&mut second).await;
    assert_eq!(frame["offset"], 6);
    assert_eq!(frame["event"]["event_type"], "live_6");
}

#[tokio::test]
async fn v1_ws_resume_from_outside_history_is_not_recovered_and_replays_nothing() {
    let app = spawn_app_with(|config| config.history_size = 3).await;
    let epoch = epoch_of(&app).await;
    publish_each(&app, &["e1", "e2", "e3", "e4", "e5", "e6"]).await;

    for since_offset in [1, 99] {
        let (mut ws, subscribed) = app
            .subscribe_v1(
                json!({"op": "subscribe", "since": {"epoch": epoch, "offset": since_offset}}),
            )
            .await;
        assert_eq!(subscribed["recovered"], false, "since {since_offset}");
        app.assert_nothing_was_broadcast(&mut ws).await;
    }
}

#[tokio::test]
async fn v1_ws_resume_from_another_epoch_is_not_recovered_and_replays_nothing() {
    let app = spawn_app().await;
    publish_each(&app, &["e1", "e2", "e3"]).await;

    let (mut ws, subscribed) = app
        .subscribe_v1(json!({"op": "subscribe", "since": {"epoch": "0123456789ab", "offset": 1}}))
        .await;

    assert_eq!(subscribed["recovered"], false);
    assert_eq!(subscribed["offset"], 3);
    app.assert_nothing_was_broadcast(&mut ws).await;
}
