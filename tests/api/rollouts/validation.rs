//! Bad plans are refused naming each bad field, and store nothing.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use super::{ENV, spawn_fast, start_plan};
use crate::support::{assert_problem, expect_json, spawn_app_with};

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"].as_array().map_or(Vec::new(), |errors| {
        errors
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_string())
            .collect()
    })
}

#[tokio::test]
async fn bad_plans_are_refused_naming_each_field_and_store_nothing() {
    let app = spawn_fast().await;
    app.create_boolean_flag("new-ui").await;
    let post = |body: Value| {
        let app = &app;
        async move { app.as_admin(Method::POST, "/v1/rollouts", &body).await }
    };

    let problem = assert_problem(
        post(json!({"flag": "new-ui", "environment": ENV,
        "stages": [{"percentage": 50, "hold": "soon"}, {"percentage": 20, "hold": "1m"},
                   {"percentage": 101}],
        "guardrails": {"breaker_closed": ["nope"]}}))
        .await,
        400,
    )
    .await;
    assert_eq!(
        fields(&problem),
        [
            "stages[0].hold",
            "stages[1].percentage",
            "stages[2].percentage",
            "guardrails.breaker_closed[0]"
        ]
    );
    let problem = assert_problem(
        post(json!({"flag": "new-ui", "environment": ENV, "stages": []})).await,
        400,
    )
    .await;
    assert_eq!(fields(&problem), ["stages"]);
    let problem = assert_problem(
        post(json!({"flag": "new-ui", "environment": ENV,
        "stages": [{"percentage": 10}], "speed": "fast"}))
        .await,
        400,
    )
    .await;
    assert_eq!(fields(&problem), ["speed"]);
    assert_problem(
        post(json!({"flag": "no-such-flag", "environment": ENV,
        "stages": [{"percentage": 10}]}))
        .await,
        404,
    )
    .await;
    let stale = app
        .client
        .post(app.url("/v1/rollouts"))
        .bearer_auth(&app.admin_key)
        .header("if-match", "\"7\"")
        .json(&json!({"flag": "new-ui", "environment": ENV, "stages": [{"percentage": 10}]}))
        .send()
        .await
        .unwrap();
    assert_problem(stale, 412).await;

    let stored = expect_json(
        app.as_admin(Method::GET, "/v1/rollouts", &Value::Null)
            .await,
        200,
    )
    .await;
    assert_eq!(stored, json!([]));
    let history = expect_json(
        app.as_admin(Method::GET, "/v1/flags/new-ui/history", &Value::Null)
            .await,
        200,
    )
    .await;
    assert_eq!(
        history.as_array().unwrap().len(),
        1,
        "only the creation: {history:#}"
    );
}

#[tokio::test]
async fn a_second_live_plan_on_the_same_flag_and_environment_is_a_conflict() {
    let app = spawn_fast().await;
    app.create_boolean_flag("new-ui").await;
    let plan = json!({"flag": "new-ui", "environment": ENV,
        "stages": [{"percentage": 10, "hold": "1h"}, {"percentage": 100}]});
    start_plan(&app, plan.clone()).await;
    assert_problem(app.as_admin(Method::POST, "/v1/rollouts", &plan).await, 409).await;
    // Another environment is another plan.
    let staging =
        json!({"flag": "new-ui", "environment": "staging", "stages": [{"percentage": 10}]});
    let done = start_plan(&app, staging).await;
    assert_eq!(
        done["status"], "completed",
        "one stage without a hold completes at once"
    );
    let all = expect_json(
        app.as_admin(Method::GET, "/v1/rollouts", &Value::Null)
            .await,
        200,
    )
    .await;
    assert_eq!(all.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_plan_on_a_flag_pinned_by_the_environment_is_a_conflict() {
    let app = spawn_app_with(|config| {
        config.flag_env = BTreeMap::from([(
            "SWITCHYARD_FLAG_DASHBOARD_TRANSPORT".to_string(),
            "realtime".to_string(),
        )]);
    })
    .await;
    let body = json!({"flag": "dashboard.transport", "environment": ENV,
        "stages": [{"percentage": 10, "hold": "1m"}, {"percentage": 100}]});
    let problem =
        assert_problem(app.as_admin(Method::POST, "/v1/rollouts", &body).await, 409).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("pinned"),
        "{problem:#}"
    );
    let stored = expect_json(
        app.as_admin(Method::GET, "/v1/rollouts", &Value::Null)
            .await,
        200,
    )
    .await;
    assert_eq!(stored, json!([]));
}
