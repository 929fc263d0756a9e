//! The `Origin` check on WebSocket upgrades (`/v1/ws`, `/ws`, `/events`). A page on another
//! site can open a WebSocket to switchyard with the visitor's cookies or a token it embeds
//! (cross-site WebSocket hijacking); browsers always send `Origin` on an upgrade, so when
//! `SWITCHYARD_ALLOWED_ORIGINS` is set, an upgrade whose `Origin` it does not list is refused
//! with 403. A request without `Origin` is not from a browser page (the CLI, a producer, a
//! test) and is let through. Unset, any origin is allowed: the legacy dashboard page is
//! served from its own web server, another origin.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::ORIGIN;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::metrics::Metrics;
use crate::metrics::connections::CutReason;

/// The origins allowed to open WebSockets; `None` allows any.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy(Option<Arc<[String]>>);

impl OriginPolicy {
    pub fn new(allowed: Option<&[String]>) -> Self {
        Self(allowed.map(|origins| {
            origins
                .iter()
                .map(|o| normalize(o))
                .filter(|o| !o.is_empty())
                .collect()
        }))
    }

    /// Whether an upgrade presenting `origin` (None: no header) may proceed.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match (&self.0, origin) {
            (None, _) | (_, None) => true,
            (Some(allowed), Some(origin)) => {
                let origin = normalize(origin);
                allowed.contains(&origin)
            }
        }
    }
}

/// Origins compare without case and without a trailing slash (`https://A.example/` is
/// `https://a.example`).
fn normalize(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl FromRef<AppState> for OriginPolicy {
    fn from_ref(state: &AppState) -> Self {
        // Built per upgrade (a handful of strings) rather than kept in the state.
        Self::new(state.config.allowed_origins.as_deref())
    }
}

/// Extractor: the upgrade's `Origin` is allowed; 403 problem+json otherwise.
pub struct AllowedOrigin;

impl<St> FromRequestParts<St> for AllowedOrigin
where
    OriginPolicy: FromRef<St>,
    Metrics: FromRef<St>,
    St: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let origin = parts
            .headers
            .get(ORIGIN)
            .map(|v| v.to_str().unwrap_or("<not text>"));
        if OriginPolicy::from_ref(state).allows(origin) {
            return Ok(Self);
        }
        let origin = origin.unwrap_or_default().to_string();
        Metrics::from_ref(state)
            .connections()
            .stream_refused(CutReason::Origin);
        tracing::warn!(
            origin,
            "refused a WebSocket upgrade from an origin not allowed"
        );
        Err(ApiError::OriginNotAllowed(format!(
            "origin `{origin}` may not open WebSockets here (SWITCHYARD_ALLOWED_ORIGINS)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::OriginPolicy;

    #[test]
    fn unset_allows_every_origin() {
        assert!(OriginPolicy::new(None).allows(Some("https://evil.example")));
    }

    #[test]
    fn set_allows_listed_origins_and_requests_without_one() {
        let listed = [
            "https://Dash.example/".to_string(),
            "http://localhost:3000".into(),
        ];
        let policy = OriginPolicy::new(Some(&listed));
        assert!(policy.allows(Some("https://dash.example")));
        assert!(policy.allows(Some("http://localhost:3000")));
        assert!(policy.allows(None));
        assert!(!policy.allows(Some("https://evil.example")));
        assert!(!policy.allows(Some("null")));
        assert!(!policy.allows(Some("http://localhost:3001")));
    }
}
