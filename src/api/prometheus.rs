//! `GET /metrics`: this instance's Prometheus metrics in the text exposition format. Open by
//! default; with `SWITCHYARD_METRICS_AUTH=true` it needs a `read` key like any read route.

use axum::extract::State;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::auth::{Scope, presented_key};
use super::error::{ApiError, Problem};
use super::state::ScrapeState;
use crate::metrics::CONTENT_TYPE;

/// Prometheus metrics.
///
/// Every name starts with `switchyard_`; the README lists each metric with its labels.
#[utoipa::path(
    get, path = "/metrics", tag = "metrics",
    responses(
        (status = 200, description = "The Prometheus text exposition format (0.0.4)", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 401, description = "No valid key (only with SWITCHYARD_METRICS_AUTH=true)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the read scope (only with SWITCHYARD_METRICS_AUTH=true)", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = []), ("api_key" = []))
)]
pub async fn metrics(State(state): State<ScrapeState>, parts: Parts) -> Result<Response, ApiError> {
    if state.config.metrics_auth {
        let key = presented_key(&parts);
        state.auth.authorize(key.as_deref(), Scope::Read).await?;
    }
    Ok((
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response())
}
