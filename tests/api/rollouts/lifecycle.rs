//! Plans that advance and complete, pause by hand or when a human edits the flag, resume
//! and abort.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::{
    ENV, audit_by, percentages, plan, spawn_fast, start_plan, stored_percentage, wait_for_status,
};
use crate::support::wait::{self, Look, Patience};
use crate::support::ws::next_json;
use crate::support::{event, expect_json};

#[tokio::test]
async fn a_plan_advances_through_its_stages_under_a_healthy_stream_and_completes() {
    let app = spawn_fast().await;
    app.create_boolean_flag("new-ui").await;
    let mut ws = app.subscribe_all().await;
    for i in 0..20 {
        app.publish_ok(&event("cache_metrics", &format!("api-{i}")))
            .await;
    }

    let created = start_plan(
        &app,
        json!({
            "flag": "new-ui", "environment": ENV,
            "stages": [{"percentage": 10, "hold": "300ms"}, {"percentage": 50, "hold": "300ms"},
                       {"percentage": 100}],
            "guardrails": {"breaker_closed": ["realtime"], "min_consistency": 99.9,
                           "max_realtime_p99_ms": 10000},
        }),
    )
    .await;
    assert_eq!(
        (created["status"].as_str(), created["stage"].as_u64()),
        (Some("running"), Some(0))
    );
    assert_eq!(created["percentage"], 10, "{created:#}");
    assert_eq!(
        created["initial_percentage"], 0,
        "the flag was off: {created:#}"
    );
    assert!(created["next_step_at"].is_string(), "{created:#}");
    let consistency = created["readings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["guardrail"] == "min_consistency")
        .cloned()
        .unwrap();
    assert_eq!(
        (
            consistency["reading"].as_str(),
            consistency["health"].as_str()
        ),
        (Some("no data"), Some("no_data")),
        "{consistency}"
    );
    let id = created["id"].as_str().unwrap().to_string();
    for i in 0..20 {
        app.publish_ok(&event("cache_metrics", &format!("api-{i}")))
            .await;
    }

    let done = wait_for_status(&app, &id, "completed").await;
    assert_eq!(
        (done["percentage"].as_u64(), done["stage"].as_u64()),
        (Some(100), Some(2))
    );
    assert_eq!(done["next_step_at"], Value::Null);
    assert_eq!(stored_percentage(&app, "new-ui").await, 100);
    let steps = audit_by(&app, "new-ui", &format!("rollout:{id}")).await;
    assert_eq!(percentages(&steps), [json!(10), json!(50), json!(100)]);
    assert!(
        steps.iter().all(|row| row["action"] == "rollout"),
        "{steps:#?}"
    );
    let actions: Vec<_> = done["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions, ["create", "advanced", "advanced"]);

    // Subscribers heard each step; the last says the plan completed.
    let completed = Patience::DEFAULT
        .every(Duration::ZERO)
        .until("a rollout_changed frame for the completion", async || {
            let frame = next_json(&mut ws).await;
            let done = frame["kind"] == "rollout_changed" && frame["status"] == "completed";
            Look::ready_if(done, frame)
        })
        .await;
    assert_eq!(
        (completed["id"].as_str(), completed["percentage"].as_u64()),
        (Some(id.as_str()), Some(100))
    );
}

#[tokio::test]
async fn a_plan_pauses_when_the_flag_is_edited_by_hand_and_resumes_from_there() {
    let app = spawn_fast().await;
    app.create_boolean_flag("new-ui").await;
    let created = start_plan(
        &app,
        json!({"flag": "new-ui", "environment": ENV,
        "stages": [{"percentage": 10, "hold": "1h"}, {"percentage": 100}]}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();

    let path = format!("/v1/flags/new-ui/environments/{ENV}/rollout");
    expect_json(
        app.as_admin(Method::PUT, &path, &json!({"percentage": 30}))
            .await,
        200,
    )
    .await;

    let paused = wait_for_status(&app, &id, "paused").await;
    let reason = paused["reason"].as_str().unwrap();
    assert!(
        reason.contains("SWITCHYARD_ADMIN_KEY changed flag `new-ui` in `production`"),
        "{reason}"
    );
    // The human's edit stands: the plan wrote nothing over it.
    assert_eq!(stored_percentage(&app, "new-ui").await, 30);
    assert_eq!(
        audit_by(&app, "new-ui", &format!("rollout:{id}"))
            .await
            .len(),
        1
    );

    let resumed = expect_json(
        app.as_admin(
            Method::POST,
            &format!("/v1/rollouts/{id}/resume"),
            &Value::Null,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(resumed["status"], "running", "{resumed:#}");
    assert_eq!(
        resumed["flag_version"],
        paused["flag_version"].as_i64().unwrap() + 1
    );
    let aborted = expect_json(
        app.as_admin(
            Method::POST,
            &format!("/v1/rollouts/{id}/abort"),
            &Value::Null,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (aborted["status"].as_str(), aborted["percentage"].as_u64()),
        (Some("aborted"), Some(0))
    );
    assert_eq!(stored_percentage(&app, "new-ui").await, 0);
}

#[tokio::test]
async fn pause_resume_and_abort_do_what_they_say_and_refuse_what_the_status_forbids() {
    let app = spawn_fast().await;
    app.create_boolean_flag("held").await;
    app.create_boolean_flag("witness").await;
    let held = start_plan(
        &app,
        // Long enough that the pause below always lands inside the hold; short enough to wait
        // out once more after the resume.
        json!({"flag": "held", "environment": ENV,
        "stages": [{"percentage": 10, "hold": "3s"}, {"percentage": 100}]}),
    )
    .await;
    let id = held["id"].as_str().unwrap().to_string();
    let act = |what: &'static str| {
        let (app, id) = (&app, id.clone());
        async move {
            app.as_admin(
                Method::POST,
                &format!("/v1/rollouts/{id}/{what}"),
                &Value::Null,
            )
            .await
        }
    };
    let paused = expect_json(act("pause").await, 200).await;
    assert_eq!(paused["status"], "paused");
    assert_eq!(paused["next_step_at"], Value::Null);
    expect_json(act("pause").await, 409).await;

    // A plan started after the pause completes, so the driver has stepped since; the paused
    // one has not moved.
    let witness = start_plan(
        &app,
        json!({"flag": "witness", "environment": ENV,
        "stages": [{"percentage": 10, "hold": "100ms"}, {"percentage": 100}]}),
    )
    .await;
    wait_for_status(&app, witness["id"].as_str().unwrap(), "completed").await;
    let still = plan(&app, &id).await;
    assert_eq!(
        (still["status"].as_str(), still["percentage"].as_u64()),
        (Some("paused"), Some(10))
    );

    expect_json(act("resume").await, 200).await;
    expect_json(act("resume").await, 409).await;
    let done = wait_for_status(&app, &id, "completed").await;
    assert_eq!(done["percentage"], 100);
    expect_json(act("abort").await, 409).await;
    let actors: Vec<_> = done["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let by_admin = "SWITCHYARD_ADMIN_KEY".to_string();
    assert_eq!(
        actors[..3],
        [
            ("create".into(), by_admin.clone()),
            ("paused".into(), by_admin.clone()),
            ("resumed".into(), by_admin)
        ]
    );
}

#[tokio::test]
async fn the_driving_instance_reports_each_running_plan_in_metrics() {
    let app = spawn_fast().await;
    app.create_boolean_flag("metered").await;
    start_plan(
        &app,
        json!({"flag": "metered", "environment": ENV,
               "stages": [{"percentage": 20, "hold": "1h"}, {"percentage": 100}]}),
    )
    .await;
    let want = [
        "switchyard_rollout_leader 1",
        "switchyard_rollouts_running 1",
        r#"switchyard_rollout_percentage{flag="metered",environment="production"} 20"#,
    ];
    wait::until(&format!("{want:?} all in /metrics"), async || {
        let scrape = app
            .get("/metrics", crate::support::Credential::Nothing)
            .await
            .text()
            .await
            .expect("a scrape");
        if want.iter().all(|line| scrape.lines().any(|l| l == *line)) {
            Look::Ready(())
        } else {
            let rollout_lines: Vec<_> = scrape.lines().filter(|l| l.contains("rollout")).collect();
            Look::NotYet(rollout_lines.join("\n"))
        }
    })
    .await;
}
