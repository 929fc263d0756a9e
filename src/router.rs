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
//! - `dual`: an event goes to Realtime when its category flag, evaluated with the event id as
//!   targeting key, serves a variant with `enabled: true`. The share is therefore the flag's
//!   own rollout percentage (sticky per event by the Unleash hash), the one number that
//!   `PUT .../rollout`, `switchyard flags rollout`, the page and rollout plans move. The flag
//!   is compiled once per revision into a [`PercentageGate`], so routing an event is one hash
//!   and a compare. A disabled or unknown category goes to WebSocket only. A pin keeps the
//!   legacy shape `{enabled, percentage, adapters}`; `adapters` is shown in `GET /v1/strategy`
//!   for the legacy configuration and routes nothing.

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use uuid::Uuid;

use crate::event::{Category, Event};
use crate::flags::{CompiledFlag, EvaluationContext, PercentageGate, Snapshot, Tier, keys};

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

/// One category's route, as `GET /v1/strategy` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CategoryRoute {
    pub category: Category,
    /// Whether any of the category's events are dual-written in `dual` mode (the flag is on in
    /// this environment and its rollout serves a dual-writing variant).
    pub enabled: bool,
    /// Share of the category's events written to Realtime in dual mode, 0–100: the flag's
    /// rollout percentage, sticky per event id.
    pub percentage: f64,
    pub adapters: Vec<String>,
    pub decided_by: DecidedBy,
}

/// How one category's events are picked for Realtime, compiled once per flag revision.
#[derive(Debug, Clone)]
enum Selector {
    /// The usual case: one hash of the event id and a compare. `inside` and `outside` say
    /// whether a key inside / outside the rollout is dual-written (both false when the flag is
    /// off in this environment).
    Gate {
        gate: PercentageGate,
        inside: bool,
        outside: bool,
    },
    /// A category flag with targeting rules or weights: evaluated in full per event, the
    /// event id as targeting key (correct, slower; the page and the CLI never make these).
    Evaluate {
        flag: Box<CompiledFlag>,
        environment: Arc<str>,
    },
}

impl Selector {
    fn selects(&self, event: &Event) -> bool {
        let mut buffer = Uuid::encode_buffer();
        let key: &str = event.id.hyphenated().encode_lower(&mut buffer);
        match self {
            Selector::Gate {
                gate,
                inside,
                outside,
            } => {
                if gate.contains(key) {
                    *inside
                } else {
                    *outside
                }
            }
            Selector::Evaluate { flag, environment } => {
                let ctx = EvaluationContext::for_key(key);
                dual_writes(&flag.evaluate(&ctx, environment).value) == Some(true)
            }
        }
    }
}

/// The compiled routing decision for one flag revision.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Strategy {
    pub strategy: StrategyKind,
    pub decided_by: DecidedBy,
    pub revision: i64,
    pub categories: Vec<CategoryRoute>,
    /// In `Category::ALL` order, beside `categories`.
    #[serde(skip)]
    #[schema(ignore)]
    selectors: Vec<Selector>,
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
        let (categories, selectors) = Category::ALL
            .into_iter()
            .map(|category| compile_category(snapshot, category, environment))
            .unzip();
        Self {
            strategy,
            decided_by,
            revision: snapshot.revision(),
            categories,
            selectors,
        }
    }

    fn index(category: Category) -> usize {
        Category::ALL
            .iter()
            .position(|c| *c == category)
            .expect("every category has a route")
    }

    pub fn route(&self, category: Category) -> &CategoryRoute {
        &self.categories[Self::index(category)]
    }

    /// Whether this strategy sends `event` to the Realtime path.
    pub fn routes_to_realtime(&self, event: &Event) -> bool {
        match self.strategy {
            StrategyKind::Websocket => false,
            StrategyKind::Realtime => true,
            StrategyKind::Dual => self.selectors[Self::index(event.category)].selects(event),
        }
    }
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
        _ => flag_tier(evaluation.version),
    };
    (Some(evaluation.value), decided_by)
}

