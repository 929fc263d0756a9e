//! Building and running the service: pools, hub, state, listener; serve until a shutdown
//! signal, then stop in order: stop accepting and close streams, let in-flight requests finish
//! and sockets say goodbye, then flush the Realtime path (written, kept in the dead letter or
//! the local spool), all within `SWITCHYARD_SHUTDOWN_DEADLINE_S`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{self, AppState, auth::Authenticator, state::Components};
use crate::breaker::{self, Breaker, BreakerConfig};
use crate::config::Config;
use crate::flagstore::{LiveFlags, PinSources};
use crate::hub::jetstream::{self, JetStream};
use crate::hub::{Hub, SystemFrame};
use crate::ingest::Ingest;
use crate::realtime::{RealtimePath, RealtimeSettings};
use crate::rollout::{GuardrailSources, RolloutDeps};
use crate::router::Router;
use crate::store::{self, StartupError};
use crate::validator::{Validator, ValidatorSettings};

/// A built, listening, not yet serving switchyard.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    /// Stops the Realtime path (and its breaker) only once no request can submit to it any
    /// more: cancelling it with `state.shutdown` would drop what in-flight requests accept.
    realtime_stop: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Store(#[from] StartupError),
    #[error(
        "cannot listen on {addr}: {cause}\nChoose another address with MONITORING_HOST/MONITORING_PORT or --host/--port."
    )]
    Listen {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("invalid circuit breaker setting: {0}")]
    Breaker(String),
    #[error(transparent)]
    Nats(#[from] crate::hub::jetstream::EngineError),
}

