//! Where the flags and the Realtime breaker meet:
//!
//! - the `realtime.breaker.mode` flag sets the breaker's mode (auto, force_open,
//!   force_closed, disabled) whenever it changes; an operator's `POST /v1/breakers/realtime`
//!   holds until the flag changes again;
//! - while the breaker is not closed, `dashboard.transport` answers `websocket` for every
//!   dashboard (reason DISABLED, metadata naming the breaker), and a `transport_changed`
//!   system frame tells dashboards to move; when it closes, the flag's own rollout applies
//!   again and dashboards are told so.

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::breaker::{Breaker, BreakerMode, BreakerState};
use crate::flags::keys::{DASHBOARD_TRANSPORT, REALTIME_BREAKER_MODE};
use crate::flags::{Evaluation, EvaluationContext, Reason};
use crate::flagstore::LiveFlags;
use crate::hub::{Hub, SystemFrame, Transport};

/// Whether events can reach Realtime: closed, or forced closed, or the breaker disabled.
pub fn passes(state: BreakerState) -> bool {
    matches!(
        state,
        BreakerState::Closed | BreakerState::ForcedClosed | BreakerState::Disabled
    )
}

/// The `dashboard.transport` answer while the breaker is not closed, replacing `evaluation`;
/// `None` when the flag's own answer stands. Returns the override's metadata too.
pub fn transport_override(
    evaluation: &Evaluation,
    breaker: Option<&Breaker>,
) -> Option<(Evaluation, Value)> {
    let breaker = breaker?;
    let state = breaker.state();
    if evaluation.key != DASHBOARD_TRANSPORT || evaluation.is_error() || passes(state) {
        return None;
    }
    let mut overridden = evaluation.clone();
    overridden.value = json!("websocket");
    overridden.variant = Some("websocket".into());
    overridden.reason = Reason::Disabled;
    let metadata =
        json!({"overridden_by": format!("breaker:{}", breaker.name()), "breaker_state": state});
    Some((overridden, metadata))
}

fn mode_of(value: &Value) -> Option<BreakerMode> {
    match value.as_str()? {
        "auto" => Some(BreakerMode::Auto),
        "force_open" => Some(BreakerMode::ForceOpen),
        "force_closed" => Some(BreakerMode::ForceClosed),
        "disabled" => Some(BreakerMode::Disabled),
        _ => None,
    }
}

/// Applies the mode flag now and on every change of it, until shutdown.
pub fn follow_mode_flag(
    live: LiveFlags,
    breaker: Breaker,
    environment: String,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut changes = live.subscribe();
        let mut applied: Option<BreakerMode> = None;
        loop {
            let evaluation = live.snapshot().evaluate(
                REALTIME_BREAKER_MODE,
                &EvaluationContext::default(),
                &environment,
            );
            match mode_of(&evaluation.value) {
                Some(mode) if applied != Some(mode) => {
                    // At start an `auto` flag leaves the breaker as it is.
                    if applied.is_some() || mode != BreakerMode::Auto {
                        breaker.set_mode(
                            mode,
                            "flag:realtime.breaker.mode",
                            Some("the realtime.breaker.mode flag changed"),
                        );
                    }
                    applied = Some(mode);
                }
                Some(_) => {}
                None if !evaluation.is_error() => {
                    tracing::warn!(value = %evaluation.value, "realtime.breaker.mode holds no known mode; ignored");
                }
                None => {}
            }
            loop {
                let change = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    change = changes.recv() => change,
                };
                match change {
                    Ok(change) if change.key == REALTIME_BREAKER_MODE => break,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return,
                }
            }
        }
    })
}

/// Tells dashboards (`transport_changed` system frames) when the breaker stops or starts
/// letting events through to Realtime.
pub fn announce_transport(
    breaker: Breaker,
    hub: Hub,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut transitions = breaker.subscribe();
        loop {
            let transition = tokio::select! {
                _ = shutdown.cancelled() => return,
                t = transitions.recv() => t,
            };
            let transition = match transition {
                Ok(t) => t,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            let (was, is) = (passes(transition.from), passes(transition.to));
            if was == is {
                continue;
            }
            let (transport, reason) = if is {
                (
                    Transport::Flag,
                    "the Realtime breaker closed: evaluate dashboard.transport again",
                )
            } else {
                (
                    Transport::Websocket,
                    "the Realtime breaker is not closed: listen on /v1/ws, resuming with since = the (epoch, sequence_id) of the last row seen",
                )
            };
            tracing::info!(breaker = breaker.name(), to = ?transition.to, "dashboards told to change transport");
            hub.publish_system(&SystemFrame::TransportChanged {
                transport,
                flag: DASHBOARD_TRANSPORT,
                breaker: breaker.name().to_string(),
                breaker_state: transition.to,
                reason,
            });
        }
    })
}
