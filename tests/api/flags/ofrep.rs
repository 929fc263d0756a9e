//! OFREP, as an OpenFeature SDK's OFREP provider speaks it: one flag, the bulk endpoint with
//! its ETag, the error codes, and both ways of presenting the key.

use reqwest::Method;
use serde_json::{Value, json};
use switchyard::api::auth::Scope;

use super::{etag, ok_json};
use crate::support::{Credential, TestApp, spawn_app};

const ONE: &str = "/ofrep/v1/evaluate/flags";

/// `POST /ofrep/v1/evaluate/flags/{key}` as admin with a raw body.
async fn ofrep_one(app: &TestApp, key: &str, body: &str) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(&format!("{ONE}/{key}")))
        .bearer_auth(&app.admin_key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// The bulk endpoint as admin for `context`, with an optional `If-None-Match`.
async fn ofrep_bulk(
    app: &TestApp,
    context: &Value,
    if_none_match: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(ONE))
        .bearer_auth(&app.admin_key)
        .json(&json!({"context": context}));
    if let Some(etag) = if_none_match {
        request = request.header("if-none-match", etag);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn ofrep_evaluates_one_flag_with_its_key_value_reason_variant_and_metadata() {
    let app = spawn_app().await;
    app.create_boolean_flag("new-ui").await;
    app.flip_ok("new-ui", true).await;

    let (status, body) = ofrep_one(&app, "new-ui", r#"{"context": {"targetingKey": "u-1"}}"#).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["key"], "new-ui");
    assert_eq!(body["value"], true);
    assert_eq!(body["reason"], "STATIC");
    assert_eq!(body["variant"], "on");
    assert_eq!(body["metadata"]["version"], 2, "{body}");
    assert_eq!(body["metadata"]["stale"], false, "{body}");
}

#[tokio::test]
async fn ofrep_answers_an_unknown_flag_with_404_flag_not_found() {
    let app = spawn_app().await;
    let (status, body) = ofrep_one(&app, "no-such-flag", r#"{"context": {}}"#).await;
    assert_eq!(status, 404);
    assert_eq!(body["key"], "no-such-flag");
    assert_eq!(body["errorCode"], "FLAG_NOT_FOUND");
}

#[tokio::test]
async fn ofrep_answers_400_with_the_error_code_for_each_bad_request() {
    let app = spawn_app().await;
    app.create_boolean_flag("partial").await;
    app.flip_ok("partial", true).await;
    ok_json(app.set_rollout("partial", &json!({"percentage": 30})).await).await;

    let cases = [
        ("a body that is not JSON", r#"{"context": "#, "PARSE_ERROR"),
        (
            "a rollout without a targeting key",
            r#"{"context": {"region": "eu"}}"#,
            "TARGETING_KEY_MISSING",
        ),
        (
            "a context that is not an object",
            r#"{"context": ["u-1"]}"#,
            "INVALID_CONTEXT",
        ),
        (
            "a targeting key that is not a string",
            r#"{"context": {"targetingKey": 7}}"#,
            "INVALID_CONTEXT",
        ),
    ];
    for (what, body, code) in cases {
        let (status, answer) = ofrep_one(&app, "partial", body).await;
        assert_eq!(status, 400, "{what}: {answer}");
        assert_eq!(answer["errorCode"], code, "{what}: {answer}");
        assert_eq!(answer["key"], "partial", "{what}: {answer}");
        assert!(
            answer["errorDetails"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{what}: {answer}"
        );
    }
}

#[tokio::test]
async fn ofrep_bulk_sets_an_etag_that_answers_304_until_a_flag_changes() {
    let app = spawn_app().await;
    app.create_boolean_flag("bulk").await;
    let context = json!({"targetingKey": "u-1"});

    let first = ofrep_bulk(&app, &context, None).await;
    let tag = etag(&first);
    let body = ok_json(first).await;
    let flags = body["flags"].as_array().expect("flags");
    let bulk = flags
        .iter()
        .find(|f| f["key"] == "bulk")
        .expect("the new flag");
    assert_eq!(bulk["reason"], "DISABLED", "{bulk}");
    assert!(
        flags.iter().any(|f| f["key"] == "broadcast.strategy"),
        "{body}"
    );

    let unchanged = ofrep_bulk(&app, &context, Some(&tag)).await;
    assert_eq!(unchanged.status().as_u16(), 304);
    assert_eq!(etag(&unchanged), tag);
    assert!(unchanged.bytes().await.unwrap().is_empty());

    app.flip_ok("bulk", true).await;
    let changed = ofrep_bulk(&app, &context, Some(&tag)).await;
    assert_ne!(etag(&changed), tag);
    let body = ok_json(changed).await;
    let bulk = body["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "bulk")
        .cloned();
    assert_eq!(bulk.unwrap()["value"], true);
}

#[tokio::test]
async fn ofrep_takes_the_key_as_a_bearer_token_or_x_api_key_and_refuses_none_with_401() {
    let app = spawn_app().await;
    let reader = app.create_key(Scope::Read).await;
    let body = json!({"context": {"targetingKey": "u-1"}});
    let path = format!("{ONE}/broadcast.strategy");

    for credential in [
        Credential::Bearer(&reader.key),
        Credential::ApiKeyHeader(&reader.key),
    ] {
        let response = app.send_json(Method::POST, &path, credential, &body).await;
        assert_eq!(
            ok_json(response).await["value"],
            "websocket",
            "{credential:?}"
        );
        let bulk = app.send_json(Method::POST, ONE, credential, &body).await;
        assert_eq!(bulk.status().as_u16(), 200, "{credential:?}");
    }
    let refused = app
        .send_json(Method::POST, &path, Credential::Nothing, &body)
        .await;
    crate::support::assert_problem(refused, 401).await;
}
