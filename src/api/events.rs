//! `POST /v1/events`: publish one event or a batch.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Publisher;
use super::error::Problem;
use super::error::{ApiError, ApiJson};
use super::problems::{BadRequest, Forbidden, Unauthorized, UnsupportedMediaType};
use crate::ingest::{Ingest, Receipt};
use crate::metrics::Metrics;

/// One event as a producer sends it (the document's view of `crate::event::parse_event`).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    /// Classifies the event (REFERENCE.md section 1); not blank (the pattern: some character
    /// that is not white space as Rust's `char::is_whitespace` has it).
    #[schema(
        min_length = 1,
        max_length = 50,
        pattern = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub event_type: String,
    /// Who sent it (`monitoring_endpoint`, `websocket`, ...); not blank.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub source: String,
    /// The payload (default `{}`).
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
    /// Default `{}`.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// RFC 3339 (the legacy `YYYY-MM-DD HH:MM:SS TZ` form is accepted too); default: now.
    #[schema(format = DateTime)]
    pub timestamp: Option<String>,
    /// A client-chosen id: a retry with the same id is not broadcast twice. Default: a new one.
    #[schema(format = Uuid)]
    pub id: Option<String>,
    /// Accepted and ignored: switchyard classifies events itself.
    pub category: Option<serde_json::Value>,
    /// Accepted and ignored (the legacy sequence id).
    pub sequence_id: Option<serde_json::Value>,
}

/// The body of `POST /v1/events`: one event, or a non-empty array of them.
pub struct EventBody;

impl utoipa::PartialSchema for EventBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder};
        let event = utoipa::openapi::Ref::from_schema_name("EventInput");
        OneOfBuilder::new()
            .item(event.clone())
            .item(ArrayBuilder::new().items(event).min_items(Some(1)))
            .description(Some("One event, or a non-empty array of up to 1,000"))
            .into()
    }
}

impl ToSchema for EventBody {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            "EventInput".into(),
            <EventInput as utoipa::PartialSchema>::schema(),
        ));
        <EventInput as ToSchema>::schemas(schemas);
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublishResponse {
    pub accepted: usize,
    pub events: Vec<Receipt>,
}

/// Publish monitoring events.
///
/// Takes one event object or an array of up to 1,000 (1 MiB at most, each event at most
/// `SWITCHYARD_MAX_EVENT_BYTES`, 64 KiB by default). A request with any invalid event is
/// rejected whole and nothing of it is broadcast; a string or key holding the NUL character
/// (which Postgres cannot store) is invalid.
#[utoipa::path(
    post, path = "/v1/events", tag = "events",
    request_body(content = inline(EventBody), description = "An event object or an array of them", content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted and broadcast", body = PublishResponse),
        BadRequest, Unauthorized, Forbidden, UnsupportedMediaType,
        (status = 413, description = "Over 1,000 events, over 1 MiB, or an event over the maximum event size (the problem names its index)",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn publish(
    _access: Publisher,
    State(ingest): State<Ingest>,
    State(metrics): State<Metrics>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, ApiJson<PublishResponse>), ApiError> {
    require_json(&headers)?;
    let events = ingest.parse(&body?)?;
    let labels = metrics.ingest_labels(&events);
    let receipts = ingest.accept(events).await?;
    metrics.count_ingested(labels, &receipts);
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(PublishResponse {
            accepted: receipts.len(),
            events: receipts,
        }),
    ))
}

/// 415 unless the request says it is JSON (`application/json` or `application/*+json`).
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json")) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "expected `Content-Type: application/json`, got `{}`",
            if content_type.is_empty() {
                "nothing"
            } else {
                content_type
            }
        )))
    }
}
