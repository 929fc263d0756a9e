//! The error answers the OpenAPI document lists, one type per status, each an
//! `application/problem+json` [`Problem`]. A route names in its `#[utoipa::path(responses(...))]`
//! the ones it can answer with, so the document tells a client every status it may get and
//! in which shape (schemathesis checks it: `.ci/api-conformance`). The answers the middleware
//! can give on any route (408, and 503 when shedding load) are added to every operation by
//! [`MiddlewareAnswers`], so no route can forget them.

use utoipa::IntoResponses;
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, ResponseBuilder};

use super::error::Problem;

/// Malformed JSON, a bad query string, or invalid fields (each named in `errors`).
#[derive(IntoResponses)]
#[response(status = 400, content_type = "application/problem+json")]
pub struct BadRequest(pub Problem);

/// No API key, or one that matches no active key.
#[derive(IntoResponses)]
#[response(status = 401, content_type = "application/problem+json")]
pub struct Unauthorized(pub Problem);

/// The key lacks the scope the route needs.
#[derive(IntoResponses)]
#[response(status = 403, content_type = "application/problem+json")]
pub struct Forbidden(pub Problem);

/// No such resource.
#[derive(IntoResponses)]
#[response(status = 404, content_type = "application/problem+json")]
pub struct NotFound(pub Problem);

/// The request conflicts with the current state (a pinned or archived flag, a plan or
/// change no longer pending).
#[derive(IntoResponses)]
#[response(status = 409, content_type = "application/problem+json")]
pub struct Conflict(pub Problem);

/// `If-Match` names another version; nothing changed.
#[derive(IntoResponses)]
#[response(status = 412, content_type = "application/problem+json")]
pub struct PreconditionFailed(pub Problem);

/// The body is over the size limit (or a batch over the event limit).
#[derive(IntoResponses)]
#[response(status = 413, content_type = "application/problem+json")]
pub struct PayloadTooLarge(pub Problem);

/// The body is not `application/json`.
#[derive(IntoResponses)]
#[response(status = 415, content_type = "application/problem+json")]
pub struct UnsupportedMediaType(pub Problem);

/// Well-formed and schema-valid but not applicable as it stands (a time not in the
/// future, a body whose key is not the path's, JSON of the wrong type for a field).
#[derive(IntoResponses)]
#[response(status = 422, content_type = "application/problem+json")]
pub struct Unprocessable(pub Problem);

/// Too many at once for this key (streams); retry after `Retry-After` seconds.
#[derive(IntoResponses)]
#[response(status = 429, content_type = "application/problem+json",
    headers(("Retry-After" = u32, description = "Seconds to wait before retrying")))]
pub struct TooManyRequests(pub Problem);

/// Every operation's middleware answers, added by [`MiddlewareAnswers`] where a route does not
/// list them itself.
fn middleware_answers() -> [(&'static str, utoipa::openapi::Response); 2] {
    let problem = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build()
    };
    let retry_after = HeaderBuilder::new()
        .schema(Some(<u32 as utoipa::PartialSchema>::schema()))
        .description(Some("Seconds to wait before retrying"))
        .build();
    [
        (
            "408",
            ResponseBuilder::new()
                .description("The request took longer than the request timeout (`SWITCHYARD_REQUEST_TIMEOUT_MS`)")
                .build(),
        ),
        (
            "503",
            ResponseBuilder::new()
                .description(
                    "The server is at its concurrency limit, shutting down, or cannot reach the \
                     control store this request needs (a key lookup, a write); retry after `Retry-After`",
                )
                .content("application/problem+json", problem())
                .header("Retry-After", retry_after)
                .build(),
        ),
    ]
}

/// Adds the middleware's answers to every operation that does not document them already.
pub struct MiddlewareAnswers;

impl utoipa::Modify for MiddlewareAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                for (status, response) in middleware_answers() {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| response.into());
                }
            }
        }
    }
}

fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// A WebSocket route called without a valid handshake (axum answers in plain text).
#[derive(IntoResponses)]
pub enum NotAWebSocket {
    /// A handshake header is missing or wrong.
    #[response(status = 400, content_type = "text/plain")]
    BadHandshake(String),
    /// The connection cannot be upgraded (not an `Upgrade: websocket` request).
    #[response(status = 426, content_type = "text/plain")]
    UpgradeRequired(String),
}
