//! The request layer on a small router, without a server: each duty of the module comment.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::{get, post};
use prometheus_client::registry::Registry;
use tower::ServiceExt;

use super::*;

struct Layered {
    app: Router,
    registry: Registry,
    panics: PanicMetrics,
}

fn layered(configure: impl FnOnce(&mut Config)) -> Layered {
    let mut config = Config::for_database("postgres://unused");
    configure(&mut config);
    let mut registry = Registry::default();
    let http = HttpMetrics::register(&mut registry);
    let panics = PanicMetrics::default();
    let app = Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/slow",
            get(|| async { tokio::time::sleep(Duration::from_secs(60)).await }),
        )
        .route(
            "/v1/events",
            post(|| async { tokio::time::sleep(Duration::from_secs(60)).await }),
        )
        .route(
            "/store-down",
            get(|| async { ApiError::StoreUnavailable("the control store is unavailable".into()) }),
        )
        .route(
            "/nats-down",
            get(|| async { ApiError::Unavailable("NATS is unreachable".into()) }),
        )
        .route(
            "/boom",
            get(|| async {
                if true {
                    panic!("secret detail");
                }
                "unreachable"
            }),
        )
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(RequestLayer::new(&config, http, panics.clone()));
    Layered {
        app,
        registry,
        panics,
    }
}

impl Layered {
    async fn send(&self, request: Request<Body>) -> Response {
        self.app.clone().oneshot(request).await.unwrap()
    }

    fn exposition(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry).unwrap();
        out
    }
}

fn get_request(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

async fn problem(response: Response) -> serde_json::Value {
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn a_panicking_handler_answers_500_problem_json_and_is_counted() {
    let app = layered(|_| {});
    let response = app.send(get_request("/boom")).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let problem = problem(response).await;
    assert_eq!(problem["status"], 500);
    assert!(!problem.to_string().contains("secret detail"));
    assert_eq!(app.panics.get(PanicSite::Http), 1);
    assert!(
        app.exposition().contains(
            r#"switchyard_http_requests_total{method="GET",route="/boom",status="500"} 1"#
        ),
        "{}",
        app.exposition()
    );
}

#[tokio::test]
async fn a_request_gets_a_uuid_request_id_or_keeps_its_own() {
    let app = layered(|_| {});
    let response = app.send(get_request("/ok")).await;
    let id = response.headers()["x-request-id"].to_str().unwrap();
    let uuid = uuid::Uuid::parse_str(id).expect("a UUID");
    assert_eq!(uuid.get_version_num(), 4);
    let again = app.send(get_request("/ok")).await;
    assert_ne!(again.headers()["x-request-id"], id, "a new id per request");

    let own = Request::get("/ok")
        .header("x-request-id", "caller-chosen-7")
        .body(Body::empty())
        .unwrap();
    let response = app.send(own).await;
    assert_eq!(response.headers()["x-request-id"], "caller-chosen-7");
}

#[tokio::test]
async fn responses_are_counted_per_route_and_status_with_unmatched_for_the_rest() {
    let app = layered(|_| {});
    for _ in 0..3 {
        assert_eq!(app.send(get_request("/ok")).await.status(), StatusCode::OK);
    }
    let wrong_method = Request::post("/ok").body(Body::empty()).unwrap();
    assert_eq!(
        app.send(wrong_method).await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        app.send(get_request("/nowhere")).await.status(),
        StatusCode::NOT_FOUND
    );
    let text = app.exposition();
    for line in [
        r#"switchyard_http_requests_total{method="GET",route="/ok",status="200"} 3"#,
        r#"switchyard_http_request_duration_seconds_count{method="GET",route="/ok"} 3"#,
        r#"switchyard_http_requests_total{method="POST",route="/ok",status="405"} 1"#,
        r#"switchyard_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
}

#[tokio::test(start_paused = true)]
async fn past_the_request_timeout_the_answer_is_408_and_counted() {
    let app = layered(|config| config.request_timeout_ms = 1_000);
    let response = app.send(get_request("/slow")).await;
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(response.headers().contains_key("x-request-id"));
    assert!(
        app.exposition().contains(
            r#"switchyard_http_requests_total{method="GET",route="/slow",status="408"} 1"#
        )
    );
}

#[tokio::test(start_paused = true)]
async fn the_store_deadline_answers_503_before_the_request_timeout_except_for_publishing() {
    let app = layered(|config| {
        config.request_timeout_ms = 5_000;
        config.store_timeout_ms = 1_000;
    });
    let response = app.send(get_request("/slow")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        problem(response).await["detail"]
            .as_str()
            .unwrap()
            .contains("control store")
    );

    let publish = Request::post("/v1/events").body(Body::empty()).unwrap();
    let response = app.send(publish).await;
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
}

/// What `switchyard_store_deadline_refusals_total` says now.
fn store_refusals(app: &Layered) -> u64 {
    let exposition = app.exposition();
    let line = exposition
        .lines()
        .find(|l| l.starts_with("switchyard_store_deadline_refusals_total "))
        .unwrap_or_else(|| panic!("no store refusal counter:\n{exposition}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn only_503s_for_the_control_store_count_as_store_refusals() {
    let app = layered(|config| {
        config.request_timeout_ms = 5_000;
        config.store_timeout_ms = 1_000;
        config.max_concurrent_requests = 1;
    });
    assert_eq!(store_refusals(&app), 0);

    // The store's deadline passed, and a store error the handler answered: one count each.
    let response = app.send(get_request("/slow")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let response = app.send(get_request("/store-down")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    assert_eq!(
        problem(response).await["type"],
        "https://switchyard.dev/problems/unavailable"
    );
    assert_eq!(store_refusals(&app), 2);

    // 503s of other causes, the same answer to the client: not the store's.
    let response = app.send(get_request("/nats-down")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        problem(response).await["type"],
        "https://switchyard.dev/problems/unavailable"
    );
    let held = tokio::spawn(app.app.clone().oneshot(get_request("/slow")));
    tokio::task::yield_now().await;
    let shed = app.send(get_request("/ok")).await;
    assert_eq!(
        shed.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "shed at the concurrency limit"
    );
    held.abort();
    let _ = held.await;
    assert_eq!(store_refusals(&app), 2);
}

#[tokio::test(start_paused = true)]
async fn past_the_concurrency_limit_requests_are_shed_with_503_and_retry_after() {
    let app = layered(|config| config.max_concurrent_requests = 1);
    let held = tokio::spawn(app.app.clone().oneshot(get_request("/slow")));
    tokio::task::yield_now().await;
    let response = app.send(get_request("/ok")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    assert!(
        problem(response).await["detail"]
            .as_str()
            .unwrap()
            .contains("concurrency limit")
    );
    held.abort();
    let _ = held.await;
    assert_eq!(app.send(get_request("/ok")).await.status(), StatusCode::OK);
}