impl Application {
    /// Connects to the control store (creating and migrating it), builds the hub and binds.
    pub async fn build(config: Config) -> Result<Self, BuildError> {
        // Before any HTTP client of this process is built (see `client::install_default_provider`).
        crate::client::install_default_provider();
        // Settings first: a bad value stops the start before anything connects.
        let breaker_config = BreakerConfig::from_settings(
            config.circuit_breaker_failure_threshold.as_deref(),
            config.circuit_breaker_recovery_time_s,
            config.legacy.timeout_ms,
        )
        .map_err(BuildError::Breaker)?;
        let breaker_config = BreakerConfig {
            stall_trip: config.breaker_stall_trip,
            ..breaker_config
        };
        let realtime_breaker_timeout = breaker_config.call_timeout;
        let shutdown = CancellationToken::new();
        let realtime_stop = CancellationToken::new();
        let breakers = breaker::Registry::new();
        breakers.register(Breaker::start(
            breaker::REALTIME,
            breaker_config,
            realtime_stop.clone(),
        ));
        let pool =
            store::pool::connect_and_migrate_bounded(&config.database_url, config.store_timeout())
                .await?;
        let (limits, queue) = (
            config.limits.hub(config.history_size),
            config.subscriber_queue as usize,
        );
        // SWITCHYARD_NATS_URL set: positions, fan-out and the Realtime queue are the stream's.
        let hub = match config.nats.settings() {
            Some(settings) => Hub::on_stream(limits, queue, JetStream::connect(settings).await?),
            None => Hub::with_limits(limits, queue),
        };
        let auth = Authenticator::new(
            pool.clone(),
            config.admin_key.as_deref(),
            config.public_read,
        )
        .with_stream_limit(config.max_streams_per_key)
        .with_lookup_timeout(config.store_timeout());
        let sources = PinSources {
            legacy: config.legacy.clone(),
            flag_env: config.flag_env.clone(),
        };
        let flags = LiveFlags::load(&pool, sources).await;
        let router = Router::new(&flags.snapshot(), &config.environment);
        let realtime_breaker = breakers.get(breaker::REALTIME).expect("registered above");
        let realtime = RealtimePath::start(
            RealtimeSettings::from_config(&config, hub.epoch()),
            pool.clone(),
            &config.database_url,
            realtime_breaker,
            realtime_stop.clone(),
        )
        .await;
        let metrics = crate::metrics::Metrics::new(
            crate::metrics::Sources {
                hub: hub.clone(),
                breakers: breakers.clone(),
                realtime: realtime.clone(),
                flags: flags.clone(),
            },
            shutdown.clone(),
        );
        let validator = Validator::start(
            ValidatorSettings::from_config(&config.validation, realtime_breaker_timeout),
            &hub,
            &realtime,
            metrics.clone(),
            pool.clone(),
            shutdown.clone(),
        );
        validator.set_enabled(validation_enabled(&flags, &config.environment));
        let ingest = Ingest::new(
            hub.clone(),
            config.idempotency_window(),
            router,
            Some((realtime.clone(), validator.clone())),
        )
        .with_max_event_bytes(config.limits.max_event_bytes as usize);
        let addr = SocketAddr::new(config.host, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|cause| BuildError::Listen { addr, cause })?;
        let rollouts = RolloutDeps {
            pool: pool.clone(),
            flags: flags.clone(),
            hub: hub.clone(),
            guardrails: GuardrailSources {
                breakers: breakers.clone(),
                realtime: realtime.clone(),
                validator: validator.clone(),
            },
        };
        let state = AppState::new(Components {
            config: Arc::new(config),
            pool,
            hub,
            ingest,
            auth,
            flags,
            breakers,
            realtime,
            validator,
            shutdown,
            connections: TaskTracker::new(),
            metrics,
            rollouts,
        });
        Ok(Self {
            listener,
            state,
            realtime_stop,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The Realtime path (its status: queue, backlog, replayed, dropped). With [`Self::breakers`],
    /// what an in-process drill (tools/'s `switchyard-bench failover`) watches without reaching
    /// into `api`.
    pub fn realtime(&self) -> &RealtimePath {
        &self.state.realtime
    }

    /// This instance's circuit breakers (`realtime` guards the Realtime path).
    pub fn breakers(&self) -> &breaker::Registry {
        &self.state.breakers
    }

    /// Serves until `signal` resolves, then shuts down gracefully.
    pub async fn run_until_stopped(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        let token = state.shutdown.clone();
        let grace = Duration::from_secs(state.config.shutdown_grace_s);
        let deadline_s = state.config.shutdown_deadline_s;
        let stopping_since = Arc::new(std::sync::OnceLock::new());
        let runtime = tokio::runtime::Handle::current();
        tracing::info!(
            addr = %self.local_addr(),
            epoch = state.hub.epoch(),
            runtime = ?runtime.runtime_flavor(),
            workers = runtime.metrics().num_workers(),
            "switchyard listening"
        );
        let router = api::router(state.clone());
        let background = spawn_background(&state);
        let (trigger, since) = (token.clone(), stopping_since.clone());
        // Header-read timeout, connection cap, send timeout and TCP_NODELAY: `crate::server`.
        let limits = crate::server::Limits::from_config(&state.config);
        crate::server::serve(
            self.listener,
            router,
            limits,
            state.metrics.clone(),
            async move {
                signal.await;
                let _ = since.set(tokio::time::Instant::now());
                tracing::info!("shutting down: no new connections; closing streams and sockets");
                trigger.cancel();
            },
        )
        .await?;
        let deadline = *stopping_since.get_or_init(tokio::time::Instant::now)
            + Duration::from_secs(deadline_s);
        state.connections.close();
        // Within the deadline too: the exit is bounded as a whole.
        let grace_end = (tokio::time::Instant::now() + grace).min(deadline);
        if tokio::time::timeout_at(grace_end, state.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_s = grace.as_secs(),
                "connections still open after the grace period"
            );
        }
        // No request is in flight any more: nothing can be submitted to the Realtime path, so
        // what it holds now is all it will ever hold. Flush it (it may keep its backlog in the
        // control store's dead letter, so before the pool closes).
        self.realtime_stop.cancel();
        if tokio::time::timeout_at(deadline, state.realtime.stopped())
            .await
            .is_err()
        {
            let status = state.realtime.status();
            tracing::error!(
                deadline_s,
                not_persisted = status.queue_depth + status.backlog_depth + status.spill_depth,
                queue_depth = status.queue_depth,
                backlog_depth = status.backlog_depth,
                "shutdown deadline passed: exiting with Realtime events neither written nor kept"
            );
        }
        for task in background {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                tracing::warn!("a background task did not stop before the shutdown deadline");
                break;
            }
        }
        // Bounded: closing waits for connections in use, and one may be stuck on a dead store.
        let close = deadline.max(tokio::time::Instant::now() + Duration::from_secs(1));
        if tokio::time::timeout_at(close, state.pool.close())
            .await
            .is_err()
        {
            tracing::warn!("the control store's pool did not close in time");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The tasks that run beside the server until shutdown: the flag listener, the forwarding
/// of flag changes to subscribers, the audit retention.
fn spawn_background(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    let config = &state.config;
    let mut tasks = vec![state.flags.spawn_listener(
        state.pool.clone(),
        Duration::from_secs(config.flag_resync_s.max(1)),
        state.shutdown.clone(),
    )];
    let (hub, mut changes, shutdown) = (
        state.hub.clone(),
        state.flags.subscribe(),
        state.shutdown.clone(),
    );
    let (router, live) = (state.ingest.router().clone(), state.flags.clone());
    let (validator, environment) = (state.validator.clone(), config.environment.clone());
    tasks.push(tokio::spawn(async move {
        loop {
            let change = tokio::select! {
                _ = shutdown.cancelled() => return,
                change = changes.recv() => change,
            };
            match change {
                Ok(change) => {
                    // The router first, so a client told of the change already sees its effect.
                    let strategy = router.rebuild(&live.snapshot());
                    validator.set_enabled(validation_enabled(&live, &environment));
                    if change.key.starts_with(crate::flags::keys::BROADCAST_PREFIX) {
                        tracing::info!(strategy = ?strategy.strategy, revision = strategy.revision, "broadcast strategy rebuilt");
                    }
                    hub.publish_system(&SystemFrame::FlagChanged {
                        key: change.key,
                        version: change.version,
                        revision: change.revision,
                        archived: None,
                    });
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    router.rebuild(&live.snapshot());
                    validator.set_enabled(validation_enabled(&live, &environment));
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }));
    if config.audit_retention_days > 0 {
        let (pool, days, shutdown) = (
            state.pool.clone(),
            config.audit_retention_days,
            state.shutdown.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Some(cutoff) = chrono::Duration::try_days(i64::from(days))
                    .and_then(|age| chrono::Utc::now().checked_sub_signed(age))
                else {
                    continue;
                };
                // Small batches, so retention never holds long locks.
                loop {
                    match crate::store::flags::prune_audit(&pool, cutoff, 1000).await {
                        Ok(0) => break,
                        Ok(n) => tracing::info!(rows = n, "pruned flag audit rows past retention"),
                        Err(e) => {
                            tracing::warn!(error = %e, "audit retention failed; will retry");
                            break;
                        }
                    }
                }
            }
        }));
    }
    // A key revoked anywhere stops working here at once.
    tasks.push(state.auth.spawn_revocation_listener(state.shutdown.clone()));
    // Breaker transitions: system frames to subscribers, rows in the history table.
    tasks.extend(crate::breaker::history::spawn(
        &state.breakers,
        state.pool.clone(),
        state.hub.clone(),
        state.shutdown.clone(),
    ));
    // The mode flag drives the Realtime breaker; its transitions drive the dashboards' transport.
    if let Some(realtime) = state.breakers.get(breaker::REALTIME) {
        tasks.push(crate::governance::follow_mode_flag(
            state.flags.clone(),
            realtime.clone(),
            config.environment.clone(),
            state.shutdown.clone(),
        ));
        tasks.push(crate::governance::announce_transport(
            realtime,
            state.hub.clone(),
            state.shutdown.clone(),
        ));
    }
    // On NATS: fan out what every instance published, and write routed events to Realtime
    // from the shared work queue (once, whichever instance took them).
    if let Some(engine) = state.hub.stream() {
        let validator = state.validator.clone();
        tasks.push(jetstream::spawn_follower(
            engine.clone(),
            state.hub.clone(),
            Arc::new(move |event| validator.expect(event)),
            state.shutdown.clone(),
        ));
        if let Some(breaker) = state.breakers.get(breaker::REALTIME) {
            tasks.push(crate::realtime::feed::spawn_feed(
                engine.clone(),
                state.realtime.clone(),
                breaker,
                state.shutdown.clone(),
            ));
            tasks.push(crate::realtime::relay::spawn_relay(
                engine.clone(),
                state.realtime.clone(),
                state.shutdown.clone(),
            ));
        }
    }
    // Guarded rollout plans and scheduled flag changes.
    tasks.push(crate::rollout::driver::spawn(
        state.rollouts.clone(),
        Duration::from_millis(config.rollout_tick_ms),
        state.metrics.clone(),
        state.shutdown.clone(),
    ));
    tasks
}

/// Whether `validation.enabled` (or its pin) is on in `environment`.
fn validation_enabled(live: &LiveFlags, environment: &str) -> bool {
    let evaluation = live.snapshot().evaluate(
        crate::flags::keys::VALIDATION_ENABLED,
        &crate::flags::EvaluationContext::default(),
        environment,
    );
    evaluation.value == serde_json::Value::Bool(true)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
