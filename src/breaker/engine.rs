//! The breaker's shared core: the state word, the transition lock and every transition.
//!
//! Admission reads the word with one atomic load (or, while half-open, takes a trial permit
//! with a compare-and-swap). Every transition happens under `engine`, a short `std` mutex never
//! held across an `.await`, and rewrites the whole word with a new generation, so a permit
//! taken under the old word is void and an outcome from before a transition cannot drive the
//! state after it. Transitions are announced on the broadcast channel while the lock is held:
//! subscribers see them in the order they happened, each `from` equal to the previous `to`.
//!
//! failsafe's own state machine is not used: it hides its state, moves to half-open only when a
//! call arrives (on the standard clock), admits every call when half-open, closes on the first
//! success, and runs its `on_closed` hook under its lock (a hook that reads the breaker
//! deadlocks). Only its failure policy lives here, behind the lock, and it is never handed a
//! callback.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, broadcast};

use super::backoff::Backoff;
use super::config::BreakerConfig;
use super::policy::FailurePolicy;
use super::state::{BreakerState, ONE_TRIAL, Transition, Word};
use super::stats::{Outcome, Stats};
use super::window::RateWindow;

/// Transitions a subscriber may fall behind before it sees `Lagged`.
const TRANSITION_QUEUE: usize = 256;

pub(crate) struct Inner {
    pub(crate) name: Arc<str>,
    pub(crate) config: BreakerConfig,
    pub(crate) word: AtomicU64,
    engine: Mutex<Engine>,
    pub(crate) stats: Stats,
    pub(crate) window: Arc<RateWindow>,
    /// Failures in a row; mirrors the failsafe policy's own count, so a success can skip the
    /// lock when there is nothing to reset.
    pub(crate) consecutive: AtomicU32,
    pub(crate) transitions: broadcast::Sender<Transition>,
    /// Wakes the timer task when the open deadline changes.
    pub(crate) timer: Arc<Notify>,
    /// The clock the stall rule reads (tokio's, so paused-clock tests drive it).
    base: tokio::time::Instant,
    /// Nanoseconds after `base` of the last success, or of the last close: the stall rule
    /// trips on a timeout that started after it.
    last_progress_ns: AtomicU64,
}

pub(crate) struct Engine {
    policy: Box<dyn failsafe::FailurePolicy + Send>,
    backoff: Backoff,
    pub(crate) since: DateTime<Utc>,
    pub(crate) probe: Option<Probe>,
    trial_successes: u32,
}

/// When an open breaker goes half-open.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe {
    pub(crate) at: tokio::time::Instant,
    pub(crate) wall: DateTime<Utc>,
    pub(crate) delay: Duration,
    pub(crate) generation: u32,
}

impl Inner {
    pub(crate) fn new(name: &str, config: BreakerConfig) -> Self {
        let window = Arc::new(RateWindow::new(config.failure_policy.window()));
        let engine = Engine {
            policy: config.failure_policy.trip_policy(window.clone()),
            backoff: Backoff::new(&config),
            since: Utc::now(),
            probe: None,
            trial_successes: 0,
        };
        Self {
            name: name.into(),
            word: AtomicU64::new(Word::new(BreakerState::Closed, 0, 0).0),
            engine: Mutex::new(engine),
            stats: Stats::new(),
            window,
            consecutive: AtomicU32::new(0),
            transitions: broadcast::channel(TRANSITION_QUEUE).0,
            timer: Arc::new(Notify::new()),
            base: tokio::time::Instant::now(),
            last_progress_ns: AtomicU64::new(0),
            config,
        }
    }

    pub(crate) fn word(&self) -> Word {
        Word(self.word.load(Ordering::Acquire))
    }

