//! The limits on event streams (issue 11): streams per key, liveness pings on the legacy
//! sockets, filter lists capped, and the `Origin` check on WebSocket upgrades. Real sockets.

use serde_json::{Value, json};
use switchyard::api::auth::Scope;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::connections::{counter, read_until_closed};
use crate::support::wait::{self, Look};
use crate::support::ws::{Ws, next_json, refused_status, send_json};
use crate::support::{Credential, TestApp, assert_problem, spawn_app_with};

/// A WebSocket upgrade on `path` with this key and, if given, an `Origin`.
async fn upgrade(
    app: &TestApp,
    path: &str,
    key: &str,
    origin: Option<&str>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("ws://{}{path}", app.address)
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert("authorization", format!("Bearer {key}").parse().unwrap());
    if let Some(origin) = origin {
        headers.insert("origin", origin.parse().unwrap());
    }
    let tcp = TcpStream::connect(app.address).await?;
    tokio_tungstenite::client_async(request, tcp)
        .await
        .map(|(ws, _)| ws)
}

#[tokio::test]
async fn streams_past_the_per_key_limit_are_refused_with_429_until_one_closes() {
    let app = spawn_app_with(|config| config.max_streams_per_key = 2).await;
    let reader = app.create_key(Scope::Read).await;
    let first = upgrade(&app, "/v1/ws", &reader.key, None)
        .await
        .expect("first stream");
    let _second = upgrade(&app, "/ws", &reader.key, None)
        .await
        .expect("second stream");

    let refused = upgrade(&app, "/v1/ws", &reader.key, None).await;
    match &refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.headers()["retry-after"], "1");
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["status"], 429, "{body}");
        }
        _ => panic!("expected 429"),
    }
    assert_eq!(refused_status(refused), 429);
    let sse = app
        .open_stream("", Credential::Bearer(&reader.key), None)
        .await;
    assert_problem(sse, 429).await;
    // Another key is not affected.
    upgrade(&app, "/v1/ws", &app.admin_key, None)
        .await
        .expect("the admin key's stream");
    assert_eq!(
        counter(
            &app,
            "switchyard_streams_refused_total",
            &[("reason", "streams_per_key")]
        )
        .await,
        2.0
    );

    drop(first);
    wait::until(
        "the closed stream's slot to free up",
        async || match upgrade(&app, "/v1/ws", &reader.key, None).await {
            Ok(ws) => Look::Ready(ws),
            Err(e) => Look::NotYet(e.to_string()),
        },
    )
    .await;
}

/// Reads raw bytes from a WebSocket's socket (so no pong is ever sent back) until the server
/// closes it; returns them.
async fn read_raw_without_answering(mut ws: Ws) -> Vec<u8> {
    read_until_closed(ws.get_mut()).await
}

/// A server close frame carrying 4002 and "no answer to pings" (unmasked, 20-byte payload).
const CLOSE_UNRESPONSIVE: [u8; 4] = [0x88, 20, 0x0F, 0xA2];
/// An empty server ping.
const PING: [u8; 2] = [0x89, 0x00];

fn holds(bytes: &[u8], needle: &[u8]) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn legacy_sockets_are_pinged_and_a_client_that_never_answers_is_closed_with_4002() {
    let app = spawn_app_with(|config| config.ws_ping_interval_s = 1).await;
    let dashboard = upgrade(&app, "/ws", &app.admin_key, None).await.unwrap();
    let producer = upgrade(&app, "/events", &app.admin_key, None)
        .await
        .unwrap();

    let (dashboard, producer) = tokio::join!(
        read_raw_without_answering(dashboard),
        read_raw_without_answering(producer)
    );

    for (name, bytes) in [("/ws", &dashboard), ("/events", &producer)] {
        assert!(holds(bytes, &PING), "{name} sent no ping");
        assert!(
            holds(bytes, &CLOSE_UNRESPONSIVE),
            "{name} did not close with 4002"
        );
    }
    for protocol in ["legacy_ws", "ingest_ws"] {
        let labels = [("protocol", protocol), ("reason", "unresponsive")];
        assert_eq!(
            counter(&app, "switchyard_streams_closed_total", &labels).await,
            1.0
        );
    }
}

#[tokio::test]
async fn a_filter_list_past_the_cap_is_refused_naming_the_list() {
    let app = spawn_app_with(|config| config.max_filter_values = 3).await;

    let response = app.open_stream("sources=a,b,c,d", app.admin(), None).await;
    let problem = assert_problem(response, 400).await;
    assert_eq!(problem["errors"][0]["field"], "sources", "{problem}");
    let (_, subscribed) = app.stream("sources=a,b,c").await;
    assert_eq!(subscribed["offset"], 0);

    let mut ws = app.connect_ws("/v1/ws", app.admin()).await.unwrap();
    send_json(
        &mut ws,
        &json!({"op": "subscribe", "filter": {"event_types": ["a", "b", "c", "d"]}}),
    )
    .await;
    let error = next_json(&mut ws).await;
    assert_eq!(error["op"], "error", "{error}");
    assert_eq!(error["code"], "bad_filter", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("event_types"),
        "{error}"
    );
    send_json(
        &mut ws,
        &json!({"op": "subscribe", "filter": {"event_types": ["a", "b", "c"]}}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["op"], "subscribed");
}

#[tokio::test]
async fn with_allowed_origins_set_an_upgrade_from_another_origin_is_refused_with_403() {
    let app = spawn_app_with(|config| {
        config.allowed_origins = Some(vec!["https://dash.example".into()]);
    })
    .await;
    let key = app.admin_key.clone();
    for path in ["/v1/ws", "/ws", "/events"] {
        let refused = upgrade(&app, path, &key, Some("https://evil.example")).await;
        match &refused {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body: Value =
                    serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
                assert!(
                    body["detail"].as_str().unwrap().contains("evil.example"),
                    "{body}"
                );
            }
            _ => panic!("{path}: expected a refusal"),
        }
        assert_eq!(refused_status(refused), 403, "{path}");
        upgrade(&app, path, &key, Some("https://dash.example"))
            .await
            .expect("a listed origin");
        upgrade(&app, path, &key, None)
            .await
            .expect("no Origin: not a browser page");
    }
    assert_eq!(
        counter(
            &app,
            "switchyard_streams_refused_total",
            &[("reason", "origin")]
        )
        .await,
        3.0
    );
}

#[tokio::test]
async fn without_allowed_origins_any_origin_may_open_a_websocket() {
    let app = spawn_app_with(|_| {}).await;
    let key = app.admin_key.clone();
    for path in ["/v1/ws", "/ws", "/events"] {
        upgrade(&app, path, &key, Some("http://localhost:5500"))
            .await
            .expect(path);
    }
}
