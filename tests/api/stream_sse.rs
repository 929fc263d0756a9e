//! `GET /v1/stream`: Server-Sent Events, with filters as query parameters and resume with
//! `Last-Event-ID`.

use serde_json::json;

use crate::support::sse::SseClient;
use crate::support::{TestApp, assert_problem, event, spawn_app, spawn_app_with};

async fn publish_each(app: &TestApp, event_types: &[&str]) {
    for event_type in event_types {
        app.publish_ok(&event(event_type, "tests")).await;
    }
}

/// Event types received up to (not including) the first `sentinel`.
async fn until_sentinel(sse: &mut SseClient) -> Vec<String> {
    let mut received = Vec::new();
    loop {
        let (_, frame) = sse.next_event().await;
        let event_type = frame["event"]["event_type"].as_str().unwrap().to_string();
        if event_type == "sentinel" {
            return received;
        }
        received.push(event_type);
    }
}

#[tokio::test]
async fn published_event_reaches_a_v1_stream_subscriber() {
    let app = spawn_app().await;
    let (mut sse, subscribed) = app.stream("").await;
    assert_eq!(subscribed["offset"], 0);
    assert_eq!(subscribed["recovered"], false);

    let receipt = app
        .publish_ok(&json!({"event_type": "health_check", "source": "api",
                            "data": {"ok": true}}))
        .await;

    let (id, frame) = sse.next_event().await;
    assert_eq!(json!(id), receipt["events"][0]["offset"]);
    assert_eq!(frame["op"], "event");
    assert_eq!(frame["offset"], id);
    assert_eq!(frame["event"]["id"], receipt["events"][0]["id"]);
    assert_eq!(frame["event"]["event_type"], "health_check");
    assert_eq!(frame["event"]["category"], "critical");
    assert_eq!(frame["event"]["data"], json!({"ok": true}));
}

#[tokio::test]
async fn v1_stream_filters_by_event_type_category_and_source() {
    let app = spawn_app().await;
    let (mut by_type, _) = app.stream("event_types=cache_metrics,sentinel").await;
    let (mut by_category, _) = app.stream("categories=critical,debug").await;
    let (mut by_source, _) = app.stream("sources=websocket,sentinel_source").await;
    let (mut combined, _) = app
        .stream("event_types=cache_metrics,sentinel&sources=supabase,sentinel_source")
        .await;

    let batch = json!([
        event("health_check", "redis"),
        event("cache_metrics", "redis"),
        event("session_start", "websocket"),
        event("cache_metrics", "supabase"),
        event("debug", "websocket"),
        // Critical by its `error` data key, so every filter above lets it through.
        {"event_type": "sentinel", "source": "sentinel_source", "data": {"error": "x"}}
    ]);
    app.publish_ok(&batch).await;

    assert_eq!(
        until_sentinel(&mut by_type).await,
        ["cache_metrics", "cache_metrics"]
    );
    assert_eq!(
        until_sentinel(&mut by_category).await,
        ["health_check", "debug"]
    );
    assert_eq!(
        until_sentinel(&mut by_source).await,
        ["session_start", "debug"]
    );
    assert_eq!(until_sentinel(&mut combined).await, ["cache_metrics"]);
}

#[tokio::test]
async fn v1_stream_refuses_an_unknown_category_with_400() {
    let app = spawn_app().await;

    let response = app
        .open_stream("categories=urgent", app.admin(), None)
        .await;

    let problem = assert_problem(response, 400).await;
    assert_eq!(problem["errors"][0]["field"], "categories");
}

#[tokio::test]
async fn v1_stream_resume_with_last_event_id_recovers_exactly_the_missed_events() {
    let app = spawn_app().await;
    let (mut first, _) = app.stream("").await;
    publish_each(&app, &["seen_1", "seen_2"]).await;
    first.next_event().await;
    let (last_event_id, _) = first.next_event().await;
    assert_eq!(last_event_id, 2);
    drop(first);

    publish_each(&app, &["missed_3", "missed_4", "missed_5"]).await;
    let (mut second, subscribed) = app
        .resume_stream("", Some(&last_event_id.to_string()))
        .await;

    assert_eq!(subscribed["recovered"], true, "{subscribed}");
    for (offset, event_type) in [(3, "missed_3"), (4, "missed_4"), (5, "missed_5")] {
        let (id, frame) = second.next_event().await;
        assert_eq!(id, offset);
        assert_eq!(frame["event"]["event_type"], event_type);
    }
    publish_each(&app, &["live_6"]).await;
    let (id, frame) = second.next_event().await;
    assert_eq!(id, 6);
    assert_eq!(frame["event"]["event_type"], "live_6");
}

#[tokio::test]
async fn v1_stream_resume_from_outside_history_is_not_recovered_and_replays_nothing() {
    let app = spawn_app_with(|config| config.history_size = 3).await;
    publish_each(&app, &["e1", "e2", "e3", "e4", "e5", "e6"]).await;

    let (mut sse, subscribed) = app.resume_stream("", Some("1")).await;

    assert_eq!(subscribed["recovered"], false);
    publish_each(&app, &["sentinel"]).await;
    let (id, frame) = sse.next_event().await;
    assert_eq!(id, 7);
    assert_eq!(frame["event"]["event_type"], "sentinel");
}

#[tokio::test]
async fn v1_stream_refuses_a_last_event_id_that_is_not_an_offset() {
    let app = spawn_app().await;

    let response = app.open_stream("", app.admin(), Some("yesterday")).await;

    assert_problem(response, 400).await;
}
