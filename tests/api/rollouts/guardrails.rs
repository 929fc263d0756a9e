//! A guardrail that breaks steps the plan back at once and says why.

use serde_json::json;

use crate::support::spawn_app_with;

use super::{
    ENV, audit_by, percentages, spawn_fast, start_plan, stored_percentage, wait_for_plan,
    wait_for_status,
};

#[tokio::test]
async fn a_plan_rolls_back_to_the_previous_stage_when_the_breaker_is_forced_open() {
    let app = spawn_fast().await;
    app.create_boolean_flag("new-ui").await;
    let created = start_plan(
        &app,
        json!({"flag": "new-ui", "environment": ENV,
        "stages": [{"percentage": 10, "hold": "200ms"}, {"percentage": 50, "hold": "1h"},
                   {"percentage": 100}],
        "guardrails": {"breaker_closed": ["realtime"]}}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    wait_for_plan(&app, &id, "at 50%", |p| p["percentage"] == 50).await;

    app.force_breaker_open("the target is on fire").await;

    let rolled = wait_for_status(&app, &id, "rolled_back").await;
    assert_eq!(
        (rolled["percentage"].as_u64(), rolled["stage"].as_u64()),
        (Some(10), Some(0))
    );
    let reason = rolled["reason"].as_str().unwrap();
    assert!(
        reason.contains("breaker_closed:realtime") && reason.contains("forced_open"),
        "{reason}"
    );
    assert_eq!(stored_percentage(&app, "new-ui").await, 10);
    let steps = audit_by(&app, "new-ui", &format!("rollout:{id}")).await;
    assert_eq!(percentages(&steps), [json!(10), json!(50), json!(10)]);
    let last = rolled["events"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(
        (last["action"].as_str(), last["to_status"].as_str()),
        (Some("breached"), Some("rolled_back"))
    );
}

#[tokio::test]
async fn a_plan_that_aborts_on_breach_goes_to_zero() {
    let app = spawn_fast().await;
    app.create_boolean_flag("new-ui").await;
    let created = start_plan(
        &app,
        json!({"flag": "new-ui", "environment": ENV,
        "stages": [{"percentage": 25, "hold": "1h"}, {"percentage": 100}],
        "guardrails": {"breaker_closed": ["realtime"]}, "on_breach": "abort"}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();

    app.force_breaker_open("the target is on fire").await;

    let aborted = wait_for_status(&app, &id, "aborted").await;
    assert_eq!(aborted["percentage"], 0);
    assert!(
        aborted["reason"]
            .as_str()
            .unwrap()
            .contains("aborted to 0%"),
        "{aborted:#}"
    );
    assert_eq!(stored_percentage(&app, "new-ui").await, 0);
}

#[tokio::test]
async fn a_breaker_transition_wakes_the_driver_without_waiting_for_its_tick() {
    // A tick of an hour: only the transition can make the driver look before the test ends.
    let app = spawn_app_with(|config| config.rollout_tick_ms = 3_600_000).await;
    app.create_boolean_flag("new-ui").await;
    let created = start_plan(
        &app,
        json!({"flag": "new-ui", "environment": ENV,
        "stages": [{"percentage": 10, "hold": "1h"}, {"percentage": 100}],
        "guardrails": {"breaker_closed": ["realtime"]}, "on_breach": "abort"}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();

    app.force_breaker_open("the target is on fire").await;

    let aborted = wait_for_status(&app, &id, "aborted").await;
    assert_eq!(aborted["percentage"], 0);
}
