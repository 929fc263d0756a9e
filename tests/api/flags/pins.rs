//! The environment tier: a flag pinned by a variable evaluates to the pin (tier `env`), shows
//! it, and refuses REST writes with 409 naming the variable.

use std::collections::BTreeMap;

use serde_json::json;

use super::ok_json;
use crate::support::{assert_problem, spawn_app_with};

#[tokio::test]
async fn a_flag_pinned_by_its_switchyard_flag_variable_refuses_writes_naming_the_variable() {
    let variable = "SWITCHYARD_FLAG_DASHBOARD_TRANSPORT";
    let app = spawn_app_with(|config| {
        config.flag_env = BTreeMap::from([(variable.to_string(), "realtime".to_string())]);
    })
    .await;
    let history = app.history("dashboard.transport").await;

    for response in [
        app.flip("dashboard.transport", false).await,
        app.set_rollout("dashboard.transport", &json!({"percentage": 50}))
            .await,
    ] {
        let problem = assert_problem(response, 409).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(variable), "{problem}");
    }

    let result = app
        .evaluate("dashboard.transport", json!({"targeting_key": "client-7"}))
        .await;
    assert_eq!(result["value"], "realtime", "{result}");
    assert_eq!(result["tier"], "env", "{result}");
    assert_eq!(result["reason"], "STATIC", "{result}");
    let (_, flag) = app.read_flag("dashboard.transport").await;
    assert_eq!(flag["source"], "env", "{flag}");
    assert_eq!(flag["pin"]["source_variable"], variable, "{flag}");
    assert_eq!(app.history("dashboard.transport").await, history);
}

#[tokio::test]
async fn monitoring_dual_mode_pins_the_broadcast_strategy_and_the_strategy_says_which_tier() {
    let app = spawn_app_with(|config| config.legacy.dual_mode = Some(true)).await;

    let problem = assert_problem(app.flip("broadcast.strategy", false).await, 409).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("MONITORING_DUAL_MODE"),
        "{problem}"
    );
    let result = app.evaluate("broadcast.strategy", json!({})).await;
    assert_eq!(
        (&result["value"], &result["tier"]),
        (&json!("dual"), &json!("env"))
    );

    let strategy = ok_json(app.get("/v1/strategy", app.admin()).await).await;
    assert_eq!(strategy["strategy"], "dual", "{strategy:#}");
    assert_eq!(
        strategy["decided_by"],
        json!({"tier": "env", "variable": "MONITORING_DUAL_MODE"}),
        "{strategy:#}"
    );
}
