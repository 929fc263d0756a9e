//! The background task that moves rollout plans and applies scheduled changes.
//!
//! It wakes every tick (`SWITCHYARD_ROLLOUT_TICK_MS`) and at once on any breaker transition,
//! so a guardrail on a breaker is acted on the moment the breaker opens. Plans are driven by
//! one instance at a time: the one whose dedicated connection holds the driver's advisory
//! lock (released when that connection ends, so another instance takes over after a crash or
//! a shutdown). Each step also locks the plan's row and re-reads it, so even two drivers
//! could not take the same step twice. Scheduled changes need no leader: each is claimed in
//! the transaction that applies it.

use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use sqlx::{Connection, PgConnection};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::deps::RolloutDeps;
use super::operations::{Operation, operate};
use super::{schedule, steps};
use crate::breaker::history::merged_transitions;
use crate::metrics::panics::panic_message;
use crate::metrics::{Metrics, PanicSite};
use crate::store::rollouts as store;

/// Starts the driver, waking every `tick` (at least 10 ms); it stops at `shutdown`, releasing
/// the lead.
pub fn spawn(
    deps: RolloutDeps,
    tick: Duration,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let tick = tick.max(Duration::from_millis(10));
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut transitions = merged_transitions(&deps.guardrails.breakers);
        let mut lead = Lead::default();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = interval.tick() => {}
                Some(_) = transitions.next() => {}
            }
            if let Err(e) = schedule::apply_due(&deps).await {
                tracing::warn!(error = %e, "applying scheduled changes failed; will retry");
            }
            let leading = lead.check(&deps).await;
            metrics.rollouts().set_leader(leading);
            if leading {
                drive_running(&deps, &metrics).await;
            }
        }
        lead.release().await;
    })
}

/// The driver's own connection, on which it holds (or keeps trying to take) the lead.
#[derive(Default)]
struct Lead {
    conn: Option<PgConnection>,
    leading: bool,
}

impl Lead {
    /// Whether this instance leads now: still holding the lock, or just taking it.
    async fn check(&mut self, deps: &RolloutDeps) -> bool {
        if self.conn.is_none() {
            match deps.pool.acquire().await {
                Ok(conn) => self.conn = Some(conn.detach()),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot reach the control store for the rollout lead");
                    return false;
                }
            }
        }
        let conn = self.conn.as_mut().expect("connected above");
        // The lock lives as long as the session: a live session still holds it.
        let result = if self.leading {
            conn.ping().await.map(|()| true)
        } else {
            store::try_lead(conn).await
        };
        match result {
            Ok(leading) => {
                if leading && !self.leading {
                    tracing::info!("this instance drives the rollout plans");
                }
                self.leading = leading;
            }
            Err(e) => {
                if self.leading {
                    tracing::warn!(error = %e, "lost the rollout driver's lead connection");
                }
                self.conn = None;
                self.leading = false;
            }
        }
        self.leading
    }

    async fn release(self) {
        if let Some(conn) = self.conn {
            let _ = conn.close().await;
        }
    }
}

async fn drive_running(deps: &RolloutDeps, metrics: &Metrics) {
    let plans = match store::running(&deps.pool).await {
        Ok(plans) => plans,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the running rollout plans; will retry");
            return;
        }
    };
    metrics.rollouts().set_running(&plans);
    for plan in plans {
        // One plan's failure is that plan's: caught here, so the driver goes on to the others.
        let stepped = std::panic::AssertUnwindSafe(steps::drive(deps, plan.id))
            .catch_unwind()
            .await;
        let failure = match stepped {
            Ok(Ok(_)) => continue,
            Ok(Err(e)) if e.is_transient() => {
                tracing::warn!(rollout_id = %plan.id, error = %e, "rollout step failed; will retry");
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(payload) => {
                metrics.panics().count(PanicSite::Background);
                format!(
                    "evaluating it panicked: {}",
                    panic_message(payload.as_ref())
                )
            }
        };
        tracing::error!(rollout_id = %plan.id, error = %failure, "rollout plan {} failed; it is paused and the driver goes on", plan.id);
        let reason = format!("failed: {failure}; paused, so nothing moves until an operator looks");
        let actor = plan.actor();
        if let Err(e) = operate(deps, plan.id, &actor, Operation::PauseWith(reason)).await {
            tracing::warn!(rollout_id = %plan.id, error = %e, "cannot mark the failed rollout plan; will retry");
        }
    }
}
