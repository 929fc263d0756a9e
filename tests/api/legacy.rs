//! The legacy surface, in the exact shapes the legacy dashboard page and producers rely on
//! (REFERENCE.md section 1): the dashboard WebSocket `/ws`, the ingest WebSocket `/events`,
//! and `/status`.

use serde_json::{Value, json};

use crate::support::ws::{next_event, next_json, send_json, send_text};
use crate::support::{Credential, event, spawn_app};

/// A connection event as the legacy producers send it.
fn connection_event(connection_type: &str, direction: &str) -> Value {
    json!({"event_type": "event", "source": "sdk", "metadata": {"host": "worker-1"},
           "data": {"connection_type": connection_type, "direction": direction,
                    "script_name": "worker.py", "function_name": "fetch",
                    "data_size_bytes": 128, "response_time_ms": 3.5, "error": null}})
}

fn session_metrics() -> Value {
    json!({"event_type": "session_metrics", "source": "sdk",
           "timestamp": "2025-10-18 23:00:00 AEDT",
           "data": {"active_sessions": 2, "total_sessions": 9, "conversation_length": 14,
                    "current_model": "glm", "context_tokens_used": 1200,
                    "context_tokens_max": 8000}})
}

fn keys_of(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn legacy_ws_sends_initial_stats_first_with_a_stats_object_and_a_recent_events_array() {
    let app = spawn_app().await;

    let (_ws, initial) = app.connect_legacy().await;

    assert!(initial["stats"].is_object(), "{initial}");
    assert!(initial["recent_events"].is_array(), "{initial}");
    assert!(initial["session_metrics"].is_object(), "{initial}");
    assert!(chrono::DateTime::parse_from_rfc3339(initial["timestamp"].as_str().unwrap()).is_ok());
}

#[tokio::test]
async fn legacy_ws_initial_stats_carry_what_was_published_before_connecting() {
    let app = spawn_app().await;
    app.publish_ok(&json!([
        connection_event("redis", "sent"),
        session_metrics()
    ]))
    .await;

    let (_ws, initial) = app.connect_legacy().await;

    assert_eq!(initial["stats"]["redis"]["total_events"], 1, "{initial}");
    assert_eq!(initial["session_metrics"]["active_sessions"], 2);
    let recent = initial["recent_events"].as_array().unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0]["type"], "event");
    assert_eq!(recent[0]["connection_type"], "redis");
    assert_eq!(recent[1]["type"], "session_metrics");
}

#[tokio::test]
async fn legacy_ws_sends_connection_events_flat() {
    let app = spawn_app().await;
    let (mut ws, _) = app.connect_legacy().await;

    app.publish_ok(&connection_event("redis", "sent")).await;

    let frame = next_json(&mut ws).await;
    assert_eq!(frame["type"], "event", "{frame}");
    assert_eq!(frame["connection_type"], "redis");
    assert_eq!(frame["direction"], "sent");
    assert_eq!(frame["script_name"], "worker.py");
    assert_eq!(frame["function_name"], "fetch");
    assert_eq!(frame["data_size_bytes"], 128);
    assert_eq!(frame["response_time_ms"], 3.5);
    assert!(frame["error"].is_null());
    assert_eq!(frame["metadata"], json!({"host": "worker-1"}));
    assert!(
        frame.get("data").is_none(),
        "the data fields are at the top level"
    );
    let broadcast_time = frame["broadcast_time"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(broadcast_time).is_ok());
}

#[tokio::test]
async fn legacy_ws_sends_other_events_as_type_data_timestamp() {
    let app = spawn_app().await;
    let (mut ws, _) = app.connect_legacy().await;

    app.publish_ok(&session_metrics()).await;

    let frame = next_json(&mut ws).await;
    assert_eq!(keys_of(&frame), ["data", "timestamp", "type"], "{frame}");
    assert_eq!(frame["type"], "session_metrics");
    assert_eq!(frame["data"], session_metrics()["data"]);
    let timestamp = chrono::DateTime::parse_from_rfc3339(frame["timestamp"].as_str().unwrap());
    assert_eq!(
        timestamp.unwrap(),
        chrono::DateTime::parse_from_rfc3339("2025-10-18T12:00:00Z").unwrap()
    );
}

