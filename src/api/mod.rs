//! The HTTP surface: state, the router with every route registered through utoipa's
//! `OpenApiRouter` (so none goes undocumented), and the middleware stack.

pub mod auth;
pub mod error;
pub mod events;
pub mod health;
pub mod legacy;
pub mod middleware;
pub mod stream;
pub mod subscribe;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Config;
use crate::hub::Hub;
use crate::ingest::Ingest;
use auth::Authenticator;

/// Everything a handler may need; handlers take the narrow part they use through `FromRef`.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub pool: PgPool,
    pub hub: Hub,
    pub ingest: Ingest,
    pub auth: Authenticator,
    /// Cancelled when the server begins to shut down: streams close, sockets say goodbye.
    pub shutdown: CancellationToken,
    /// Long-lived connection tasks (WebSockets), awaited at shutdown.
    pub connections: TaskTracker,
}

impl FromRef<AppState> for Authenticator {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

impl FromRef<AppState> for Hub {
    fn from_ref(state: &AppState) -> Self {
        state.hub.clone()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "switchyard", description = "Feature-flag and circuit-breaker control plane for live monitoring events"),
    modifiers(&SecuritySchemes),
    tags(
        (name = "events", description = "Publishing events"),
        (name = "subscribe", description = "Receiving events: WebSocket and SSE"),
        (name = "health", description = "Liveness, readiness, status"),
        (name = "legacy", description = "The legacy monitoring server's surface"),
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
}

/// The OpenAPI document the code describes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

/// The application's router: routes, fallback, middleware, state. Used by `serve` and tests.
pub fn router(state: AppState) -> Router {
    let (routes, spec) = api_router().split_for_parts();
    let spec = Arc::new(spec);
    let routes = routes
        .route(
            "/openapi.json",
            axum::routing::get(move || async move { axum::Json((*spec).clone()) }),
        )
        .fallback(error::not_found);
    middleware::apply(routes, &state.config).with_state(state)
}
