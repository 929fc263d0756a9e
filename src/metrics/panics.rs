//! Panics switchyard caught and survived, by where they happened: a request handler (answered
//! with a 500 problem), a socket task (its connection closed) or a background job. Each one
//! is also logged at error with its message where it is caught.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Where a panic was caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicSite {
    /// An HTTP handler (caught by the request layer, `api::middleware`).
    Http,
    /// A WebSocket or SSE session task.
    Socket,
    /// A background job (the rollout driver's step, ...).
    Background,
}

impl PanicSite {
    pub const ALL: [PanicSite; 3] = [PanicSite::Http, PanicSite::Socket, PanicSite::Background];

    pub fn as_str(self) -> &'static str {
        match self {
            PanicSite::Http => "http",
            PanicSite::Socket => "socket",
            PanicSite::Background => "background",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SiteLabels {
    site: &'static str,
}

/// The `switchyard_panics_total` counter. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct PanicMetrics {
    panics: Family<SiteLabels, Counter>,
}

impl PanicMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "switchyard_panics",
            "Panics caught and survived, by site: http (answered 500), socket (connection closed), background (the job went on)",
            super::listed::Listed(metrics.panics.clone()),
        );
        // Zero rather than absent, so an alert on an increase has a series to watch.
        for site in PanicSite::ALL {
            drop(metrics.panics.get_or_create(&SiteLabels {
                site: site.as_str(),
            }));
        }
        metrics
    }

    /// Counts one caught panic.
    pub fn count(&self, site: PanicSite) {
        self.panics
            .get_or_create(&SiteLabels {
                site: site.as_str(),
            })
            .inc();
    }

    /// Panics counted at `site` so far.
    pub fn get(&self, site: PanicSite) -> u64 {
        self.panics
            .get_or_create(&SiteLabels {
                site: site.as_str(),
            })
            .get()
    }
}

/// The message a panic payload carries, for the log line (never for a client).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Runs a socket session (or any task whose panic must not go unseen): a panic ends only
/// that task, is counted at `site` and logged at error with `what` and its message. Without
/// this, a panicking spawned task dies silently with its connection.
///
/// A plain function returning the wrapped future, not an `async fn`: an `async fn` keeps its
/// `task` argument beside the future it awaits (rust-lang/rust#62958), which doubled the size
/// of every idle `/v1/ws` task.
pub fn survive(
    panics: PanicMetrics,
    site: PanicSite,
    what: &'static str,
    task: impl std::future::Future<Output = ()>,
) -> impl std::future::Future<Output = ()> {
    use futures_util::FutureExt;
    std::panic::AssertUnwindSafe(task)
        .catch_unwind()
        .map(move |result| {
            if let Err(payload) = result {
                panics.count(site);
                tracing::error!(task = what, panic = %panic_message(payload.as_ref()), "{what} panicked; its connection is closed and the service goes on");
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_counted_and_contained() {
        let panics = PanicMetrics::default();
        survive(panics.clone(), PanicSite::Socket, "a test session", async {
            panic!("boom");
        })
        .await;
        survive(panics.clone(), PanicSite::Socket, "a calm session", async {
        })
        .await;
        assert_eq!(panics.get(PanicSite::Socket), 1);
        assert_eq!(panics.get(PanicSite::Http), 0);
    }
}
