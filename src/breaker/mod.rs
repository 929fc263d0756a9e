//! The circuit breaker around the Realtime path.
//!
//! `failsafe` decides when a closed breaker trips (its failure policy) and how long it stays
//! open (its exponential backoff steps); this module wraps it with what failsafe lacks and
//! operators need (docs/architecture.md, "The breaker"): a state anyone can read, a timer that moves it to
//! half-open on schedule, a timeout on every call, a limited number of half-open trial calls,
//! forced states, counters and latency percentiles, and a stream of transitions that the
//! history table, the logs and the system frames are fed from.
//!
//! The closed path costs one atomic load to admit, a timeout around the call, and a few
//! atomic adds to record the outcome; a lock is taken only when a failure must be judged.

mod backoff;
mod config;
mod engine;
pub mod history;
mod policy;
mod registry;
mod state;
mod stats;
mod timer;
mod window;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_concurrency;
#[cfg(test)]
mod tests_modes;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

/// The breaker that guards the Realtime path, the one every instance registers.
pub const REALTIME: &str = "realtime";

pub use config::{BreakerConfig, ConfigView};
use engine::Inner;
pub use policy::FailurePolicy;
pub use registry::Registry;
pub use state::{BreakerMode, BreakerState, Transition};
use state::{ONE_TRIAL, Word};
use stats::Outcome;
pub use stats::{CallCounts, LatencyPercentiles};

/// Why a call through the breaker did not return the call's own success.
#[derive(Debug, thiserror::Error)]
pub enum BreakerError<E> {
    /// Not run: the breaker is open, forced open, or has no trial permit left.
    #[error("the circuit breaker is open: call rejected")]
    Rejected,
    /// Ran longer than the call timeout; it was dropped and counts as a failure.
    #[error("the call timed out")]
    Timeout,
    /// Ran and failed.
    #[error("the call failed: {0}")]
    Failed(E),
}

/// A breaker; clones share it.
#[derive(Clone)]
pub struct Breaker {
    inner: Arc<Inner>,
}

/// A breaker as operators see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BreakerStatus {
    pub name: String,
    pub state: BreakerState,
    pub mode: BreakerMode,
    /// When it entered this state.
    pub since: DateTime<Utc>,
    /// When an open breaker will admit trial calls.
    pub next_probe_at: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    /// Failures / calls over the policy's window (0 without calls).
    pub failure_rate: f64,
    /// Calls over the policy's window.
    pub window_calls: u64,
    pub calls: CallCounts,
    pub latency_ms: LatencyPercentiles,
    pub config: ConfigView,
}

impl Breaker {
    /// A closed breaker named `name`, with its timer task running until `shutdown`. The
    /// configuration should have passed [`BreakerConfig::validate`] (`from_settings` does);
    /// values it would refuse are brought into range here rather than panicking.
    pub fn start(name: &str, config: BreakerConfig, shutdown: CancellationToken) -> Self {
        let config = config.sanitized();
        let inner = Arc::new(Inner::new(name, config));
        tokio::spawn(timer::run(
            Arc::downgrade(&inner),
            inner.timer.clone(),
            shutdown,
        ));
        Self { inner }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn config(&self) -> &BreakerConfig {
        &self.inner.config
    }

    /// Runs `f` if the breaker admits it, with the call timeout, and records the outcome.
    pub async fn call<T, E, F, Fut>(&self, f: F) -> Result<T, BreakerError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let Some(ticket) = self.admit() else {
            self.inner.stats.reject();
            return Err(BreakerError::Rejected);
        };
        let started = Instant::now();
        let started_ns = self.inner.now_ns();
        let result = tokio::time::timeout(self.inner.config.call_timeout, f()).await;
        let elapsed = started.elapsed();
        let (outcome, result) = match result {
            Ok(Ok(value)) => (Outcome::Success, Ok(value)),
            Ok(Err(error)) => (Outcome::Failure, Err(BreakerError::Failed(error))),
            Err(_) => (Outcome::Timeout, Err(BreakerError::Timeout)),
        };
        ticket.finish(outcome, elapsed, started_ns);
        result
    }

