//! HTTP requests by route and status, with a latency histogram, counted by the request layer
//! (`api::middleware`) for every response (shed 503s and timeouts included).
//!
//! `route` is the matched route template (`/v1/flags/{key}`), never the raw path, so a client
//! cannot create series by inventing URLs; a request no route matched is `unmatched`.

use std::sync::{Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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

#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: HistogramFamily,
    store_deadline: Counter,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

impl HttpMetrics {
    pub fn register(registry: &mut Registry) -> Self {
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

    /// The series of one method and route, for [`HttpMetrics::record`]: looked up once and
    /// kept beside the route, so a request costs no label allocation or hashing.
    pub fn series(&self, method: &'static str, route: &str) -> RouteSeries {
        RouteSeries {
            method,
            route: route.into(),
            duration: self.duration.get_or_create_owned(&RouteLabels {
                method: method.to_string(),
                route: route.to_string(),
            }),
            requests: Mutex::new(Vec::new()),
        }
    }

    /// Counts one response and its time to the response head.
    pub fn record(&self, series: &RouteSeries, status: u16, seconds: f64) {
        series.duration.observe(seconds);
        let mut requests = series
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let index = match requests.iter().position(|(known, _)| *known == status) {
            Some(index) => index,
            None => {
                let counter = self.requests.get_or_create_owned(&RequestLabels {
                    method: series.method.to_string(),
                    route: series.route.to_string(),
                    status,
                });
                requests.push((status, counter));
                requests.len() - 1
            }
        };
        requests[index].1.inc();
    }
}

/// One method and route's series (see [`HttpMetrics::series`]); its counters by status are
/// added as statuses occur (a route answers a handful).
pub struct RouteSeries {
    method: &'static str,
    route: Box<str>,
    duration: Histogram,
    requests: Mutex<Vec<(u16, Counter)>>,
}

impl RouteSeries {
    /// True when these are the series of `method` and `route`.
    pub fn is(&self, method: &str, route: &str) -> bool {
        self.method == method && *self.route == *route
    }
}
