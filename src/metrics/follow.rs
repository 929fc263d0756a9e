//! Counters fed by the streams the service already announces on: breaker transitions (each
//! breaker's transition channel) and flag changes (the live flags' change channel). One task
//! per stream, subscribed when the metrics are built so nothing from then on is missed.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::{FlagLabels, Sources};

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct TransitionLabels {
    breaker: String,
    from: &'static str,
    to: &'static str,
}

pub(super) type Transitions = Family<TransitionLabels, Counter>;

pub(super) fn register_transitions(registry: &mut Registry) -> Transitions {
    let transitions = Transitions::default();
    registry.register(
        "switchyard_breaker_transitions",
        "Breaker state transitions since start, by breaker, from and to state",
        super::listed::Listed(transitions.clone()),
    );
    transitions
}

pub(super) fn spawn(
    sources: &Sources,
    transitions: Transitions,
    flag_changes: Family<FlagLabels, Counter>,
    shutdown: CancellationToken,
) {
    for breaker in sources.breakers.all() {
        let mut receiver = breaker.subscribe();
        let (transitions, shutdown) = (transitions.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                let transition = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    received = receiver.recv() => received,
                };
                match transition {
                    Ok(t) => {
                        let labels = TransitionLabels {
                            breaker: t.breaker,
                            from: t.from.as_str(),
                            to: t.to.as_str(),
                        };
                        transitions.get_or_create(&labels).inc();
                    }
                    // Transitions are rare and the channel holds many; if it ever overflows,
                    // the breaker's own log and history table still have every one.
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "metrics missed breaker transitions");
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }
    let mut changes = sources.flags.subscribe();
    tokio::spawn(async move {
        loop {
            let change = tokio::select! {
                _ = shutdown.cancelled() => return,
                received = changes.recv() => received,
            };
            match change {
                Ok(change) => {
                    flag_changes
                        .get_or_create(&FlagLabels { flag: change.key })
                        .inc();
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "metrics missed flag changes");
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
}
