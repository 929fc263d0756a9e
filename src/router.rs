//! The router: which events the Realtime path carries, decided by the flags.
//!
//! The active [`Strategy`] is compiled from the flag snapshot and held in an `ArcSwap`; a flag
//! change compiles a new one and swaps it whole. Ingest loads the strategy once per event, so
//! each event is routed by exactly one strategy and a swap mid-stream neither drops nor
//! duplicates anything. The WebSocket path (the hub) receives every event whatever the
//! strategy, as in the legacy system; the strategy only decides the Realtime side:
//!
//! - `websocket`: nothing goes to Realtime;
//! - `realtime`: everything goes to Realtime (the cut-over);
//! - `dual`: an event goes to Realtime when its category's route is enabled and the event's
//!   bucket (murmur3 of its id, 0–99, so the choice is sticky per event) is below the route's
//!   `percentage`. A disabled or unknown category goes to WebSocket only. `adapters` is kept
//!   for the legacy configuration and shown in `GET /v1/strategy`; the percentage decides.

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::event::{Category, Event};
use crate::flags::{EvaluationContext, Snapshot, Tier, hash::murmur3_x86_32, keys};

/// The global strategy (`broadcast.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StrategyKind {
    Websocket,
    Realtime,
    Dual,
}

impl StrategyKind {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "websocket" => Some(Self::Websocket),
            "realtime" => Some(Self::Realtime),
            "dual" => Some(Self::Dual),
            _ => None,
        }
    }
}

/// Which tier decided a part of the strategy.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DecidedBy {
    /// `flag` (the stored flag), `env` (an environment variable pins it) or `default` (the
    /// flag is missing or unusable: the legacy default applies).
    pub tier: &'static str,
    /// The pinning variable, for `env`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    /// The flag's version, for `flag`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

/// One category's route.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CategoryRoute {
    pub category: Category,
    pub enabled: bool,
    /// Share of the category's events written to Realtime in dual mode, 0–100.
    pub percentage: f64,
    pub adapters: Vec<String>,
    pub decided_by: DecidedBy,
}

/// The compiled routing decision for one flag revision.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Strategy {
    pub strategy: StrategyKind,
    pub decided_by: DecidedBy,
    pub revision: i64,
    pub categories: Vec<CategoryRoute>,
}

impl Strategy {
    /// Compiles the strategy from the flags, falling back to the legacy defaults for a flag
    /// that is missing or holds an unusable value.
    pub fn from_snapshot(snapshot: &Snapshot, environment: &str) -> Self {
        let ctx = EvaluationContext::default();
        let (value, decided_by) = decide(snapshot, keys::BROADCAST_STRATEGY, &ctx, environment);
        let (strategy, decided_by) = match value
            .as_ref()
            .and_then(Value::as_str)
            .and_then(StrategyKind::parse)
        {
            Some(kind) => (kind, decided_by),
            None => (StrategyKind::Websocket, default_tier()),
        };
        let categories = Category::ALL
            .into_iter()
            .map(|category| {
                let key = keys::category_route(category);
                let (value, decided_by) = decide(snapshot, &key, &ctx, environment);
                route(category, value.as_ref(), decided_by)
            })
            .collect();
        Self {
            strategy,
            decided_by,
            revision: snapshot.revision(),
            categories,
        }
    }

    pub fn route(&self, category: Category) -> &CategoryRoute {
        let index = Category::ALL
            .iter()
            .position(|c| *c == category)
            .expect("every category has a route");
        &self.categories[index]
    }

    /// Whether this strategy sends `event` to the Realtime path.
    pub fn routes_to_realtime(&self, event: &Event) -> bool {
        match self.strategy {
            StrategyKind::Websocket => false,
            StrategyKind::Realtime => true,
            StrategyKind::Dual => {
                let route = self.route(event.category);
                route.enabled && f64::from(bucket(event)) < route.percentage
            }
        }
    }
}

/// The event's sticky bucket, 0–99.
pub fn bucket(event: &Event) -> u32 {
    murmur3_x86_32(event.id.as_bytes(), 0) % 100
}

fn default_tier() -> DecidedBy {
    DecidedBy {
        tier: "default",
        variable: None,
        version: None,
    }
}

fn decide(
    snapshot: &Snapshot,
    key: &str,
    ctx: &EvaluationContext,
    environment: &str,
) -> (Option<Value>, DecidedBy) {
    let evaluation = snapshot.evaluate(key, ctx, environment);
    if evaluation.is_error() {
        return (None, default_tier());
    }
    let decided_by = match evaluation.tier {
        Tier::Env => DecidedBy {
            tier: "env",
            variable: snapshot.pin(key).map(|p| p.source_variable.clone()),
            version: None,
        },
        _ => DecidedBy {
            tier: "flag",
            variable: None,
            version: Some(evaluation.version),
        },
    };
    (Some(evaluation.value), decided_by)
}

fn route(category: Category, value: Option<&Value>, decided_by: DecidedBy) -> CategoryRoute {
    let legacy = crate::flags::pins::legacy_category_route(category);
    let usable = value.filter(|v| {
        v.get("enabled").is_some_and(Value::is_boolean)
            && v.get("percentage").is_some_and(Value::is_number)
    });
    let (value, decided_by) = match usable {
        Some(value) => (value, decided_by),
        None => (&legacy, default_tier()),
    };
    CategoryRoute {
        category,
        enabled: value["enabled"].as_bool().unwrap_or(false),
        percentage: value["percentage"]
            .as_f64()
            .unwrap_or(0.0)
            .clamp(0.0, 100.0),
        adapters: value["adapters"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
        decided_by,
    }
}

/// The active strategy, swapped whole on every flag change.
#[derive(Clone)]
pub struct Router {
    current: Arc<ArcSwap<Strategy>>,
    environment: Arc<str>,
}

impl Router {
    pub fn new(snapshot: &Snapshot, environment: &str) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(Strategy::from_snapshot(
                snapshot,
                environment,
            ))),
            environment: environment.into(),
        }
    }

    /// The strategy in force now; hold it for the whole of one event's routing.
    pub fn current(&self) -> Arc<Strategy> {
        self.current.load_full()
    }

    /// Compiles and swaps in the strategy of `snapshot`; returns it.
    pub fn rebuild(&self, snapshot: &Snapshot) -> Arc<Strategy> {
        let strategy = Arc::new(Strategy::from_snapshot(snapshot, &self.environment));
        self.current.store(strategy.clone());
        strategy
    }
}

#[cfg(test)]
mod tests {
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
        let category = |name: &str, enabled: bool, pct: u32| {
            flag(
                json!({"key": format!("broadcast.category.{name}"), "type": "json",
                "variants": {"off": {"enabled": false, "percentage": 0, "adapters": []},
                             "v": {"enabled": enabled, "percentage": pct, "adapters": ["websocket", "realtime"]}},
                "environments": {"production": {"enabled": true, "off_variant": "off", "default_variant": "v",
                "rollout": {"percentage": 100, "variant": "v"}}}}),
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
}
