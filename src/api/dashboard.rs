//! `GET /dashboard`: the live operator page, and the files it loads, compiled into the binary
//! from `assets/dashboard/` so the page works with no network beyond this server.
//!
//! The page is plain HTML, CSS and JavaScript with no build step; it reads everything through
//! the public API (the breaker, flag, event and status streams, `/v1/strategy`, the flag
//! writes), so it can do nothing an API client cannot. The Content-Security-Policy admits only
//! this origin: a script or stylesheet from anywhere else would be refused by the browser.

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::Path;
use super::problems::NotFound;
use super::state::DashboardAccess;

/// Scripts, styles and connections from this origin only; no inline script, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The files under `/dashboard/`, with their content types.
const ASSETS: [(&str, &str, &str); 7] = [
    (
        "errors.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard/errors.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard/api.js"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard/dashboard.js"),
    ),
    (
        "timeline.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard/timeline.js"),
    ),
    // uPlot 1.6.32, vendored from npm (MIT; assets/dashboard/vendor/README.md).
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard/vendor/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/dashboard/vendor/uPlot.min.css"),
    ),
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/dashboard/dashboard.css"),
    ),
];

const PAGE: &str = include_str!("../../assets/dashboard/index.html");

/// A built-in file with the headers every dashboard response carries. `no-cache` so a new
/// binary's page is never mixed with an old one's script.
fn built_in(content_type: &'static str, body: impl IntoResponse) -> Response {
    let headers: [(HeaderName, HeaderValue); 5] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        // The streams carry the key as `?token=`; no URL of this page leaves it in a Referer.
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    (headers, body).into_response()
}

/// The live dashboard page. No key is needed to load it; the page asks for one and keeps it in
/// the tab's session storage. With `SWITCHYARD_PUBLIC_READ=true` the page is marked so
/// (`<body data-public-read="true">`) and opens read-only without a key; a control that
/// changes something asks for an admin key when used.
#[utoipa::path(get, path = "/dashboard", tag = "dashboard",
    responses((status = 200, description = "The dashboard page", content_type = "text/html")))]
pub async fn page(State(access): State<DashboardAccess>) -> Response {
    if access.public_read {
        let marked = PAGE.replacen(
            "<body data-public-read=\"false\">",
            "<body data-public-read=\"true\">",
            1,
        );
        built_in("text/html; charset=utf-8", marked)
    } else {
        built_in("text/html; charset=utf-8", PAGE)
    }
}

/// A script or stylesheet of the dashboard page.
#[utoipa::path(get, path = "/dashboard/{file}", tag = "dashboard",
    params(("file" = String, Path, description = "errors.js, api.js, timeline.js, dashboard.js, dashboard.css, uPlot.iife.min.js or uPlot.min.css")),
    responses((status = 200, description = "The file", content_type = "text/javascript"),
        NotFound))]
pub async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .map(|(_, content_type, body)| built_in(content_type, *body))
        .ok_or_else(|| ApiError::NotFound(format!("no dashboard file `{file}`")))
}
