//! Plans that share: a flag (one plan per environment, which must not take each other's
//! writes for a human's), and a database (instances that restart and run side by side).

use serde_json::json;

use super::{ENV, audit_by, percentages, spawn_fast, start_plan, wait_for_plan, wait_for_status};
use crate::support::spawn_app_on_with;

#[tokio::test]
async fn plans_in_two_environments_of_one_flag_do_not_pause_each_other() {
    let app = spawn_fast().await;
    app.create_boolean_flag("new-ui").await;
    let stages = json!([{"percentage": 10, "hold": "200ms"}, {"percentage": 60, "hold": "200ms"},
                        {"percentage": 100}]);
    let production = start_plan(&app, json!({"flag": "new-ui", "environment": ENV, "stages": stages})).await;
    let staging = start_plan(&app, json!({"flag": "new-ui", "environment": "staging", "stages": stages})).await;

    for plan in [&production, &staging] {
        let id = plan["id"].as_str().unwrap();
        let done = wait_for_plan(&app, id, "completed", |p| p["status"] != "running").await;
        assert_eq!(done["status"], "completed", "{done:#}");
        let steps = audit_by(&app, "new-ui", &format!("rollout:{id}")).await;
        let env = plan["environment"].as_str().unwrap();
        let set: Vec<_> = steps.iter()
            .map(|row| row["after"]["environments"][env]["rollout"]["percentage"].clone())
            .collect();
        assert_eq!(set, [json!(10), json!(60), json!(100)], "{env}");
    }
}

#[tokio::test]
async fn a_plan_survives_a_restart_and_two_instances_never_both_step_it() {
    let mut first = spawn_fast().await;
    first.create_boolean_flag("new-ui").await;
    let created = start_plan(
        &first,
        json!({"flag": "new-ui", "environment": ENV,
        "stages": [{"percentage": 10, "hold": "400ms"}, {"percentage": 50, "hold": "400ms"},
                   {"percentage": 80, "hold": "400ms"}, {"percentage": 100}]}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    let second = spawn_app_on_with(&first, |config| config.rollout_tick_ms = 20).await;
    let third = spawn_app_on_with(&first, |config| config.rollout_tick_ms = 20).await;

    // The first instance leads (it started its driver first); stop it mid-plan.
    wait_for_plan(&second, &id, "at stage 2", |p| {
        p["stage"].as_u64() >= Some(1)
    })
    .await;
    first.trigger_shutdown();
    first
        .stopped()
        .await
        .expect("the first instance stops cleanly");

    let done = wait_for_status(&second, &id, "completed").await;
    assert_eq!(done["percentage"], 100);
    let steps = audit_by(&third, "new-ui", &format!("rollout:{id}")).await;
    assert_eq!(
        percentages(&steps),
        [json!(10), json!(50), json!(80), json!(100)],
        "{steps:#?}"
    );
    let advances = done["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "advanced")
        .count();
    assert_eq!(advances, 3, "{done:#}");
}
