//! A plan whose evaluation fails (here: stages corrupted in the database, which makes the
//! step panic) is marked failed and paused; the driver goes on driving the other plans.

use serde_json::json;
use uuid::Uuid;

use super::{ENV, spawn_fast, start_plan, wait_for_plan, wait_for_status};

#[tokio::test]
async fn a_plan_that_panics_is_marked_failed_and_the_driver_drives_the_others() {
    let app = spawn_fast().await;
    app.create_boolean_flag("broken").await;
    app.create_boolean_flag("healthy").await;
    let broken = start_plan(
        &app,
        json!({"flag": "broken", "environment": ENV,
               "stages": [{"percentage": 10, "hold": "1h"}, {"percentage": 100}]}),
    )
    .await;
    let broken_id: Uuid = broken["id"].as_str().unwrap().parse().unwrap();
    // No stage left to apply: the next step indexes past the end.
    sqlx::query("UPDATE switchyard.rollouts SET stages = '[]'::jsonb, stage = NULL WHERE id = $1")
        .bind(broken_id)
        .execute(&app.state.pool)
        .await
        .unwrap();
    let healthy = start_plan(
        &app,
        json!({"flag": "healthy", "environment": ENV,
               "stages": [{"percentage": 10, "hold": "200ms"}, {"percentage": 50}]}),
    )
    .await;

    let failed = wait_for_plan(&app, &broken_id.to_string(), "marked failed", |p| {
        p["status"] == "paused"
    })
    .await;
    assert!(
        failed["reason"].as_str().unwrap().starts_with("failed: "),
        "{failed:#}"
    );
    let done = wait_for_status(&app, healthy["id"].as_str().unwrap(), "completed").await;
    assert_eq!(done["percentage"], 50);
    let metrics = app.get("/metrics", app.admin()).await.text().await.unwrap();
    assert!(
        metrics.contains(r#"switchyard_panics_total{site="background"} 1"#),
        "{metrics}"
    );
}
