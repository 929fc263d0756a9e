//! Where transitions go once they happened: system frames to `/v1/ws` and `/v1/stream`
//! clients, and rows in the control store's history table.
//!
//! Both tasks read the breakers' broadcast channels, so neither can slow a breaker down: the
//! breaker never waits for them. The writer gives each row a deadline; a row that cannot be
//! written (the store is down or slow, or the writer fell behind the channel) is dropped,
//! counted in [`Registry::unrecorded_transitions`] and logged at warn. The breaker logs each
//! transition itself, at info, when it happens.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::SelectAll;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::CancellationToken;

use super::{Registry, Transition};
use crate::hub::{Hub, SystemFrame};

/// How long one history row may take to write before it is given up.
const WRITE_DEADLINE: Duration = Duration::from_secs(2);

/// The transitions of every registered breaker, merged.
pub fn merged_transitions(registry: &Registry) -> SelectAll<BroadcastStream<Transition>> {
    futures_util::stream::select_all(
        registry
            .all()
            .iter()
            .map(|breaker| BroadcastStream::new(breaker.subscribe())),
    )
}

/// Starts the announcer (system frames) and the history writer; they run until `shutdown`.
pub fn spawn(
    registry: &Registry,
    pool: PgPool,
    hub: Hub,
    shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut announced = merged_transitions(registry);
    let stop = shutdown.clone();
    let announcer = tokio::spawn(async move {
        while let Some(next) = until(&stop, announced.next()).await {
            // A lagged announcer has nothing to resend: clients re-read GET /v1/breakers.
            if let Ok(transition) = next {
                hub.publish_system(&SystemFrame::BreakerTransition(transition));
            }
        }
    });
    let mut written = merged_transitions(registry);
    let registry = registry.clone();
    let writer = tokio::spawn(async move {
        while let Some(next) = until(&shutdown, written.next()).await {
            match next {
                Ok(transition) => write(&pool, &registry, &transition).await,
                Err(BroadcastStreamRecvError::Lagged(missed)) => {
                    registry.count_unrecorded(missed);
                    tracing::warn!(
                        missed,
                        "breaker history fell behind: transitions not written"
                    );
                }
            }
        }
    });
    vec![announcer, writer]
}

async fn write(pool: &PgPool, registry: &Registry, transition: &Transition) {
    let outcome = tokio::time::timeout(
        WRITE_DEADLINE,
        crate::store::breakers::insert(pool, transition),
    )
    .await;
    let error = match outcome {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} s", WRITE_DEADLINE.as_secs()),
    };
    registry.count_unrecorded(1);
    tracing::warn!(
        breaker = %transition.breaker,
        from = transition.from.as_str(),
        to = transition.to.as_str(),
        error,
        "breaker transition not written to the control store"
    );
}

/// `next`, or `None` once `shutdown` is cancelled.
async fn until<T>(
    shutdown: &CancellationToken,
    next: impl std::future::Future<Output = Option<T>>,
) -> Option<T> {
    tokio::select! {
        _ = shutdown.cancelled() => None,
        next = next => next,
    }
}
