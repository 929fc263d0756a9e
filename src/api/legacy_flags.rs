//! The legacy flag endpoints: `GET /flags/status` (the legacy flag names with their effective
//! values, derived from the live flags) and `GET /health/flags` (the three legacy
//! consistency rules).

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::state::LegacyFlagsState;
use crate::event::Category;
use crate::flags::{EvaluationContext, keys};
use crate::hub::legacy::rfc3339;

/// The legacy flag names and their effective values.
pub fn legacy_flags(state: &LegacyFlagsState) -> Map<String, Value> {
    let snapshot = state.flags.snapshot();
    let env = &state.config.environment;
    let ctx = EvaluationContext::default();
    let value = |key: &str| snapshot.evaluate(key, &ctx, env).value;
    let strategy = value(keys::BROADCAST_STRATEGY);
    let strategy = strategy.as_str().unwrap_or("websocket").to_string();
    let legacy = &state.config.legacy;
    let mut flags = Map::new();
    flags.insert(
        "MONITORING_USE_ADAPTER".into(),
        json!(strategy != "websocket"),
    );
    flags.insert("MONITORING_ADAPTER_TYPE".into(), json!(strategy));
    flags.insert("MONITORING_DUAL_MODE".into(), json!(strategy == "dual"));
    flags.insert(
        "MONITORING_USE_REALTIME".into(),
        json!(strategy == "realtime"),
    );
    flags.insert(
        "MONITORING_ENABLE_VALIDATION".into(),
        json!(value(keys::VALIDATION_ENABLED) == json!(true)),
    );
    flags.insert(
        "MONITORING_VALIDATION_STRICT".into(),
        json!(legacy.validation_strict.unwrap_or(false)),
    );
    flags.insert(
        "MONITORING_METRICS_FLUSH_INTERVAL".into(),
        json!(
            legacy
                .metrics_flush_interval
                .clone()
                .unwrap_or_else(|| "300".into())
        ),
    );
    flags.insert(
        "MONITORING_METRICS_PERSISTENCE".into(),
        json!(legacy.metrics_persistence.unwrap_or(false)),
    );
    flags.insert(
        "MONITORING_BATCH_SIZE".into(),
        json!(legacy.batch_size.unwrap_or(100)),
    );
    flags.insert(
        "MONITORING_TIMEOUT_MS".into(),
        json!(legacy.timeout_ms.unwrap_or(5000)),
    );
    // The share each category is dual-written at, as the router compiles it (the flag's
    // rollout percentage, or a pin).
    let routes = crate::router::Strategy::from_snapshot(&snapshot, env);
    for category in Category::ALL {
        let route = routes.route(category);
        let name = format!(
            "DUAL_WRITE_{}_PERCENTAGE",
            category.as_str().to_ascii_uppercase()
        );
        // A whole number reads as one (`50`, as the legacy variables are written).
        let share = if route.percentage.fract() == 0.0 {
            json!(route.percentage as u32)
        } else {
            json!(route.percentage)
        };
        flags.insert(name, share);
    }
    let global = match strategy.as_str() {
        "websocket" => json!("websocket_only"),
        "realtime" => json!("realtime_only"),
        _ => Value::Null,
    };
    flags.insert("DUAL_WRITE_GLOBAL_OVERRIDE".into(), global);
    flags.insert(
        "CIRCUIT_BREAKER_ENABLED".into(),
        json!(value(keys::REALTIME_BREAKER_MODE) != json!("disabled")),
    );
    flags
}

/// The legacy consistency rules, over the boot-time settings as the operator wrote them.
pub fn legacy_issues(state: &LegacyFlagsState, flags: &Map<String, Value>) -> Vec<String> {
    let legacy = &state.config.legacy;
    let mut issues = Vec::new();
    if flags["MONITORING_VALIDATION_STRICT"] == json!(true)
        && flags["MONITORING_ENABLE_VALIDATION"] != json!(true)
    {
        issues
            .push("MONITORING_VALIDATION_STRICT is set but validation is not enabled".to_string());
    }
    if legacy.dual_mode == Some(true) && legacy.use_adapter == Some(false) {
        issues.push("MONITORING_DUAL_MODE is set but MONITORING_USE_ADAPTER is false".to_string());
    }
    if legacy.metrics_persistence == Some(true) {
        let interval = legacy.metrics_flush_interval.as_deref().unwrap_or("300");
        if !interval.trim().parse::<u64>().is_ok_and(|n| n > 0) {
            issues.push(format!("MONITORING_METRICS_PERSISTENCE is set but MONITORING_METRICS_FLUSH_INTERVAL `{interval}` is not a positive number of seconds"));
        }
    }
    issues
}

/// The legacy flag names with their effective values.
#[utoipa::path(get, path = "/flags/status", tag = "legacy", responses((status = 200, description = "{status, flags, timestamp}")))]
pub async fn flags_status(State(state): State<LegacyFlagsState>) -> Json<Value> {
    Json(json!({"status": "ok", "flags": legacy_flags(&state), "timestamp": rfc3339(Utc::now())}))
}

/// The legacy flag health: `healthy`, or `degraded` with the rules that fail.
#[utoipa::path(get, path = "/health/flags", tag = "legacy", responses((status = 200, description = "{status, health, issues, flags, timestamp}")))]
pub async fn flags_health(State(state): State<LegacyFlagsState>) -> Json<Value> {
    let flags = legacy_flags(&state);
    let issues = legacy_issues(&state, &flags);
    let health = if issues.is_empty() && !state.flags.is_stale() {
        "healthy"
    } else {
        "degraded"
    };
    let mut issues = issues;
    if state.flags.is_stale() {
        issues.push("the flag snapshot is stale: the control store cannot be read".into());
    }
    Json(
        json!({"status": "ok", "health": health, "issues": issues, "flags": flags, "timestamp": rfc3339(Utc::now())}),
    )
}
