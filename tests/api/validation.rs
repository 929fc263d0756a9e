//! Every validation rule of an event refuses the request whole: 400 problem+json naming each
//! bad field with the index of its event, and nothing of it broadcast (DESIGN.md invariant 5).

use serde_json::{Value, json};

use crate::support::{assert_problem, event, spawn_app};

/// Publishes `body` with a subscriber attached, and asserts: 400 problem+json whose `errors`
/// are exactly `expected` (index, field), nothing stored in history, nothing broadcast.
async fn assert_rejected(body: Value, expected: &[(usize, &str)]) -> Value {
    let app = spawn_app().await;
    let mut ws = app.subscribe_all().await;
    let head_before = app.state.hub.head();

    let response = app.publish(&body).await;

    let problem = assert_problem(response, 400).await;
    let errors = problem["errors"].as_array().expect("a list of errors");
    for (index, field) in expected {
        assert!(
            errors
                .iter()
                .any(|e| e["index"] == *index && e["field"] == *field),
            "no error for field `{field}` of event {index}: {problem:#}"
        );
    }
    assert_eq!(errors.len(), expected.len(), "{problem:#}");
    assert_eq!(
        app.state.hub.head(),
        head_before,
        "the request reached history"
    );
    app.assert_nothing_was_broadcast(&mut ws).await;
    problem
}

fn valid() -> Value {
    event("stats", "tests")
}

fn with(field: &str, value: Value) -> Value {
    let mut event = valid();
    event[field] = value;
    event
}

fn without(field: &str) -> Value {
    let mut event = valid();
    event.as_object_mut().unwrap().remove(field);
    event
}

#[tokio::test]
async fn an_event_without_event_type_is_rejected() {
    assert_rejected(without("event_type"), &[(0, "event_type")]).await;
}

#[tokio::test]
async fn an_empty_or_blank_event_type_is_rejected() {
    let body = json!([
        with("event_type", json!("")),
        with("event_type", json!("   "))
    ]);
    assert_rejected(body, &[(0, "event_type"), (1, "event_type")]).await;
}

#[tokio::test]
async fn an_event_type_of_51_characters_is_rejected() {
    assert_rejected(
        with("event_type", json!("e".repeat(51))),
        &[(0, "event_type")],
    )
    .await;
}

#[tokio::test]
async fn an_event_type_that_is_not_a_string_is_rejected() {
    assert_rejected(with("event_type", json!(42)), &[(0, "event_type")]).await;
}

#[tokio::test]
async fn an_event_without_source_is_rejected() {
    assert_rejected(without("source"), &[(0, "source")]).await;
}

#[tokio::test]
async fn an_empty_source_is_rejected() {
    assert_rejected(with("source", json!("")), &[(0, "source")]).await;
}

#[tokio::test]
async fn a_source_of_101_characters_is_rejected() {
    assert_rejected(with("source", json!("s".repeat(101))), &[(0, "source")]).await;
}

#[tokio::test]
async fn the_longest_event_type_and_source_are_accepted() {
    let app = spawn_app().await;
    let body = json!({"event_type": "e".repeat(50), "source": "s".repeat(100)});
    app.publish_ok(&body).await;
}

#[tokio::test]
async fn data_that_is_not_an_object_is_rejected() {
    let body = json!([
        with("data", json!([1, 2])),
        with("data", json!("text")),
        with("data", json!(5))
    ]);
    assert_rejected(body, &[(0, "data"), (1, "data"), (2, "data")]).await;
}

#[tokio::test]
async fn metadata_that_is_not_an_object_is_rejected() {
    let body = json!([
        with("metadata", json!(["a"])),
        with("metadata", json!(true))
    ]);
    assert_rejected(body, &[(0, "metadata"), (1, "metadata")]).await;
}

#[tokio::test]
async fn a_timestamp_that_is_not_a_date_is_rejected() {
    let body = json!([
        with("timestamp", json!("yesterday")),
        with("timestamp", json!(1_700_000_000)),
        with("timestamp", json!("2025-10-18 23:00:00 XYZT")),
        with("timestamp", json!("2025-13-45T25:00:00Z"))
    ]);
    let expected = [
        (0, "timestamp"),
        (1, "timestamp"),
        (2, "timestamp"),
        (3, "timestamp"),
    ];
    assert_rejected(body, &expected).await;
}

#[tokio::test]
async fn an_id_that_is_not_a_uuid_is_rejected() {
    let body = json!([with("id", json!("not-a-uuid")), with("id", json!(42))]);
    assert_rejected(body, &[(0, "id"), (1, "id")]).await;
}

#[tokio::test]
async fn an_unknown_field_is_rejected() {
    assert_rejected(with("colour", json!("red")), &[(0, "colour")]).await;
}

#[tokio::test]
async fn an_event_that_is_not_an_object_is_rejected() {
    assert_rejected(json!([valid(), "an event"]), &[(1, "")]).await;
}

#[tokio::test]
async fn one_bad_event_in_a_batch_rejects_the_whole_batch_and_names_its_index() {
    let body = json!([valid(), valid(), without("source"), valid()]);
    assert_rejected(body, &[(2, "source")]).await;
}

#[tokio::test]
async fn every_bad_field_of_every_event_is_named() {
    let body = json!([
        {"event_type": "", "source": "s".repeat(101), "data": 1},
        valid(),
        {"event_type": "stats", "source": "s", "id": "x", "extra": 1}
    ]);
    let expected = [
        (0, "event_type"),
        (0, "source"),
        (0, "data"),
        (2, "id"),
        (2, "extra"),
    ];
    assert_rejected(body, &expected).await;
}

#[tokio::test]
async fn an_empty_batch_is_rejected() {
    let app = spawn_app().await;
    let mut ws = app.subscribe_all().await;

    let response = app.publish(&json!([])).await;

    let problem = assert_problem(response, 400).await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 1, "{problem}");
    app.assert_nothing_was_broadcast(&mut ws).await;
}
