//! The one place the per-request middleware is applied: one layer, doing in this order
//! (outermost first):
//!
//! 1. **metrics**: every response counted by method, route template and status, with its time
//!    to the response head (shed 503s and timeouts included);
//! 2. **request id**: the caller's `x-request-id`, or a new UUID v4, echoed in the response;
//! 3. **trace**: one span per request (method, route, request_id; only the path, never the
//!    query string: it may carry `?token=`) and one `response` line (status, duration_ms);
//! 4. **load shedding**: past `SWITCHYARD_MAX_CONCURRENT_REQUESTS` requests in flight (one
//!    semaphore shared by every route), 503 + Retry-After at once rather than queue;
//! 5. **deadlines**: the request timeout (408, empty body), and for routes that may wait for
//!    the control store its deadline ([`super::store_deadline`], 503), with one timer for both;
//! 6. **panics**: a handler that panics answers 500 problem+json and is counted (innermost,
//!    so everything above sees, logs and counts the 500);
//! 7. **body limit**: `DefaultBodyLimit` for the body extractors.
//!
//! Hand-written rather than tower-http's layers stacked with `ServiceBuilder`: axum applies a
//! router's layers per route and clones each route's service per request, so every stacked
//! layer cost a clone, an allocation and a boxed future per request; here it is one of each.
//! Each route's metric series are resolved once and kept beside it (docs/flags-bench.md has
//! the profile this came from).

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use tokio::sync::Semaphore;
use tower::{Layer, Service};
use tracing::Instrument;

use super::error::{ApiError, StoreRefused};
use super::store_deadline;
use crate::config::Config;
use crate::ingest::MAX_BODY_BYTES;
use crate::metrics::http::{HttpMetrics, RouteSeries, UNMATCHED};
use crate::metrics::{Metrics, PanicMetrics, PanicSite, panics::panic_message};

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn apply<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    config: &Config,
    metrics: &Metrics,
) -> Router<S> {
    router.layer(RequestLayer::new(
        config,
        metrics.http().clone(),
        metrics.panics().clone(),
    ))
}

/// The layer of the module comment; per route, as axum applies every router layer (so the
/// matched route template is known).
#[derive(Clone)]
pub struct RequestLayer {
    shared: Arc<Shared>,
}

struct Shared {
    permits: Semaphore,
    request_timeout: Duration,
    store_timeout: Duration,
    http: HttpMetrics,
    panics: PanicMetrics,
}

impl RequestLayer {
    pub fn new(config: &Config, http: HttpMetrics, panics: PanicMetrics) -> Self {
        Self {
            shared: Arc::new(Shared {
                permits: Semaphore::new(config.max_concurrent_requests),
                request_timeout: config.request_timeout(),
                store_timeout: config.store_timeout(),
                http,
                panics,
            }),
        }
    }
}

impl<S> Layer<S> for RequestLayer {
    type Service = RequestService<<DefaultBodyLimit as Layer<S>>::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestService {
            inner: DefaultBodyLimit::max(MAX_BODY_BYTES).layer(inner),
            shared: self.shared.clone(),
            series: Arc::default(),
        }
    }
}

#[derive(Clone)]
pub struct RequestService<S> {
    inner: S,
    shared: Arc<Shared>,
    /// This route's series, resolved by its first request.
    series: Arc<OnceLock<RouteSeries>>,
}

impl<S> Service<Request> for RequestService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The service polled ready is the one called; a clone stays for the next request.
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        let (shared, series) = (self.shared.clone(), self.series.clone());
        Box::pin(async move { Ok(serve(ready, &shared, &series, request).await) })
    }
}

async fn serve<S>(
    inner: S,
    shared: &Shared,
    series: &OnceLock<RouteSeries>,
    mut request: Request,
) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let started = Instant::now();
    let method = method_label(request.method());
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let request_id = match request.headers().get(&X_REQUEST_ID) {
        Some(id) => id.clone(),
        None => {
            let id = new_request_id();
            request
                .headers_mut()
                .insert(X_REQUEST_ID.clone(), id.clone());
            id
        }
    };
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        route = matched.as_ref().map_or(request.uri().path(), MatchedPath::as_str),
        request_id = request_id.to_str().unwrap_or(""),
    );
    let mut response = async {
        let response = guarded(inner, shared, request).await;
        let latency = started.elapsed();
        tracing::info!(
            status = response.status().as_u16(),
            duration_ms = latency.as_secs_f64() * 1000.0,
            "response"
        );
        response
    }
    .instrument(span)
    .await;
    if !response.headers().contains_key(&X_REQUEST_ID) {
        response
            .headers_mut()
            .insert(X_REQUEST_ID.clone(), request_id);
    }
    let route = matched.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    let (status, seconds) = (response.status().as_u16(), started.elapsed().as_secs_f64());
    match series.get() {
        Some(known) if known.is(method, route) => shared.http.record(known, status, seconds),
        // A route's other methods (405) or the fallback: resolved per request.
        Some(_) => shared
            .http
            .record(&shared.http.series(method, route), status, seconds),
        None => {
            let resolved = series.get_or_init(|| shared.http.series(method, route));
            shared.http.record(resolved, status, seconds)
        }
    }
    response
}

/// Load shedding, the deadlines and the panic catcher around the handler.
async fn guarded<S>(mut inner: S, shared: &Shared, request: Request) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let Ok(_permit) = shared.permits.try_acquire() else {
        return overloaded();
    };
    // The store's deadline applies when it is the nearer one (a tie goes to the request
    // timeout, as it did with the two layers).
    let governed = !store_deadline::exempt(request.method(), request.uri().path());
    let store = shared.store_timeout < shared.request_timeout && governed;
    let limit = if store {
        shared.store_timeout
    } else {
        shared.request_timeout
    };
    let uri = store.then(|| request.uri().clone());
    let handled = AssertUnwindSafe(async move { inner.call(request).await }).catch_unwind();
    let response = match tokio::time::timeout(limit, handled).await {
        Ok(Ok(Ok(response))) => response,
        Ok(Ok(Err(never))) => match never {},
        Ok(Err(payload)) => panicked(&shared.panics, payload),
        Err(_) => match uri {
            Some(uri) => store_deadline::unavailable(uri.path(), limit),
            None => {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
                response
            }
        },
    };
    // Past the store's deadline, or a store error the handler answered: the same outage to
    // an operator (`store_deadline`), counted by its mark.
    if response.extensions().get::<StoreRefused>().is_some() {
        shared.http.count_store_deadline();
    }
    response
}

/// Standard methods only: a client must not create metric series by inventing methods.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A random (v4) UUID from the thread's generator: `Uuid::new_v4` asks the kernel
/// (`getrandom(2)`) for every one, a system call per request.
fn new_request_id() -> HeaderValue {
    let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_str(uuid.hyphenated().encode_lower(&mut text))
        .expect("a UUID is a valid header value")
}

/// A handler that panicked: 500 problem+json (no details: they are logged), counted.
fn panicked(panics: &PanicMetrics, payload: Box<dyn std::any::Any + Send>) -> Response {
    panics.count(PanicSite::Http);
    tracing::error!(panic = %panic_message(payload.as_ref()), "a request handler panicked; answered 500");
    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}

fn overloaded() -> Response {
    let mut response =
        ApiError::Unavailable("the server is at its concurrency limit; retry shortly".into())
            .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

#[cfg(test)]
#[path = "middleware_tests.rs"]
mod tests;
