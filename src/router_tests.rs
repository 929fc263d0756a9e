//! The router's unit tests: strategies, category shares, pins and the legacy fallback.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::event::parse_event;
use crate::flags::{Flag, FlagRecord, Pin};

fn event(event_type: &str) -> Event {
    parse_event(
        &json!({"event_type": event_type, "source": "t"}),
        None,
        chrono::Utc::now(),
    )
    .unwrap()
}

fn seeded(strategy: &str, performance_pct: u32) -> Vec<FlagRecord> {
    let flag = |doc: Value| FlagRecord {
        flag: serde_json::from_value::<Flag>(doc).unwrap(),
        version: 3,
        updated_at: chrono::Utc::now(),
    };
    let string_flag = |key: &str, value: &str| {
        flag(
            json!({"key": key, "type": "string", "variants": {"off": "websocket", "v": value},
            "environments": {"production": {"enabled": true, "off_variant": "off", "default_variant": "v",
            "rollout": {"percentage": 100, "variant": "v"}}}}),
        )
    };
    // The form the migration gives category flags: the share is the rollout percentage.
    let category = |name: &str, enabled: bool, pct: u32| {
        flag(
            json!({"key": format!("broadcast.category.{name}"), "type": "json",
            "variants": {"off": {"enabled": false, "adapters": ["websocket"]},
                         "on": {"enabled": true, "adapters": ["websocket", "realtime"]}},
            "environments": {"production": {"enabled": enabled, "off_variant": "off", "default_variant": "off",
            "rollout": {"percentage": pct, "variant": "on"}}}}),
        )
    };
    vec![
        string_flag("broadcast.strategy", strategy),
        category("critical", true, 100),
        category("performance", true, performance_pct),
        category("debug", false, 100),
    ]
}

fn strategy(records: &[FlagRecord], pins: &BTreeMap<String, Pin>) -> Strategy {
    Strategy::from_snapshot(&Snapshot::compile(7, records, pins), "production")
}

#[test]
fn websocket_strategy_sends_nothing_to_realtime_and_realtime_sends_everything() {
    let ws = strategy(&seeded("websocket", 100), &BTreeMap::new());
    assert!(!ws.routes_to_realtime(&event("health_check")));
    let rt = strategy(&seeded("realtime", 0), &BTreeMap::new());
    assert!(
        rt.routes_to_realtime(&event("debug")),
        "the cut-over carries disabled categories too"
    );
}

#[test]
fn dual_mode_follows_each_category() {
    let dual = strategy(&seeded("dual", 0), &BTreeMap::new());
    assert!(
        dual.routes_to_realtime(&event("health_check")),
        "critical at 100%"
    );
    assert!(
        !dual.routes_to_realtime(&event("cache_metrics")),
        "performance at 0%"
    );
    assert!(
        !dual.routes_to_realtime(&event("debug")),
        "debug is disabled"
    );
    assert_eq!(dual.route(Category::Critical).decided_by.tier, "flag");
}

#[test]
fn dual_percentage_is_sticky_per_event_and_roughly_proportional() {
    let dual = strategy(&seeded("dual", 30), &BTreeMap::new());
    let events: Vec<Event> = (0..2000).map(|_| event("cache_metrics")).collect();
    let routed = events.iter().filter(|e| dual.routes_to_realtime(e)).count();
    assert!(
        (400..800).contains(&routed),
        "about 30% of 2000, got {routed}"
    );
    for e in &events[..50] {
        assert_eq!(dual.routes_to_realtime(e), dual.routes_to_realtime(e));
    }
}

#[test]
fn missing_flags_fall_back_to_the_legacy_defaults() {
    let empty = strategy(&[], &BTreeMap::new());
    assert_eq!(empty.strategy, StrategyKind::Websocket);
    assert_eq!(empty.decided_by.tier, "default");
    let perf = empty.route(Category::Performance);
    assert_eq!((perf.enabled, perf.percentage), (true, 50.0));
}

#[test]
fn an_env_pin_is_reported_as_the_deciding_tier() {
    let pins = BTreeMap::from([(
        "broadcast.strategy".to_string(),
        Pin::new("MONITORING_DUAL_MODE", json!("dual")),
    )]);
    let pinned = strategy(&seeded("websocket", 0), &pins);
    assert_eq!(pinned.strategy, StrategyKind::Dual);
    assert_eq!(pinned.decided_by.tier, "env");
    assert_eq!(
        pinned.decided_by.variable.as_deref(),
        Some("MONITORING_DUAL_MODE")
    );
}

#[test]
fn the_share_is_exactly_the_flags_rollout_hash_of_each_event_id() {
    let dual = strategy(&seeded("dual", 30), &BTreeMap::new());
    for _ in 0..500 {
        let e = event("cache_metrics");
        let expected =
            crate::flags::hash::in_rollout("broadcast.category.performance", &e.id.to_string(), 30);
        assert_eq!(dual.routes_to_realtime(&e), expected, "{}", e.id);
    }
    let route = dual.route(Category::Performance);
    assert_eq!((route.enabled, route.percentage), (true, 30.0));
    assert_eq!(route.decided_by.version, Some(3));
}

#[test]
fn a_category_percentage_pin_wins_over_the_flags_rollout() {
    let pins = BTreeMap::from([(
        "broadcast.category.performance".to_string(),
        Pin::new(
            "DUAL_WRITE_PERFORMANCE_PERCENTAGE",
            json!({"enabled": true, "percentage": 100, "adapters": ["websocket"]}),
        ),
    )]);
    let pinned = strategy(&seeded("dual", 0), &pins);
    assert!(pinned.routes_to_realtime(&event("cache_metrics")));
    let route = pinned.route(Category::Performance);
    assert_eq!(route.decided_by.tier, "env");
    assert_eq!(route.percentage, 100.0);
}

#[test]
fn a_category_flag_with_rules_is_evaluated_per_event_and_still_honours_them() {
    let mut records = seeded("dual", 0);
    let mut ruled = records[2].clone();
    let e = event("cache_metrics");
    let doc = json!({"key": "broadcast.category.performance", "type": "json",
        "variants": {"off": {"enabled": false}, "on": {"enabled": true}},
        "environments": {"production": {"enabled": true, "off_variant": "off", "default_variant": "off",
        "rules": [{"targeting_keys": [e.id.to_string()], "variant": "on"}],
        "rollout": {"percentage": 0, "variant": "on"}}}});
    ruled.flag = serde_json::from_value(doc).unwrap();
    records[2] = ruled;
    let dual = strategy(&records, &BTreeMap::new());
    assert!(
        dual.routes_to_realtime(&e),
        "the listed event id is dual-written"
    );
    assert!(!dual.routes_to_realtime(&event("cache_metrics")));
}
