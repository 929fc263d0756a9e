//! The timer that moves an open breaker to half-open when its backoff elapses, on tokio's
//! clock, whether or not a call arrives (failsafe only looks when the next call comes, so a
//! quiet breaker would never probe and would report `open` long after it could have recovered).

use std::sync::{Arc, Weak};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::engine::Inner;

/// Runs until shutdown or until the breaker is dropped (it holds only a weak reference).
pub(crate) async fn run(breaker: Weak<Inner>, wake: Arc<Notify>, shutdown: CancellationToken) {
    loop {
        // Read the deadline, then let go of the breaker before waiting.
        let probe = match breaker.upgrade() {
            Some(inner) => inner.engine().probe,
            None => return,
        };
        let deadline = async {
            match probe {
                Some(probe) => tokio::time::sleep_until(probe.at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            // Any transition wakes us (notify_one keeps the wake-up if we are not waiting yet).
            _ = wake.notified() => continue,
            _ = deadline => {
                if let (Some(inner), Some(probe)) = (breaker.upgrade(), probe) {
                    inner.probe_due(probe.generation);
                }
            }
        }
    }
}
