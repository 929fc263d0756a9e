//! The legacy flag endpoints (`/flags/status`, `/health/flags`) and the seeded flags that
//! govern the broadcast path.

use serde_json::{Value, json};
use switchyard::flagstore::record_from_store;
use switchyard::store::flags as flag_store;

use super::ok_json;
use crate::support::{Credential, spawn_app, spawn_app_with};

#[tokio::test]
async fn flags_status_answers_the_legacy_names_with_their_effective_values() {
    let app = spawn_app().await;

    let status = ok_json(app.get("/flags/status", Credential::Nothing).await).await;

    let flags = &status["flags"];
    let expected = [
        ("MONITORING_USE_ADAPTER", json!(false)),
        ("MONITORING_ADAPTER_TYPE", json!("websocket")),
        ("MONITORING_DUAL_MODE", json!(false)),
        ("MONITORING_USE_REALTIME", json!(false)),
        ("MONITORING_ENABLE_VALIDATION", json!(false)),
        ("MONITORING_VALIDATION_STRICT", json!(false)),
        ("DUAL_WRITE_CRITICAL_PERCENTAGE", json!(100)),
        ("DUAL_WRITE_PERFORMANCE_PERCENTAGE", json!(50)),
        ("DUAL_WRITE_USER_ACTIVITY_PERCENTAGE", json!(0)),
        ("DUAL_WRITE_SYSTEM_PERCENTAGE", json!(100)),
        ("DUAL_WRITE_DEBUG_PERCENTAGE", json!(0)),
        ("DUAL_WRITE_GLOBAL_OVERRIDE", json!("websocket_only")),
        ("CIRCUIT_BREAKER_ENABLED", json!(true)),
    ];
    for (name, value) in expected {
        assert_eq!(flags[name], value, "{name} in {flags:#}");
    }

    // A flip shows at once.
    app.flip_ok("validation.enabled", true).await;
    let status = ok_json(app.get("/flags/status", Credential::Nothing).await).await;
    assert_eq!(status["flags"]["MONITORING_ENABLE_VALIDATION"], true);
}

#[tokio::test]
async fn health_flags_is_healthy_by_default_and_degraded_by_strict_validation_without_validation() {
    let healthy = spawn_app().await;
    let health = ok_json(healthy.get("/health/flags", Credential::Nothing).await).await;
    assert_eq!(health["health"], "healthy", "{health:#}");
    assert_eq!(health["issues"], json!([]));

    let app = spawn_app_with(|config| config.legacy.validation_strict = Some(true)).await;
    let health = ok_json(app.get("/health/flags", Credential::Nothing).await).await;
    assert_eq!(health["health"], "degraded", "{health:#}");
    assert_eq!(
        health["issues"],
        json!(["MONITORING_VALIDATION_STRICT is set but validation is not enabled"])
    );
    assert_eq!(health["flags"]["MONITORING_VALIDATION_STRICT"], true);
}

#[tokio::test]
async fn a_fresh_database_holds_the_seeded_flags_and_each_one_is_valid() {
    let app = spawn_app().await;

    let stored = flag_store::list(&app.state.pool, true).await.unwrap();

    let keys: Vec<&str> = stored.iter().map(|row| row.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "broadcast.category.critical",
            "broadcast.category.debug",
            "broadcast.category.performance",
            "broadcast.category.system",
            "broadcast.category.user_activity",
            "broadcast.strategy",
            "dashboard.transport",
            "realtime.breaker.mode",
            "validation.enabled",
        ]
    );
    for row in &stored {
        let record = record_from_store(row).unwrap_or_else(|e| panic!("{}: {e}", row.key));
        // The seeds are version 1; the category routes were rewritten once since, by the
        // migration that made their rollout percentage the dual-write share (issue 12).
        let expected = if row.key.starts_with("broadcast.category.") {
            2
        } else {
            1
        };
        assert_eq!(record.version, expected, "{}", row.key);
        if let Err(errors) = switchyard::flags::validate(&record.flag) {
            panic!("the seeded flag {} is invalid: {errors:?}", row.key);
        }
    }
}

#[tokio::test]
async fn the_seeded_flags_route_with_the_websocket_strategy_and_the_legacy_category_routes() {
    let app = spawn_app().await;

    let strategy = ok_json(app.get("/v1/strategy", app.admin()).await).await;

    assert_eq!(strategy["strategy"], "websocket", "{strategy:#}");
    assert_eq!(strategy["decided_by"]["tier"], "flag", "{strategy:#}");
    let routes: Vec<(String, bool, f64)> = strategy["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|route: &Value| {
            assert_eq!(route["decided_by"]["tier"], "flag", "{route}");
            let category = route["category"].as_str().unwrap().to_string();
            let enabled = route["enabled"].as_bool().unwrap();
            (category, enabled, route["percentage"].as_f64().unwrap())
        })
        .collect();
    let expected = [
        ("critical", true, 100.0),
        ("performance", true, 50.0),
        ("user_activity", false, 0.0),
        ("system", true, 100.0),
        ("debug", false, 0.0),
    ]
    .map(|(c, e, p)| (c.to_string(), e, p));
    assert_eq!(routes, expected);
}
