//! The HTTP surface: the router with every route registered through utoipa's
//! `OpenApiRouter` (so none goes undocumented), and the middleware stack. The state, and the
//! narrow parts of it each handler takes, are in `state`.

pub mod auth;
pub mod breakers;
pub mod consistency;
pub mod dashboard;
pub mod error;
pub mod evaluate;
pub mod events;
pub mod extract;
pub mod flag_stream;
pub mod flags;
pub mod health;
pub mod legacy;
pub mod legacy_flags;
pub mod middleware;
pub mod ofrep;
pub mod origin;
pub mod problems;
pub mod prometheus;
pub mod realtime;
pub mod rollouts;
pub mod schedules;
pub mod state;
pub mod status_stream;
pub mod store_deadline;
pub mod strategy;
pub mod stream;
pub mod stream_guard;
pub mod stream_limit;
pub mod subscribe;
pub mod websocket;

use axum::Router;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "switchyard", description = "Feature-flag and circuit-breaker control plane for live monitoring events.\n\nErrors are RFC 9457 `application/problem+json` documents naming each bad field. No string a client sends may contain the NUL character (U+0000): Postgres cannot store it, so such a request is refused with 400 (404 for a path parameter)."),
    modifiers(&SecuritySchemes),
    tags(
        (name = "events", description = "Publishing events"),
        (name = "subscribe", description = "Receiving events: WebSocket and SSE"),
        (name = "health", description = "Liveness, readiness, status"),
        (name = "legacy", description = "The legacy monitoring server's surface"),
        (name = "flags", description = "Feature flags: admin API, history, change stream"),
        (name = "evaluation", description = "Flag evaluation: switchyard's API and OFREP"),
        (name = "breakers", description = "Circuit breakers: status, history, stream, forced states"),
        (name = "realtime", description = "The Realtime path: target, queue, backlog, batching"),
        (name = "validation", description = "The consistency validator: the two paths compared"),
        (name = "metrics", description = "Prometheus metrics"),
        (name = "dashboard", description = "The live dashboard page and its built-in files"),
        (name = "rollouts", description = "Guarded rollout plans and scheduled flag changes"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// Every route with its OpenAPI description.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(events::publish))
        .routes(routes!(subscribe::v1_ws))
        .routes(routes!(stream::v1_stream))
        .routes(routes!(legacy::dashboard_ws))
        .routes(routes!(legacy::ingest_ws))
        .routes(routes!(legacy::status))
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(flags::list_flags, flags::create_flag))
        .routes(routes!(
            flags::get_flag,
            flags::replace_flag,
            flags::archive_flag
        ))
        .routes(routes!(flags::flip_on))
        .routes(routes!(flags::flip_off))
        .routes(routes!(flags::set_rollout))
        .routes(routes!(flags::set_rules))
        .routes(routes!(flags::flag_history))
        .routes(routes!(flags::restore_flag))
        .routes(routes!(flag_stream::flag_stream))
        .routes(routes!(strategy::strategy))
        .routes(routes!(realtime::metrics_adapter))
        .routes(routes!(realtime::metrics_validation))
        .routes(routes!(realtime::metrics_flush))
        .routes(routes!(evaluate::evaluate))
        .routes(routes!(ofrep::ofrep_one))
        .routes(routes!(ofrep::ofrep_bulk))
        .routes(routes!(legacy_flags::flags_status))
        .routes(routes!(legacy_flags::flags_health))
        .routes(routes!(breakers::list_breakers))
        .routes(routes!(breakers::breaker_stream))
        .routes(routes!(breakers::get_breaker, breakers::control_breaker))
        .routes(routes!(breakers::breaker_transitions))
        .routes(routes!(breakers::breaker_actions))
        .routes(routes!(realtime::realtime_status))
        .routes(routes!(consistency::validation_summary))
        .routes(routes!(consistency::validation_reports))
        .routes(routes!(prometheus::metrics))
        .routes(routes!(status_stream::status_stream))
        .routes(routes!(dashboard::page))
        .routes(routes!(dashboard::asset))
        .routes(routes!(rollouts::list_rollouts, rollouts::create_rollout))
        .routes(routes!(rollouts::get_rollout))
        .routes(routes!(rollouts::pause_rollout))
        .routes(routes!(rollouts::resume_rollout))
        .routes(routes!(rollouts::abort_rollout))
        .routes(routes!(
            schedules::list_schedules,
            schedules::create_schedule
        ))
        .routes(routes!(schedules::cancel_schedule))
}

/// The OpenAPI document the code describes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    split().1
}

/// The routes and their document, completed with what the middleware answers on every route
/// (a `Modify` on `ApiDoc` would run before the routes are added).
fn split() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut spec) = api_router().split_for_parts();
    utoipa::Modify::modify(&problems::MiddlewareAnswers, &mut spec);
    (routes, spec)
}

/// The document as committed in `openapi/openapi.json` (pretty JSON, trailing newline).
pub fn openapi_json() -> String {
    let mut json = openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    json.push('\n');
    json
}

/// The application's router: routes, fallback, middleware (the store deadline among it),
/// state. Used by `serve` and tests.
pub fn router(state: AppState) -> Router {
    let (routes, spec) = split();
    // The spec at /openapi.json and browsable docs at /docs, from assets built into the binary.
    let routes = routes
        .merge(SwaggerUi::new("/docs").url("/openapi.json", spec))
        .fallback(error::not_found);
    middleware::apply(routes, &state.config, &state.metrics).with_state(state)
}

#[cfg(test)]
mod tests {
    /// Fails when a route or schema changed without `switchyard openapi > openapi/openapi.json`.
    #[test]
    fn committed_openapi_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == super::openapi_json(),
            "openapi/openapi.json is out of date: run `cargo run -- openapi > openapi/openapi.json`"
        );
    }
}
