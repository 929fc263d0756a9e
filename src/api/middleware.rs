//! The one place the tower middleware is applied, outermost first.

use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use super::error::ApiError;
use crate::config::Config;
use crate::ingest::MAX_BODY_BYTES;
use crate::metrics::{Metrics, PanicMetrics, PanicSite, panics::panic_message};

pub fn apply<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    config: &Config,
    metrics: &Metrics,
) -> Router<S> {
    let stack = ServiceBuilder::new()
        // Every request gets an id (or keeps the caller's), echoed in the response.
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        // One span per request and one line per response. Only the path is recorded, never
        // the query string: it may carry `?token=`.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let route = request
                        .extensions()
                        .get::<MatchedPath>()
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_else(|| request.uri().path().to_string());
                    let request_id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    tracing::info_span!("request", method = %request.method(), route, request_id)
                })
                .on_request(())
                .on_response(|response: &Response<_>, latency: Duration, _span: &Span| {
                    tracing::info!(
                        status = response.status().as_u16(),
                        duration_ms = latency.as_secs_f64() * 1000.0,
                        "response"
                    );
                })
                .on_failure(()),
        )
        // Past the concurrency limit (one semaphore shared by every route), shed at once with 503 + Retry-After rather than queue.
        .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
            overloaded()
        }))
        .layer(LoadShedLayer::new())
        .layer(GlobalConcurrencyLimitLayer::new(
            config.max_concurrent_requests,
        ))
        // Bounds the time to a response (not a stream's lifetime: SSE and WebSocket responses
        // are returned at once).
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout(),
        ))
        // Innermost, so the layers above see (trace, count) the 500 it answers with.
        .layer(catch_panics(metrics.panics().clone()));
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(stack)
        // Outermost, so shed 503s and timeouts are counted too; per route (as every layer
        // here), so the matched route template is known.
        .layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            crate::metrics::http::track,
        ))
}

/// A handler that panics answers 500 problem+json (no details: they are logged) and is
/// counted, instead of dropping the connection without an answer.
pub fn catch_panics(
    panics: PanicMetrics,
) -> CatchPanicLayer<
    impl Fn(Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response + Clone,
> {
    CatchPanicLayer::custom(move |payload: Box<dyn std::any::Any + Send + 'static>| {
        panics.count(PanicSite::Http);
        tracing::error!(panic = %panic_message(payload.as_ref()), "a request handler panicked; answered 500");
        ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
    })
}

fn overloaded() -> axum::response::Response {
    let mut response =
        ApiError::Unavailable("the server is at its concurrency limit; retry shortly".into())
            .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_problem_json_and_is_counted() {
        let panics = PanicMetrics::default();
        let app: Router = Router::new()
            .route(
                "/boom",
                get(|| async {
                    if true {
                        panic!("secret detail");
                    }
                    "unreachable"
                }),
            )
            .layer(catch_panics(panics.clone()));
        let response = app
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["status"], 500);
        assert!(!String::from_utf8_lossy(&body).contains("secret detail"));
        assert_eq!(panics.get(PanicSite::Http), 1);
    }
}
