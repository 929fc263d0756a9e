//! Input that must not wedge a path or reach a panic: a NUL the Realtime table cannot store
//! (400 at ingest, an error frame on `/events`), an event over the size limit (413), a
//! rollout hold past the maximum, legacy `/ws` numbers far out of range. Rows the target
//! refuses anyway are in `quarantine.rs`.

use serde_json::json;

use crate::support::ws::{next_json, send_json};
use crate::support::{assert_problem, event, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_nul_in_any_string_or_key_is_400_naming_field_and_index_and_nothing_is_kept() {
    let app = spawn_app().await;
    app.set_strategy("realtime").await;
    let mut ws = app.subscribe_all().await;
    let head = app.state.hub.head();
    let poisoned = json!({"event_type": "x", "source": "a", "data": {"s": "a\u{0}b"}});
    let batch = json!([event("stats", "ok"), poisoned, {"event_type": "y", "source": "b",
        "metadata": {"k\u{0}": 1}}]);

    let problem = assert_problem(app.publish(&batch).await, 400).await;

    let mut named: Vec<(u64, String)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    named.sort();
    assert_eq!(
        named,
        [
            (1, "data.s".to_string()),
            (2, "metadata.k\\u0000".to_string())
        ],
        "{problem:#}"
    );
    assert_eq!(app.state.hub.head(), head, "nothing was published");
    app.assert_nothing_was_broadcast(&mut ws).await;
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM monitoring.monitoring_events WHERE source IN ('ok', 'a', 'b')",
    )
    .fetch_one(&app.state.pool)
    .await
    .unwrap();
    assert_eq!(
        stored, 0,
        "nothing of the request reached the Realtime table"
    );
}

#[tokio::test]
async fn the_legacy_ingest_socket_refuses_a_nul_and_an_oversized_event_with_an_error_frame() {
    let app = spawn_app_with(|config| config.limits.max_event_bytes = 1024).await;
    let mut ws = app.subscribe_all().await;
    let mut ingest = app.connect_ws("/events", app.admin()).await.unwrap();
    let head = app.state.hub.head();

    send_json(
        &mut ingest,
        &json!({"event_type": "x", "source": "a", "data": {"s": "a\u{0}b"}}),
    )
    .await;
    let refused = next_json(&mut ingest).await;
    assert_eq!(refused["status"], "error", "{refused}");
    assert_eq!(refused["errors"][0]["field"], "data.s", "{refused}");
    let big = json!({"event_type": "x", "source": "s", "data": {"blob": "x".repeat(2000)}});
    send_json(&mut ingest, &big).await;
    let refused = next_json(&mut ingest).await;
    assert_eq!(refused["status"], "error", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("maximum event size"),
        "{refused}"
    );

    assert_eq!(app.state.hub.head(), head, "nothing was published");
    app.assert_nothing_was_broadcast(&mut ws).await;
}

#[tokio::test]
async fn an_event_over_the_size_limit_is_413_naming_its_index() {
    let app = spawn_app_with(|config| config.limits.max_event_bytes = 1024).await;
    let mut ws = app.subscribe_all().await;
    let big = json!({"event_type": "x", "source": "s", "data": {"blob": "x".repeat(2000)}});
    let batch = json!([event("stats", "s"), big]);

    let problem = assert_problem(app.publish(&batch).await, 413).await;

    assert_eq!(problem["errors"][0]["index"], 1, "{problem:#}");
    assert_eq!(problem["errors"].as_array().unwrap().len(), 1);
    app.assert_nothing_was_broadcast(&mut ws).await;
}

#[tokio::test]
async fn a_rollout_hold_past_thirty_days_is_400_naming_the_field() {
    let app = spawn_app().await;
    let plan = json!({"flag": "broadcast.category.debug", "environment": "production",
        "stages": [{"percentage": 10, "hold": "100000000d"}, {"percentage": 50}]});

    let response = app
        .client
        .post(app.url("/v1/rollouts"))
        .bearer_auth(&app.admin_key)
        .json(&plan)
        .send()
        .await
        .unwrap();

    let problem = assert_problem(response, 400).await;
    assert_eq!(
        problem["errors"][0]["field"], "stages[0].hold",
        "{problem:#}"
    );
}

#[tokio::test]
async fn legacy_commands_with_huge_numbers_answer_instead_of_panicking() {
    let app = spawn_app().await;
    app.publish_ok(&event("stats", "s")).await;
    let (mut ws, _) = app.connect_legacy().await;
    for command in [
        json!({"command": "get_historical_data", "hours": 1e300}),
        json!({"command": "get_time_series", "hours": 1e300, "interval_minutes": 1e300}),
        json!({"command": "get_recent_events", "limit": 1e300}),
        json!({"command": "export"}),
    ] {
        send_json(&mut ws, &command).await;
        let answer = next_json(&mut ws).await;
        assert_ne!(answer["type"], "error", "{command} -> {answer}");
        assert!(answer["type"].is_string(), "{command} -> {answer}");
    }
    send_json(
        &mut ws,
        &json!({"command": "get_historical_data", "hours": 1e300}),
    )
    .await;
    let answer = next_json(&mut ws).await;
    assert_eq!(answer["hours"], 24.0 * 366.0, "clamped: {answer}");
    assert_eq!(answer["events"].as_array().unwrap().len(), 1);
}