    /// The transition lock. Nothing panics while holding it, but a poisoned lock must not take
    /// the breaker down with it: the engine's data stays consistent between statements.
    pub(crate) fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Nanoseconds since `base`: the stall rule's clock.
    pub(crate) fn now_ns(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A call succeeded (or the breaker closed) at `at_ns`: the target is making progress.
    pub(crate) fn progressed(&self, at_ns: u64) {
        self.last_progress_ns.fetch_max(at_ns, Ordering::Relaxed);
    }

    /// A failure of a call admitted while closed (or forced closed) under `generation`, which
    /// started at `started_ns`.
    pub(crate) fn closed_failure(&self, generation: u32, outcome: Outcome, started_ns: u64) {
        let mut engine = self.engine();
        let word = self.word();
        if word.generation() != generation {
            return; // admitted before the last transition: counted, but not the policy's business
        }
        let in_a_row = self.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        // The policy sees every failure, whichever rule trips.
        let tripped = engine.policy.mark_dead_on_failure().is_some();
        let stalled = outcome == Outcome::Timeout
            && self.config.stall_trip
            && self.last_progress_ns.load(Ordering::Relaxed) <= started_ns;
        if (tripped || stalled) && word.state() == BreakerState::Closed {
            let reason = if tripped {
                self.trip_reason(in_a_row, outcome)
            } else {
                format!(
                    "a call timed out after {:.3} s and nothing succeeded since it started",
                    self.config.call_timeout.as_secs_f64()
                )
            };
            self.open(&mut engine, reason);
        }
    }

    /// A success of a call admitted while closed, when failures in a row were counted.
    pub(crate) fn closed_success(&self, generation: u32) {
        let mut engine = self.engine();
        if self.word().generation() == generation {
            engine.policy.record_success();
            self.consecutive.store(0, Ordering::Relaxed);
        }
    }

    fn trip_reason(&self, in_a_row: u32, outcome: Outcome) -> String {
        let last = if outcome == Outcome::Timeout {
            "timed out"
        } else {
            "failed"
        };
        match self.config.failure_policy {
            FailurePolicy::ConsecutiveFailures(_) => {
                format!("{in_a_row} consecutive failures (the last {last})")
            }
            FailurePolicy::FailureRate {
                threshold, window, ..
            } => {
                let counts = self.window.counts();
                format!(
                    "failure rate {:.1}% >= {:.1}% over {} calls in the last {} s",
                    counts.rate() * 100.0,
                    threshold * 100.0,
                    counts.calls,
                    window.as_secs_f64()
                )
            }
        }
    }

    /// The outcome of a trial call admitted while half-open under `generation`.
    pub(crate) fn trial_finished(&self, generation: u32, outcome: Option<Outcome>) {
        let mut engine = self.engine();
        let word = self.word();
        if word.state() != BreakerState::HalfOpen || word.generation() != generation {
            return; // the permit died with the half-open period it belonged to
        }
        self.word.fetch_sub(ONE_TRIAL, Ordering::AcqRel);
        match outcome {
            None => {} // the caller gave up on the call: only the permit comes back
            Some(Outcome::Success) => {
                engine.trial_successes += 1;
                if engine.trial_successes >= self.config.half_open_successes {
                    let reason = format!("{} trial calls succeeded", engine.trial_successes);
                    self.close(&mut engine, reason, None);
                }
            }
            Some(failed) => {
                self.consecutive.fetch_add(1, Ordering::Relaxed);
                let what = if failed == Outcome::Timeout {
                    "timed out"
                } else {
                    "failed"
                };
                self.open(&mut engine, format!("a trial call {what}"));
            }
        }
    }

    /// The timer says the open period of `generation` is over.
    pub(crate) fn probe_due(&self, generation: u32) {
        let mut engine = self.engine();
        let word = self.word();
        if word.state() != BreakerState::Open || word.generation() != generation {
            return;
        }
        let delay = engine.probe.map(|p| p.delay).unwrap_or_default();
        let reason = format!(
            "open for {:.3} s: admitting up to {} trial calls",
            delay.as_secs_f64(),
            self.config.half_open_permits
        );
        self.transit(&mut engine, BreakerState::HalfOpen, reason, None);
    }

    /// To `Open` for the next backoff step, and tell the timer.
    fn open(&self, engine: &mut Engine, reason: String) {
        let delay = engine.backoff.next_delay();
        let generation = self.transit(engine, BreakerState::Open, reason, None);
        engine.probe = Some(Probe {
            at: tokio::time::Instant::now() + delay,
            wall: Utc::now() + delay,
            delay,
            generation,
        });
        self.timer.notify_one();
    }

    /// To `Closed` under the policy, with its history and the backoff started afresh.
    pub(crate) fn close(&self, engine: &mut Engine, reason: String, actor: Option<&str>) {
        engine.policy.revived();
        engine.backoff.restart();
        // A stall is measured from the close: calls that started while open do not count.
        self.progressed(self.now_ns());
        self.consecutive.store(0, Ordering::Relaxed);
        self.window.clear();
        self.transit(engine, BreakerState::Closed, reason, actor);
    }

    /// To a forced state, or back to the policy.
    pub(crate) fn force(&self, to: BreakerState, reason: String, actor: &str) {
        let mut engine = self.engine();
        let from = self.word().state();
        if from.mode() == to.mode() {
            return; // already in that mode (under auto, the policy's state stands)
        }
        if to == BreakerState::Closed {
            self.close(&mut engine, reason, Some(actor));
        } else {
            self.transit(&mut engine, to, reason, Some(actor));
        }
    }

    /// To `Closed` under the policy with every counter cleared, whatever the state was.
    pub(crate) fn reset(&self, actor: &str) {
        let mut engine = self.engine();
        self.stats.clear();
        self.close(&mut engine, "reset: counters cleared".into(), Some(actor));
    }

    /// Writes the new state with a new generation and announces it; returns the generation.
    fn transit(
        &self,
        engine: &mut Engine,
        to: BreakerState,
        reason: String,
        actor: Option<&str>,
    ) -> u32 {
        let from = self.word();
        let generation = from.generation().wrapping_add(1);
        self.word
            .store(Word::new(to, 0, generation).0, Ordering::Release);
        let at = Utc::now();
        engine.since = at;
        engine.probe = None;
        engine.trial_successes = 0;
        tracing::info!(
            breaker = %self.name,
            from = from.state().as_str(),
            to = to.as_str(),
            reason = %reason,
            actor,
            "breaker {} went {} -> {}",
            self.name,
            from.state(),
            to
        );
        // No receiver is fine: nobody listens yet.
        let _ = self.transitions.send(Transition {
            breaker: self.name.to_string(),
            from: from.state(),
            to,
            at,
            reason,
            actor: actor.map(str::to_string),
        });
        self.timer.notify_one();
        generation
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The timer task holds only a weak reference; wake it so it sees the breaker is gone.
        self.timer.notify_one();
    }
}
