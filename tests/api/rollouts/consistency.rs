//! The consistency guardrail against the real validator: a Realtime target that tampers with
//! rows drops dual-path consistency below the plan's floor, and the plan steps back.

use serde_json::{Value, json};

use super::{ENV, start_plan, stored_percentage, wait_for_status};
use crate::support::wait::{self, Look};
use crate::support::{TestApp, spawn_app_with_target};

async fn overall(app: &TestApp) -> Value {
    let response = app.get("/v1/validation/summary", app.admin()).await;
    assert_eq!(response.status().as_u16(), 200);
    let summary: Value = response.json().await.expect("JSON");
    summary["overall"].clone()
}

/// Waits until the validator's overall figures satisfy `done`.
async fn wait_for_overall(app: &TestApp, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    wait::until(what, async || {
        let now = overall(app).await;
        if done(&now) {
            Look::Ready(now)
        } else {
            Look::NotYet(format!("{now:#}"))
        }
    })
    .await
}

#[tokio::test]
async fn a_plan_rolls_back_when_consistency_drops_below_its_floor() {
    let targeted = spawn_app_with_target(|config| {
        config.rollout_tick_ms = 20;
        config.validation.order_window_s = 1;
    })
    .await;
    let app = &targeted.app;
    app.set_strategy("realtime").await;
    app.flip_ok("validation.enabled", true).await;
    // The first write creates the target's schema; the trigger goes in after it matched.
    app.publish_ok(&json!({"event_type": "error", "source": "warm-up"}))
        .await;
    wait_for_overall(app, "the warm-up event to match", |o| o["matched"] == 1).await;
    targeted.tamper_with_target().await;

    app.create_boolean_flag("new-ui").await;
    let created = start_plan(
        app,
        json!({"flag": "new-ui", "environment": ENV,
        "stages": [{"percentage": 10, "hold": "1h"}, {"percentage": 100}],
        "guardrails": {"min_consistency": 99.9}}),
    )
    .await;
    let reading = created["readings"][0].clone();
    assert_eq!(
        (reading["reading"].as_f64(), reading["health"].as_str()),
        (Some(100.0), Some("ok")),
        "{reading}"
    );
    let id = created["id"].as_str().unwrap().to_string();

    app.publish_ok(&json!({"event_type": "error", "source": "tamper", "data": {"i": 1}}))
        .await;

    let rolled = wait_for_status(app, &id, "rolled_back").await;
    let reason = rolled["reason"].as_str().unwrap();
    assert!(reason.contains("min_consistency read 50"), "{reason}");
    assert_eq!(
        rolled["percentage"], 0,
        "back to the percentage before the plan (off)"
    );
    assert_eq!(stored_percentage(app, "new-ui").await, 0);
}
