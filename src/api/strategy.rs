//! `GET /v1/strategy`: what the router does now — the global strategy, each category's
//! route, and which tier decided each (flag, env pin, default).

use axum::extract::State;

use super::auth::Reader;
use super::error::ApiJson;
use super::problems::{Forbidden, Unauthorized};
use crate::router::Router;
use crate::router::Strategy;

/// The active broadcast strategy.
#[utoipa::path(get, path = "/v1/strategy", tag = "flags",
    responses((status = 200, body = Strategy), Unauthorized, Forbidden),
    security(("bearer" = []), ("api_key" = []), ()))]
pub async fn strategy(_access: Reader, State(router): State<Router>) -> ApiJson<Strategy> {
    ApiJson((*router.current()).clone())
}
