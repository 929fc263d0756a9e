//! The one error type of the HTTP API, rendered as RFC 9457 `application/problem+json`.
//!
//! Each variant documents its status. Details of 5xx errors are logged here, where they are
//! handled, and never returned to the client. The domain's own errors (flag writes, rollouts,
//! ingest, bad documents) become HTTP here and only here, through the `From` impls at the end.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::event::FieldError;
use crate::flags::InvalidFields;
use crate::flagstore::WriteError;
use crate::ingest::IngestError;
use crate::rollout::RolloutError;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank` style slugs under switchyard's docs).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Each bad field, with the index of the event it belongs to in a batch.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is understood but some fields are wrong.
    #[error("{} invalid field(s)", .0.len())]
    Validation(Vec<FieldError>),
    /// 400: the body is not what the route takes (malformed JSON, wrong shape).
    #[error("{0}")]
    BadRequest(String),
    /// 401: no credentials, or credentials that match no key.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403: a valid key without the scope this route needs.
    #[error("this route needs a key with the `{0}` scope")]
    Forbidden(&'static str),
    /// 403: a WebSocket upgrade from an origin `SWITCHYARD_ALLOWED_ORIGINS` does not list.
    #[error("{0}")]
    OriginNotAllowed(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409: the request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 412: `If-Match` did not match.
    #[error("{0}")]
    PreconditionFailed(String),
    /// 413.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 413: events over the maximum event size, each named by its index.
    #[error("{} event(s) larger than the maximum event size", .0.len())]
    EventsTooLarge(Vec<FieldError>),
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed but semantically invalid.
    #[error("{0}")]
    Unprocessable(String),
    /// 429, with `Retry-After`: a per-client limit (open streams per key) is reached.
    #[error("{0}")]
    TooManyRequests(String),
    /// 503: the server cannot take the request now (at its concurrency limit, NATS away).
    #[error("{0}")]
    Unavailable(String),
    /// 503: the control store did not answer (its deadline passed, no pooled connection in
    /// time, a failed connection, a key lookup that failed). The same answer as [`ApiError::Unavailable`]; the response
    /// carries [`StoreRefused`], which the request layer counts
    /// (`switchyard_store_deadline_refusals_total`).
    #[error("{0}")]
    StoreUnavailable(String),
    /// 500: logged with its cause, returned without it.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::OriginNotAllowed(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge(_) | ApiError::EventsTooLarge(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::StoreUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation",
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::OriginNotAllowed(_) => "origin-not-allowed",
            ApiError::NotFound(_) => "not-found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PreconditionFailed(_) => "precondition-failed",
            ApiError::PayloadTooLarge(_) | ApiError::EventsTooLarge(_) => "payload-too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::TooManyRequests(_) => "too-many-requests",
            ApiError::Unavailable(_) | ApiError::StoreUnavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status();
        let detail = match self {
            ApiError::Internal(_) => "an internal error occurred; it has been logged".to_string(),
            other => other.to_string(),
        };
        let errors = match self {
            ApiError::Validation(errors) | ApiError::EventsTooLarge(errors) => errors.clone(),
            _ => Vec::new(),
        };
        Problem {
            kind: format!("https://switchyard.dev/problems/{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail,
            errors,
        }
    }
}

/// Marks a response refused because the control store did not answer (see
/// [`ApiError::StoreUnavailable`]).
#[derive(Debug, Clone, Copy)]
pub struct StoreRefused;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let status = self.status();
        let store_refused = matches!(self, ApiError::StoreUnavailable(_));
        let mut response = (status, Json(self.problem())).into_response();
        if store_refused {
            response.extensions_mut().insert(StoreRefused);
        }
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(rejection.body_text()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ApiError::UnsupportedMediaType("expected `Content-Type: application/json`".into())
            }
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Unprocessable(rejection.body_text()),
            _ => ApiError::BadRequest(rejection.body_text()),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge("the body is larger than the 1 MiB limit".into())
            }
            _ => ApiError::BadRequest(rejection.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::warn!(error = %err, "control store unavailable");
                ApiError::StoreUnavailable(
                    "the control store is unavailable; try again shortly".into(),
                )
            }
            _ => ApiError::Internal(err.into()),
        }
    }
}

impl From<InvalidFields> for ApiError {
    fn from(InvalidFields(errors): InvalidFields) -> Self {
        ApiError::Validation(errors)
    }
}

impl From<IngestError> for ApiError {
    fn from(err: IngestError) -> Self {
        match err {
            IngestError::NotJson(_) => ApiError::BadRequest(err.to_string()),
            IngestError::TooManyEvents(_) => ApiError::PayloadTooLarge(err.to_string()),
            IngestError::Invalid(errors) => ApiError::Validation(errors),
            IngestError::StreamUnavailable(_) => ApiError::Unavailable(err.to_string()),
            IngestError::EventTooLarge(errors) => ApiError::EventsTooLarge(errors),
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(err: WriteError) -> Self {
        match err {
            WriteError::NotFound(detail) => ApiError::NotFound(detail),
            WriteError::Pinned(detail) | WriteError::Conflict(detail) => ApiError::Conflict(detail),
            WriteError::VersionMismatch(detail) => ApiError::PreconditionFailed(detail),
            WriteError::Invalid(errors) => ApiError::Validation(errors),
            WriteError::Store(err) => err.into(),
            WriteError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<RolloutError> for ApiError {
    fn from(err: RolloutError) -> Self {
        match err {
            RolloutError::NotFound(detail) => ApiError::NotFound(detail),
            RolloutError::Conflict(detail) => ApiError::Conflict(detail),
            RolloutError::Invalid(errors) => ApiError::Validation(errors),
            RolloutError::Unprocessable(detail) => ApiError::Unprocessable(detail),
            RolloutError::Write(err) => err.into(),
            RolloutError::Store(err) => err.into(),
            RolloutError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

/// The extractors whose rejections are these problem documents live in `extract`.
pub use super::extract::{ApiJson, ApiQuery};

/// Fallback for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(err: impl Into<ApiError>) -> u16 {
        err.into().status().as_u16()
    }

    #[test]
    fn domain_errors_keep_their_statuses_and_details() {
        assert_eq!(status(WriteError::NotFound("no flag `f`".into())), 404);
        assert_eq!(status(WriteError::Pinned("pinned".into())), 409);
        assert_eq!(status(WriteError::Conflict("archived".into())), 409);
        assert_eq!(status(WriteError::VersionMismatch("at 3".into())), 412);
        assert_eq!(status(WriteError::Invalid(Vec::new())), 400);
        assert_eq!(status(WriteError::Store(sqlx::Error::PoolTimedOut)), 503);
        assert_eq!(status(WriteError::Store(sqlx::Error::RowNotFound)), 500);
        assert_eq!(status(RolloutError::Unprocessable("past".into())), 422);
        assert_eq!(
            status(RolloutError::Write(WriteError::VersionMismatch(
                "at 3".into()
            ))),
            412
        );
        let too_many = ApiError::from(IngestError::TooManyEvents(1001));
        assert_eq!(too_many.status().as_u16(), 413);
        assert_eq!(
            too_many.problem().detail,
            "a request carries at most 1000 events (got 1001)"
        );
    }
}
