//! Guarded rollouts end to end, against real Postgres and real sockets: plans that advance
//! and complete, roll back or abort when the breaker is forced open, pause when a human edits
//! the flag, obey pause/resume/abort, survive a restart with two instances sharing the
//! database, and refuse bad bodies storing nothing. Holds are short and the driver's tick
//! fast; tests wait on the plan's state, never on the clock.

mod consistency;
mod failure;
mod guardrails;
mod lifecycle;
mod validation;

use reqwest::Method;
use serde_json::Value;

use crate::support::wait::{self, Look};
use crate::support::{TestApp, expect_json, spawn_app_with};

/// The environment the plans roll out in (the test apps' default).
const ENV: &str = "production";

/// A switchyard whose rollout driver ticks every 20 ms.
async fn spawn_fast() -> TestApp {
    spawn_app_with(|config| config.rollout_tick_ms = 20).await
}

/// `POST /v1/rollouts` with `plan`; asserts 201 and returns the plan.
async fn start_plan(app: &TestApp, plan: Value) -> Value {
    expect_json(app.as_admin(Method::POST, "/v1/rollouts", &plan).await, 201).await
}

async fn plan(app: &TestApp, id: &str) -> Value {
    expect_json(
        app.as_admin(Method::GET, &format!("/v1/rollouts/{id}"), &Value::Null)
            .await,
        200,
    )
    .await
}

/// Reads the plan until `holds` is true of it; fails after `WAIT`.
async fn wait_for_plan(
    app: &TestApp,
    id: &str,
    what: &str,
    holds: impl Fn(&Value) -> bool,
) -> Value {
    wait::until(&format!("the plan to be {what}"), async || {
        let current = plan(app, id).await;
        if holds(&current) {
            Look::Ready(current)
        } else {
            Look::NotYet(format!("{current:#}"))
        }
    })
    .await
}

/// Waits for the plan's status to be `status`.
async fn wait_for_status(app: &TestApp, id: &str, status: &str) -> Value {
    wait_for_plan(app, id, status, |p| p["status"] == status).await
}

/// The flag's percentage in production, as stored.
async fn stored_percentage(app: &TestApp, key: &str) -> Value {
    let flag = expect_json(
        app.as_admin(Method::GET, &format!("/v1/flags/{key}"), &Value::Null)
            .await,
        200,
    )
    .await;
    flag["environments"][ENV]["rollout"]["percentage"].clone()
}

/// The flag's audit rows written by `actor`, oldest first.
async fn audit_by(app: &TestApp, key: &str, actor: &str) -> Vec<Value> {
    let path = format!("/v1/flags/{key}/history?limit=1000");
    let rows = expect_json(app.as_admin(Method::GET, &path, &Value::Null).await, 200).await;
    let mut rows: Vec<Value> = rows
        .as_array()
        .expect("audit rows")
        .iter()
        .filter(|row| row["actor"] == actor)
        .cloned()
        .collect();
    rows.reverse();
    rows
}

/// The production percentage each audit row set.
fn percentages(rows: &[Value]) -> Vec<Value> {
    rows.iter()
        .map(|row| row["after"]["environments"][ENV]["rollout"]["percentage"].clone())
        .collect()
}
