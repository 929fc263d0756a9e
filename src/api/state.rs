//! The application state and the narrow parts of it that handlers take. `AppState` holds
//! everything (built once by `app`); each handler extracts only what it uses, through
//! `FromRef`, as Unleash Edge does: a sub-state struct per resource where a handler needs
//! several things, or a single component (`Hub`, `Ingest`, `Metrics`, `Router`, ...).
//!
//! Cloning is on the hot path: axum clones the router's state for every request (and again
//! for each copy of a route's service it makes), then each extractor builds its part with
//! `FromRef`. So `AppState` is one `Arc` (a clone is one refcount, not one per component), and
//! the parts the evaluation routes take ([`EvaluationState`], the `Authenticator`) are built
//! once and are one `Arc` each too. The colder sub-states are still assembled per request.

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::FromRef;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::auth::Authenticator;
use crate::breaker::Registry;
use crate::config::Config;
use crate::flagstore::LiveFlags;
use crate::hub::Hub;
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::realtime::RealtimePath;
use crate::rollout::RolloutDeps;
use crate::router::Router;
use crate::validator::Validator;

/// Everything a handler may need; handlers take the narrow part they use through `FromRef`.
/// Its components are read through `Deref` (`state.config`, `state.pool`, ...).
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    components: Components,
    /// Built once from `components`, so extracting it is one refcount.
    evaluation: EvaluationState,
}

impl AppState {
    pub fn new(components: Components) -> Self {
        let evaluation = EvaluationState(Arc::new(EvaluationParts {
            config: components.config.clone(),
            flags: components.flags.clone(),
            breakers: components.breakers.clone(),
            metrics: components.metrics.clone(),
        }));
        Self(Arc::new(Inner {
            components,
            evaluation,
        }))
    }
}

impl Deref for AppState {
    type Target = Components;

    fn deref(&self) -> &Components {
        &self.0.components
    }
}

/// What [`AppState`] is built from.
pub struct Components {
    pub config: Arc<Config>,
    pub pool: PgPool,
    pub hub: Hub,
    pub ingest: Ingest,
    pub auth: Authenticator,
    pub flags: LiveFlags,
    /// The circuit breakers of this instance (`realtime` guards the Realtime path).
    pub breakers: Registry,
    /// The Realtime path: batcher, breaker-guarded sink, backlog.
    pub realtime: RealtimePath,
    /// The consistency validator (compares the two paths while both carry events).
    pub validator: Validator,
    /// Cancelled when the server begins to shut down: streams close, sockets say goodbye.
    pub shutdown: CancellationToken,
    /// Long-lived connection tasks (WebSockets), awaited at shutdown.
    pub connections: TaskTracker,
    /// This instance's Prometheus registry (`GET /metrics`).
    pub metrics: Metrics,
    /// What rollout plans and scheduled changes work with (shared with their driver).
    pub rollouts: RolloutDeps,
}

/// Implements `FromRef<AppState>` for a component held in `AppState` under `field`.
macro_rules! component {
    ($($ty:ty => $field:ident),* $(,)?) => {$(
        impl FromRef<AppState> for $ty {
            fn from_ref(state: &AppState) -> Self {
                state.$field.clone()
            }
        }
    )*};
}

component! {
    Authenticator => auth,
    Hub => hub,
    Ingest => ingest,
    Metrics => metrics,
    RolloutDeps => rollouts,
}

/// `GET /dashboard`: whether reads need a key (`SWITCHYARD_PUBLIC_READ`), so the page can
/// open read-only without asking for one.
#[derive(Clone, Copy)]
pub struct DashboardAccess {
    pub public_read: bool,
}

impl FromRef<AppState> for DashboardAccess {
    fn from_ref(state: &AppState) -> Self {
        Self {
            public_read: state.config.public_read,
        }
    }
}

/// The active routing strategy (`GET /v1/strategy`).
impl FromRef<AppState> for Router {
    fn from_ref(state: &AppState) -> Self {
        state.ingest.router().clone()
    }
}

