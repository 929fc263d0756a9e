//! A deadline on every request that may wait for the control store (`SWITCHYARD_STORE_TIMEOUT_MS`):
//! past it the request is answered 503 problem+json with `Retry-After`, and whatever it was
//! waiting for is dropped (a pooled connection dropped mid-statement is closed, never reused).
//!
//! The pool's acquire timeout covers connecting and pinging an idle connection; this covers
//! the rest, a connection already open that stops answering (a blackholed network: no reset,
//! no error, the statement just never returns). It bounds the time to the response's head,
//! so streams (SSE, WebSocket upgrades) are bounded in their opening only. Publishing is left
//! out: it never touches the control store except through a key lookup, which has its own
//! bound (`auth`), and a large body on a slow link must not read as a store outage.
//!
//! Each refusal is counted (`switchyard_store_deadline_refusals_total`, and
//! `store_deadline_refusals` on `/health/ready`) and logged at warn with its route; so is a
//! 503 answered for a store error within the deadline (no pooled connection in time, a failed
//! connection, a key that could not be looked up), on any route: to an operator it is the
//! same outage. Such answers carry `error::StoreRefused`, and the request layer counts that
//! mark, not the status: a 503 of another cause (the concurrency limit, NATS away, readiness)
//! is not the store's.

use std::time::Duration;

use axum::http::Method;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// Routes whose time is not the control store's.
pub fn exempt(method: &Method, path: &str) -> bool {
    (method == Method::POST && path == "/v1/events") || path == "/events"
}

/// The answer to a request past the deadline (applied by `super::middleware`, with the
/// request timeout, on one timer).
pub fn unavailable(path: &str, limit: Duration) -> Response {
    tracing::warn!(
        route = path,
        store_timeout_ms = limit.as_millis() as u64,
        "control store did not answer in time: 503"
    );
    ApiError::StoreUnavailable(format!(
        "the control store is unavailable (no answer within {} ms); try again shortly",
        limit.as_millis()
    ))
    .into_response()
}