fn flag_tier(version: i64) -> DecidedBy {
    DecidedBy {
        tier: "flag",
        variable: None,
        version: Some(version),
    }
}

/// A category variant's `enabled`: whether a key served it is dual-written.
fn dual_writes(value: &Value) -> Option<bool> {
    value.get("enabled").and_then(Value::as_bool)
}

fn adapters(value: &Value) -> Vec<String> {
    value["adapters"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// One category's route and selector. A pin (the legacy `DUAL_WRITE_*_PERCENTAGE` and the
/// `SWITCHYARD_FLAG_*` names) holds the legacy shape `{enabled, percentage, adapters}` and
/// wins; otherwise the flag's own rollout decides; a missing or unusable flag falls back to
/// the legacy route.
fn compile_category(
    snapshot: &Snapshot,
    category: Category,
    environment: &str,
) -> (CategoryRoute, Selector) {
    let key = keys::category_route(category);
    if let Some(pin) = snapshot.pin(&key) {
        let decided_by = DecidedBy {
            tier: "env",
            variable: Some(pin.source_variable.clone()),
            version: None,
        };
        if let Some(compiled) = fixed_share(category, &key, &pin.value, decided_by) {
            return compiled;
        }
    }
    let flag = snapshot.flag(&key).filter(|flag| flag.pin().is_none());
    if let Some(compiled) = flag.and_then(|flag| from_flag(category, flag, environment)) {
        return compiled;
    }
    let legacy = crate::flags::pins::legacy_category_route(category);
    fixed_share(category, &key, &legacy, default_tier()).expect("the legacy route is usable")
}

/// A route given whole as `{enabled, percentage, adapters}` (a pin, the legacy default),
/// hashed with the flag key as the group so that it picks the events the flag would.
fn fixed_share(
    category: Category,
    key: &str,
    value: &Value,
    decided_by: DecidedBy,
) -> Option<(CategoryRoute, Selector)> {
    let enabled = dual_writes(value)?;
    let percentage = value.get("percentage")?.as_f64()?.clamp(0.0, 100.0);
    // Pins accept fractions; the hash has whole-percent buckets, so round to the nearest.
    let whole = percentage.round() as u32;
    let route = CategoryRoute {
        category,
        enabled,
        percentage,
        adapters: adapters(value),
        decided_by,
    };
    let selector = Selector::Gate {
        gate: PercentageGate::share(key, whole),
        inside: enabled,
        outside: false,
    };
    Some((route, selector))
}

/// A route from the flag's own rollout: inside the percentage the rollout variant is served,
/// outside the default one; each says by its `enabled` whether it dual-writes.
fn from_flag(
    category: Category,
    flag: &CompiledFlag,
    environment: &str,
) -> Option<(CategoryRoute, Selector)> {
    let decided_by = flag_tier(flag.version());
    let Some(gate) = flag.percentage_gate(environment) else {
        // Rules or weights: only a full evaluation per event is faithful.
        let route = CategoryRoute {
            category,
            enabled: true,
            percentage: f64::from(flag.rollout_percentage(environment)?),
            adapters: Vec::new(),
            decided_by,
        };
        let selector = Selector::Evaluate {
            flag: Box::new(flag.clone()),
            environment: environment.into(),
        };
        return Some((route, selector));
    };
    let (inside, outside) = if gate.enabled {
        (
            dual_writes(&gate.inside_value)?,
            dual_writes(&gate.outside_value)?,
        )
    } else {
        let off = dual_writes(&gate.off_value)?;
        (off, off)
    };
    let share = match (inside, outside) {
        (true, true) => 100,
        (true, false) => gate.percentage,
        (false, true) => 100 - gate.percentage,
        (false, false) => 0,
    };
    let shown = if inside {
        &gate.inside_value
    } else {
        &gate.outside_value
    };
    let route = CategoryRoute {
        category,
        enabled: inside || outside,
        percentage: f64::from(share),
        adapters: adapters(shown),
        decided_by,
    };
    Some((
        route,
        Selector::Gate {
            gate,
            inside,
            outside,
        },
    ))
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
#[path = "router_tests.rs"]
mod tests;
