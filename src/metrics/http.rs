//! HTTP requests by route and status, with a latency histogram: a middleware layer that
//! counts every response (shed 503s and timeouts included, being outside those layers).
//!
//! `route` is the matched route template (`/v1/flags/{key}`), never the raw path, so a client
//! cannot create series by inventing URLs; a request no route matched is `unmatched`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::Metrics;

/// The `route` of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Upper bounds in seconds: Prometheus's usual web buckets.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: HistogramFamily,
    store_deadline: Counter,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

impl HttpMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "switchyard_http_requests",
            "HTTP responses, by method, route template and status",
            super::listed::Listed(requests.clone()),
        );
        let duration: HistogramFamily = Family::new_with_constructor(histogram);
        registry.register(
            "switchyard_http_request_duration_seconds",
            "Time to the response head (a stream's lifetime is not included), by method and route template",
            super::listed::Listed(duration.clone()),
        );
        let store_deadline = Counter::default();
        registry.register(
            "switchyard_store_deadline_refusals",
            "Requests answered 503 because the control store did not answer within SWITCHYARD_STORE_TIMEOUT_MS (the deadline passed, or no connection in time)",
            store_deadline.clone(),
        );
        Self {
            requests,
            duration,
            store_deadline,
        }
    }

    /// Counts one request answered 503 by the store deadline (`api::store_deadline`).
    pub fn count_store_deadline(&self) {
        self.store_deadline.inc();
    }

    /// Requests answered 503 by the store deadline since start.
    pub fn store_deadline_refusals(&self) -> u64 {
        self.store_deadline.get()
    }

    fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let (method, route) = (method.to_string(), route.to_string());
        self.duration
            .get_or_create(&RouteLabels {
                method: method.clone(),
                route: route.clone(),
            })
            .observe(seconds);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
    }
}

/// The middleware: wrap with `axum::middleware::from_fn_with_state(metrics, track)`.
pub async fn track(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_string();
    // Standard methods only, for the same reason as `route`.
    let method: &'static str = match request.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let response = next.run(request).await;
    metrics.http().record(
        method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
