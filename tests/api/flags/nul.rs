//! Postgres cannot store the NUL character in `text` or `jsonb`: a control-store write that
//! carries one (in a JSON body, a query string or a path parameter) is refused up front as
//! problem+json naming the field, never a 500, and nothing is stored or audited.

use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, assert_problem, expect_json, spawn_app};

#[tokio::test]
async fn a_nul_in_a_body_a_query_or_a_path_is_refused_by_name_and_changes_nothing() {
    let app = spawn_app().await;
    let flag = "broadcast.category.system";
    let history_path = format!("/v1/flags/{flag}/history");
    let before = history(&app, &history_path).await;

    let body = json!({"key": "nul.flag", "type": "boolean", "description": "a\u{0}b"});
    let created = app.as_admin(Method::POST, "/v1/flags", &body).await;
    let problem = assert_problem(created, 400).await;
    assert_eq!(problem["errors"][0]["field"], "description", "{problem:#}");

    let command = json!({"action": "force_open", "reason": "x\u{0}"});
    let forced = app
        .as_admin(Method::POST, "/v1/breakers/realtime", &command)
        .await;
    let problem = assert_problem(forced, 400).await;
    assert_eq!(problem["errors"][0]["field"], "reason", "{problem:#}");

    let flip = format!("/v1/flags/{flag}/environments/production/off?reason=a%00b");
    let flipped = app
        .as_admin(Method::POST, &flip, &serde_json::Value::Null)
        .await;
    let problem = assert_problem(flipped, 400).await;
    assert_eq!(problem["errors"][0]["field"], "reason", "{problem:#}");

    for path in [
        "/v1/flags/a%00b",
        "/v1/flags/a%00b/history",
        "/v1/flags/a%00b/schedule",
    ] {
        let response = app
            .as_admin(Method::GET, path, &serde_json::Value::Null)
            .await;
        assert_problem(response, 404).await;
    }

    let missing = app
        .as_admin(Method::GET, "/v1/flags/nul.flag", &serde_json::Value::Null)
        .await;
    assert_problem(missing, 404).await;
    assert_eq!(
        history(&app, &history_path).await,
        before,
        "no audit row was written"
    );
    let breaker = app
        .as_admin(
            Method::GET,
            "/v1/breakers/realtime",
            &serde_json::Value::Null,
        )
        .await;
    let breaker = expect_json(breaker, 200).await;
    assert_eq!(breaker["state"], "closed", "{breaker:#}");
}

async fn history(app: &TestApp, path: &str) -> serde_json::Value {
    let response = app
        .as_admin(Method::GET, path, &serde_json::Value::Null)
        .await;
    expect_json(response, 200).await
}
