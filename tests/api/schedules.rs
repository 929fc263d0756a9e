//! Scheduled flag changes end to end: applied once when due, also across a restart and with
//! two instances on one database; listed and cancellable; bad bodies refused storing nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::wait::{self, Look};
use crate::support::{TestApp, assert_problem, expect_json, spawn_app_on_with, spawn_app_with};

async fn spawn_fast() -> TestApp {
    spawn_app_with(|config| config.rollout_tick_ms = 20).await
}

/// Schedules `change` on `key` in production `in_ms` from now; returns the schedule.
async fn schedule(app: &TestApp, key: &str, in_ms: i64, change: Value) -> Value {
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(in_ms);
    let body = json!({"environment": "production", "at": at.to_rfc3339(), "change": change});
    expect_json(
        app.as_admin(Method::POST, &format!("/v1/flags/{key}/schedule"), &body)
            .await,
        201,
    )
    .await
}

async fn schedules(app: &TestApp, key: &str) -> Vec<Value> {
    let list = expect_json(
        app.as_admin(
            Method::GET,
            &format!("/v1/flags/{key}/schedule"),
            &Value::Null,
        )
        .await,
        200,
    )
    .await;
    list.as_array().unwrap().clone()
}

/// Waits until the scheduled change `id` of `key` has `status`; returns it.
async fn wait_for(app: &TestApp, key: &str, id: &str, status: &str) -> Value {
    wait::until(
        &format!("the scheduled change {id} to be {status}"),
        async || {
            let found = schedules(app, key)
                .await
                .into_iter()
                .find(|s| s["id"] == id)
                .expect("listed");
            if found["status"] == status {
                Look::Ready(found)
            } else {
                Look::NotYet(format!("{found:#}"))
            }
        },
    )
    .await
}

/// The flag's audit rows written by `actor`.
async fn audit_by(app: &TestApp, key: &str, actor: &str) -> Vec<Value> {
    let rows = expect_json(
        app.as_admin(
            Method::GET,
            &format!("/v1/flags/{key}/history"),
            &Value::Null,
        )
        .await,
        200,
    )
    .await;
    rows.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["actor"] == actor)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_scheduled_change_fires_once_when_due() {
    let app = spawn_fast().await;
    app.create_boolean_flag("new-ui").await;
    let created = schedule(&app, "new-ui", 300, json!({"action": "on"})).await;
    assert_eq!(created["status"], "pending");
    let id = created["id"].as_str().unwrap();

    let applied = wait_for(&app, "new-ui", id, "applied").await;
    let rows = audit_by(&app, "new-ui", &format!("schedule:{id}")).await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["action"], "flip_on");
    assert_eq!(
        rows[0]["after"]["environments"]["production"]["enabled"],
        true
    );
    assert_eq!(applied["flag_version"], rows[0]["version"]);
}

#[tokio::test]
async fn a_scheduled_change_fires_once_after_a_restart_with_two_instances() {
    let mut first = spawn_fast().await;
    first.create_boolean_flag("new-ui").await;
    let created = schedule(
        &first,
        "new-ui",
        1500,
        json!({"action": "percentage", "percentage": 40}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    first.trigger_shutdown();
    first
        .stopped()
        .await
        .expect("the first instance stops cleanly");

    let second = spawn_app_on_with(&first, |config| config.rollout_tick_ms = 20).await;
    let third = spawn_app_on_with(&first, |config| config.rollout_tick_ms = 20).await;
    wait_for(&second, "new-ui", &id, "applied").await;
    // A later change applied too means both drivers have looked at due changes since.
    let later = schedule(&third, "new-ui", 200, json!({"action": "on"})).await;
    wait_for(&third, "new-ui", later["id"].as_str().unwrap(), "applied").await;

    let rows = audit_by(&second, "new-ui", &format!("schedule:{id}")).await;
    assert_eq!(rows.len(), 1, "applied exactly once: {rows:#?}");
    assert_eq!(
        rows[0]["after"]["environments"]["production"]["rollout"]["percentage"],
        40
    );
}

#[tokio::test]
async fn a_pending_change_can_be_cancelled_once_and_then_never_fires() {
    let app = spawn_fast().await;
    app.create_boolean_flag("new-ui").await;
    let created = schedule(&app, "new-ui", 3_600_000, json!({"action": "on"})).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/v1/flags/new-ui/schedule/{id}");
    let cancelled = expect_json(app.as_admin(Method::DELETE, &path, &Value::Null).await, 200).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert!(
        cancelled["reason"]
            .as_str()
            .unwrap()
            .contains("SWITCHYARD_ADMIN_KEY")
    );
    assert_problem(app.as_admin(Method::DELETE, &path, &Value::Null).await, 409).await;
    let missing = format!("/v1/flags/new-ui/schedule/{}", uuid::Uuid::new_v4());
    assert_problem(
        app.as_admin(Method::DELETE, &missing, &Value::Null).await,
        404,
    )
    .await;
    assert_eq!(schedules(&app, "new-ui").await[0]["status"], "cancelled");
}

#[tokio::test]
async fn bad_schedules_are_refused_naming_the_field_and_store_nothing() {
    let app = spawn_fast().await;
    app.create_boolean_flag("new-ui").await;
    let post = |key: &'static str, body: Value| {
        let app = &app;
        async move {
            app.as_admin(Method::POST, &format!("/v1/flags/{key}/schedule"), &body)
                .await
        }
    };
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();

    let past = json!({"environment": "production", "at": "2020-01-01T00:00:00Z", "change": {"action": "on"}});
    let problem = assert_problem(post("new-ui", past).await, 422).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("`at`"),
        "{problem:#}"
    );
    let problem = assert_problem(
        post(
            "new-ui",
            json!({"environment": "production", "at": future,
        "change": {"action": "percentage"}}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "change.percentage");
    let problem = assert_problem(
        post(
            "new-ui",
            json!({"environment": "production", "at": "noon",
        "change": {"action": "on"}}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "at");
    let problem = assert_problem(
        post(
            "new-ui",
            json!({"environment": "production", "at": future,
        "change": {"action": "explode"}}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "change.action");
    assert_problem(
        post(
            "no-such-flag",
            json!({"environment": "production", "at": future,
        "change": {"action": "on"}}),
        )
        .await,
        404,
    )
    .await;

    assert!(schedules(&app, "new-ui").await.is_empty());
}