#[tokio::test]
async fn legacy_ws_answers_get_stats_with_stats_per_connection_type() {
    let app = spawn_app().await;
    let (mut ws, _) = app.connect_legacy().await;
    app.publish_ok(&json!([
        connection_event("redis", "sent"),
        connection_event("redis", "received"),
        connection_event("supabase", "sent")
    ]))
    .await;
    for _ in 0..3 {
        next_json(&mut ws).await;
    }

    send_json(&mut ws, &json!({"command": "get_stats"})).await;
    let all = next_json(&mut ws).await;
    send_json(
        &mut ws,
        &json!({"command": "get_stats", "connection_type": "supabase"}),
    )
    .await;
    let one = next_json(&mut ws).await;

    assert_eq!(all["type"], "stats", "{all}");
    let redis = &all["stats"]["redis"];
    assert_eq!(
        keys_of(redis),
        [
            "active_connections",
            "avg_response_time_ms",
            "connection_type",
            "last_event_timestamp",
            "total_bytes",
            "total_errors",
            "total_events",
            "total_received_bytes",
            "total_sent_bytes"
        ]
    );
    assert_eq!(redis["total_events"], 2);
    assert_eq!(redis["total_sent_bytes"], 128);
    assert_eq!(redis["total_received_bytes"], 128);
    assert_eq!(redis["total_bytes"], 256);
    assert_eq!(redis["avg_response_time_ms"], 3.5);
    assert_eq!(keys_of(&one["stats"]), ["supabase"], "{one}");
    assert_eq!(one["connection_type"], "supabase");
}

#[tokio::test]
async fn legacy_ws_answers_get_recent_events_with_the_newest_up_to_the_limit() {
    let app = spawn_app().await;
    let (mut ws, _) = app.connect_legacy().await;
    app.publish_ok(&json!([event("a", "s"), event("b", "s"), event("c", "s")]))
        .await;
    for _ in 0..3 {
        next_json(&mut ws).await;
    }

    send_json(
        &mut ws,
        &json!({"command": "get_recent_events", "limit": 2}),
    )
    .await;

    let reply = next_json(&mut ws).await;
    assert_eq!(reply["type"], "recent_events", "{reply}");
    let types: Vec<&Value> = reply["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["type"])
        .collect();
    assert_eq!(types, [&json!("b"), &json!("c")]);
}

#[tokio::test]
async fn legacy_ws_answers_invalid_json_and_unknown_commands_with_an_error_frame() {
    let app = spawn_app().await;
    let (mut ws, _) = app.connect_legacy().await;

    send_text(&mut ws, "{not json").await;
    let invalid = next_json(&mut ws).await;
    send_json(&mut ws, &json!({"command": "self_destruct"})).await;
    let unknown = next_json(&mut ws).await;

    assert_eq!(invalid["type"], "error", "{invalid}");
    assert!(invalid["message"].as_str().is_some());
    assert_eq!(unknown["type"], "error", "{unknown}");
    assert!(
        unknown["message"]
            .as_str()
            .unwrap()
            .contains("self_destruct")
    );
}

#[tokio::test]
async fn legacy_ingest_ws_acknowledges_each_event_and_broadcasts_it() {
    let app = spawn_app().await;
    let mut subscriber = app.subscribe_all().await;
    let publisher = app.create_key(switchyard::api::auth::Scope::Publish).await;
    let mut ingest = app
        .connect_ws("/events", Credential::Bearer(&publisher.key))
        .await
        .expect("connect /events");

    send_json(&mut ingest, &event("cache_metrics", "legacy_producer")).await;

    let ack = next_json(&mut ingest).await;
    assert_eq!(ack["status"], "received", "{ack}");
    assert_eq!(ack["event_type"], "cache_metrics");
    let frame = next_event(&mut subscriber).await;
    assert_eq!(frame["event"]["source"], "legacy_producer");
    assert_eq!(frame["offset"], ack["offset"]);
}

#[tokio::test]
async fn legacy_ingest_ws_answers_a_bad_event_with_an_error_and_broadcasts_nothing() {
    let app = spawn_app().await;
    let mut subscriber = app.subscribe_all().await;
    let mut ingest = app
        .connect_ws("/events", app.admin())
        .await
        .expect("connect /events");

    send_json(&mut ingest, &json!({"event_type": "", "source": "s"})).await;
    let bad_event = next_json(&mut ingest).await;
    send_text(&mut ingest, "not json").await;
    let bad_json = next_json(&mut ingest).await;

    assert_eq!(bad_event["status"], "error", "{bad_event}");
    assert!(
        bad_event["message"]
            .as_str()
            .unwrap()
            .contains("event_type")
    );
    assert_eq!(bad_json["status"], "error", "{bad_json}");
    app.assert_nothing_was_broadcast(&mut subscriber).await;
}

async fn status(app: &crate::support::TestApp) -> Value {
    let response = app.get("/status", Credential::Nothing).await;
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn status_keeps_the_legacy_shape_and_counts_connected_clients() {
    let app = spawn_app().await;
    let before = status(&app).await["clients_connected"].as_u64().unwrap();

    let _subscriber = app.subscribe_all().await;
    let (_dashboard, _) = app.connect_legacy().await;
    let status = status(&app).await;

    assert_eq!(status["status"], "ok");
    assert_eq!(status["service"], "monitoring");
    assert_eq!(status["clients_connected"], before + 2, "{status}");
    assert!(chrono::DateTime::parse_from_rfc3339(status["timestamp"].as_str().unwrap()).is_ok());
}
