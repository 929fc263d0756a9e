//! `POST /v1/events`: what an accepted publish returns and delivers, idempotency, and the
//! request-level refusals (413, 415, malformed JSON).

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::ws::next_event;
use crate::support::{assert_problem, event, spawn_app};

#[tokio::test]
async fn publishing_one_event_returns_202_with_its_id_and_offset() {
    let app = spawn_app().await;

    let receipt = app.publish_ok(&event("health_check", "api")).await;

    assert_eq!(receipt["accepted"], 1);
    let events = receipt["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["offset"], 1);
    let id = Uuid::parse_str(events[0]["id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7, "a server-chosen id is a UUID v7");
    assert!(events[0].get("duplicate").is_none());
}

#[tokio::test]
async fn a_batch_is_accepted_whole_in_order_with_consecutive_offsets() {
    let app = spawn_app().await;
    let mut ws = app.subscribe_all().await;

    let batch = json!([event("a", "s"), event("b", "s"), event("c", "s")]);
    let receipt = app.publish_ok(&batch).await;

    assert_eq!(receipt["accepted"], 3);
    let offsets: Vec<&Value> = receipt["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["offset"])
        .collect();
    assert_eq!(offsets, [&json!(1), &json!(2), &json!(3)]);
    for (offset, event_type) in [(1, "a"), (2, "b"), (3, "c")] {
        let frame = next_event(&mut ws).await;
        assert_eq!(frame["offset"], offset);
        assert_eq!(frame["event"]["event_type"], event_type);
    }
}

#[tokio::test]
async fn a_client_chosen_id_is_kept() {
    let app = spawn_app().await;
    let mut ws = app.subscribe_all().await;
    let id = Uuid::new_v4().to_string();

    let receipt = app
        .publish_ok(&json!({"id": id, "event_type": "stats", "source": "s"}))
        .await;

    assert_eq!(receipt["events"][0]["id"], id);
    assert_eq!(next_event(&mut ws).await["event"]["id"], id);
}

#[tokio::test]
async fn publishing_the_same_client_id_twice_is_acknowledged_twice_but_broadcast_once() {
    let app = spawn_app().await;
    let mut ws = app.subscribe_all().await;
    let body = json!({"id": Uuid::new_v4().to_string(), "event_type": "stats", "source": "s"});

    let first = app.publish_ok(&body).await;
    let second = app.publish_ok(&body).await;

    assert!(first["events"][0].get("duplicate").is_none(), "{first}");
    assert_eq!(second["events"][0]["duplicate"], true, "{second}");
    assert_eq!(second["events"][0]["offset"], first["events"][0]["offset"]);
    assert_eq!(second["events"][0]["id"], first["events"][0]["id"]);
    let delivered = next_event(&mut ws).await;
    assert_eq!(delivered["event"]["id"], body["id"]);
    // The repeat was not broadcast: the next event the subscriber sees is the sentinel.
    app.assert_nothing_was_broadcast(&mut ws).await;
}

#[tokio::test]
async fn the_legacy_timestamp_form_is_accepted_and_comes_out_as_rfc3339_utc() {
    let app = spawn_app().await;
    let mut ws = app.subscribe_all().await;

    app.publish_ok(&json!({"event_type": "stats", "source": "legacy",
                           "timestamp": "2025-10-18 23:00:00 AEDT"}))
        .await;

    let frame = next_event(&mut ws).await;
    let timestamp = frame["event"]["timestamp"].as_str().unwrap();
    let parsed = chrono::DateTime::parse_from_rfc3339(timestamp).expect("RFC 3339");
    assert_eq!(
        parsed.offset().local_minus_utc(),
        0,
        "{timestamp} is not UTC"
    );
    assert_eq!(
        parsed,
        chrono::DateTime::parse_from_rfc3339("2025-10-18T12:00:00Z").unwrap()
    );
}

#[tokio::test]
async fn each_event_is_classified_into_its_legacy_category() {
    let app = spawn_app().await;
    let mut ws = app.subscribe_all().await;
    let cases = [
        (event("circuit_breaker_open", "s"), "critical"),
        (event("cache_metrics", "s"), "performance"),
        (event("session_start", "s"), "user_activity"),
        (event("websocket_health", "s"), "system"),
        (event("test_event", "s"), "debug"),
        (event("upstream_timeout", "s"), "critical"),
        (
            json!({"event_type": "mystery", "source": "s", "data": {"metrics": {}}}),
            "performance",
        ),
        (event("mystery", "s"), "system"),
    ];

    let batch: Vec<Value> = cases.iter().map(|(e, _)| e.clone()).collect();
    app.publish_ok(&Value::Array(batch)).await;

    for (sent, category) in &cases {
        let frame = next_event(&mut ws).await;
        assert_eq!(frame["event"]["category"], *category, "for {sent}");
    }
}

#[tokio::test]
async fn a_batch_of_1001_events_is_413_and_nothing_is_broadcast() {
    let app = spawn_app().await;
    let mut ws = app.subscribe_all().await;
    let batch: Vec<Value> = (0..1001).map(|_| event("stats", "s")).collect();

    let response = app.publish(&Value::Array(batch)).await;

    assert_problem(response, 413).await;
    app.assert_nothing_was_broadcast(&mut ws).await;
}

#[tokio::test]
async fn a_batch_of_1000_events_is_accepted() {
    let app = spawn_app().await;
    let batch: Vec<Value> = (0..1000).map(|_| event("stats", "s")).collect();

    let receipt = app.publish_ok(&Value::Array(batch)).await;

    assert_eq!(receipt["accepted"], 1000);
}

#[tokio::test]
async fn a_body_over_1_mib_is_413_and_nothing_is_broadcast() {
    let app = spawn_app().await;
    let mut ws = app.subscribe_all().await;
    let body = json!({"event_type": "stats", "source": "s",
                      "data": {"blob": "x".repeat(1024 * 1024)}});

    let response = app.publish(&body).await;

    assert_problem(response, 413).await;
    app.assert_nothing_was_broadcast(&mut ws).await;
}

#[tokio::test]
async fn a_text_plain_body_is_415() {
    let app = spawn_app().await;
    let mut ws = app.subscribe_all().await;
    let body = event("stats", "s").to_string().into_bytes();

    let response = app.publish_raw("text/plain", body).await;

    assert_problem(response, 415).await;
    app.assert_nothing_was_broadcast(&mut ws).await;
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    let mut ws = app.subscribe_all().await;

    let response = app
        .publish_raw("application/json", br#"{"event_type": "stats", "#.to_vec())
        .await;

    let problem = assert_problem(response, 400).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("JSON"),
        "{problem}"
    );
    app.assert_nothing_was_broadcast(&mut ws).await;
}