/// The flag admin API and scheduled changes: the control store and the live flags.
#[derive(Clone)]
pub struct FlagsState {
    pub pool: PgPool,
    pub flags: LiveFlags,
}

/// Flag evaluation (switchyard's API and OFREP), the hottest routes: one `Arc`, built once
/// with the state. Its parts are read through `Deref`.
#[derive(Clone)]
pub struct EvaluationState(Arc<EvaluationParts>);

/// What evaluation uses: the snapshot, the environment evaluated in, the Realtime breaker that
/// governs `dashboard.transport`, the evaluation counters.
pub struct EvaluationParts {
    pub config: Arc<Config>,
    pub flags: LiveFlags,
    pub breakers: Registry,
    pub metrics: Metrics,
}

impl Deref for EvaluationState {
    type Target = EvaluationParts;

    fn deref(&self) -> &EvaluationParts {
        &self.0
    }
}

/// The legacy flag endpoints: the snapshot and the legacy settings they report.
#[derive(Clone)]
pub struct LegacyFlagsState {
    pub config: Arc<Config>,
    pub flags: LiveFlags,
}

/// `GET /metrics`: the registry, and the key check when scraping needs one.
#[derive(Clone)]
pub struct ScrapeState {
    pub config: Arc<Config>,
    pub auth: Authenticator,
    pub metrics: Metrics,
}

/// The breaker API: the breakers, their audit in the control store, and the shutdown that
/// ends their event streams.
#[derive(Clone)]
pub struct BreakersState {
    pub breakers: Registry,
    pub pool: PgPool,
    pub shutdown: CancellationToken,
}

/// The validator's summary and its stored reports.
#[derive(Clone)]
pub struct ValidationState {
    pub pool: PgPool,
    pub validator: Validator,
}

/// Readiness: the control store, the hub's position, the flags' freshness.
#[derive(Clone)]
pub struct HealthState {
    pub pool: PgPool,
    pub hub: Hub,
    pub flags: LiveFlags,
    pub metrics: Metrics,
}

/// The Realtime path's status and the legacy adapter metrics built from it.
#[derive(Clone)]
pub struct RealtimeState {
    pub hub: Hub,
    pub router: Router,
    pub realtime: RealtimePath,
    pub validator: Validator,
}

impl FromRef<AppState> for FlagsState {
    fn from_ref(state: &AppState) -> Self {
        Self {
            pool: state.pool.clone(),
            flags: state.flags.clone(),
        }
    }
}

impl FromRef<AppState> for EvaluationState {
    fn from_ref(state: &AppState) -> Self {
        state.0.evaluation.clone()
    }
}

impl FromRef<AppState> for LegacyFlagsState {
    fn from_ref(state: &AppState) -> Self {
        Self {
            config: state.config.clone(),
            flags: state.flags.clone(),
        }
    }
}

impl FromRef<AppState> for ScrapeState {
    fn from_ref(state: &AppState) -> Self {
        Self {
            config: state.config.clone(),
            auth: state.auth.clone(),
            metrics: state.metrics.clone(),
        }
    }
}

impl FromRef<AppState> for BreakersState {
    fn from_ref(state: &AppState) -> Self {
        Self {
            breakers: state.breakers.clone(),
            pool: state.pool.clone(),
            shutdown: state.shutdown.clone(),
        }
    }
}

impl FromRef<AppState> for ValidationState {
    fn from_ref(state: &AppState) -> Self {
        Self {
            pool: state.pool.clone(),
            validator: state.validator.clone(),
        }
    }
}

impl FromRef<AppState> for HealthState {
    fn from_ref(state: &AppState) -> Self {
        Self {
            pool: state.pool.clone(),
            hub: state.hub.clone(),
            flags: state.flags.clone(),
            metrics: state.metrics.clone(),
        }
    }
}

impl FromRef<AppState> for RealtimeState {
    fn from_ref(state: &AppState) -> Self {
        Self {
            hub: state.hub.clone(),
            router: state.ingest.router().clone(),
            realtime: state.realtime.clone(),
            validator: state.validator.clone(),
        }
    }
}