    /// Whether a call made now would be admitted.
    pub fn permits_calls(&self) -> bool {
        let word = self.inner.word();
        match word.state() {
            BreakerState::Closed | BreakerState::ForcedClosed | BreakerState::Disabled => true,
            BreakerState::Open | BreakerState::ForcedOpen => false,
            BreakerState::HalfOpen => word.trials() < self.inner.config.half_open_permits,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.inner.word().state()
    }

    pub fn mode(&self) -> BreakerMode {
        self.state().mode()
    }

    /// Forces a state (`ForceOpen`, `ForceClosed`, `Disabled`) or returns to the policy
    /// (`Auto`: closed, with the policy's history cleared). Setting the current mode again
    /// changes nothing and announces nothing.
    pub fn set_mode(&self, mode: BreakerMode, actor: &str, reason: Option<&str>) {
        let to = match mode {
            BreakerMode::Auto => BreakerState::Closed,
            BreakerMode::ForceOpen => BreakerState::ForcedOpen,
            BreakerMode::ForceClosed => BreakerState::ForcedClosed,
            BreakerMode::Disabled => BreakerState::Disabled,
        };
        let reason = match reason.map(str::trim).filter(|r| !r.is_empty()) {
            Some(why) => format!("mode {mode}: {why}"),
            None => format!("mode {mode}"),
        };
        self.inner.force(to, reason, actor);
    }

    /// Back to closed under the policy, whatever the state or mode, with every counter cleared.
    /// Always announced (an operator action is audited even when the state does not change).
    pub fn reset(&self, actor: &str) {
        self.inner.reset(actor);
    }

    pub fn status(&self) -> BreakerStatus {
        let inner = &self.inner;
        // Read the word under the transition lock, so state, since and probe agree.
        let (word, since, probe) = {
            let engine = inner.engine();
            (inner.word(), engine.since, engine.probe)
        };
        let window = inner.window.counts();
        BreakerStatus {
            name: inner.name.to_string(),
            state: word.state(),
            mode: word.state().mode(),
            since,
            next_probe_at: probe
                .filter(|_| word.state() == BreakerState::Open)
                .map(|p| p.wall),
            consecutive_failures: inner.consecutive.load(Ordering::Relaxed),
            failure_rate: window.rate(),
            window_calls: window.calls,
            calls: inner.stats.counts(),
            latency_ms: inner.stats.percentiles(),
            config: inner.config.view(),
        }
    }

    /// Every transition from now on, in order.
    pub fn subscribe(&self) -> broadcast::Receiver<Transition> {
        self.inner.transitions.subscribe()
    }

    /// Admission: one load while closed, a compare-and-swap for a trial permit while half-open.
    fn admit(&self) -> Option<Ticket<'_>> {
        let inner = &self.inner;
        let mut current = inner.word.load(Ordering::Acquire);
        loop {
            let word = Word(current);
            let kind = match word.state() {
                BreakerState::Closed | BreakerState::ForcedClosed => Kind::Recorded,
                BreakerState::Disabled => Kind::Unrecorded,
                BreakerState::Open | BreakerState::ForcedOpen => return None,
                BreakerState::HalfOpen => {
                    if word.trials() >= inner.config.half_open_permits {
                        return None;
                    }
                    match inner.word.compare_exchange_weak(
                        current,
                        current + ONE_TRIAL,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => Kind::Trial,
                        Err(actual) => {
                            current = actual;
                            continue;
                        }
                    }
                }
            };
            return Some(Ticket {
                inner,
                generation: word.generation(),
                kind,
                finished: false,
            });
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Closed or forced closed: counted, and judged by the policy (which never trips when forced).
    Recorded,
    /// Disabled: nothing recorded.
    Unrecorded,
    /// Half-open: holds one of the trial permits.
    Trial,
}

/// An admitted call. Dropped unfinished (the caller abandoned the call), it gives back its
/// trial permit, so a cancelled trial cannot hold the breaker half-open.
struct Ticket<'a> {
    inner: &'a Inner,
    generation: u32,
    kind: Kind,
    finished: bool,
}

impl Ticket<'_> {
    fn finish(mut self, outcome: Outcome, elapsed: std::time::Duration, started_ns: u64) {
        self.finished = true;
        let inner = self.inner;
        if self.kind == Kind::Unrecorded {
            return;
        }
        inner.stats.record(outcome, elapsed);
        inner.window.record(outcome.failed());
        if !outcome.failed() {
            let elapsed_ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
            inner.progressed(started_ns.saturating_add(elapsed_ns));
        }
        match self.kind {
            Kind::Trial => inner.trial_finished(self.generation, Some(outcome)),
            _ if outcome.failed() => inner.closed_failure(self.generation, outcome, started_ns),
            // The common case: nothing to reset, no lock.
            _ if inner.consecutive.load(Ordering::Relaxed) == 0 => {}
            _ => inner.closed_success(self.generation),
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.finished && self.kind == Kind::Trial {
            self.inner.trial_finished(self.generation, None);
        }
    }
}
