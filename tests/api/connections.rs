//! Clients that stall or never finish (issue 11): half a request header, more connections than
//! the cap, a WebSocket client that stops reading, too many streams on one key, a silent
//! legacy client, an oversized filter, and upgrades from an origin not allowed. Real sockets
//! throughout; the limits are set small so the tests are quick.

use futures_util::StreamExt;
use serde_json::{Value, json};
use switchyard::api::auth::Scope;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::wait::{self, Look};
use crate::support::ws::{Ws, next_event, next_json, refused_status, send_json};
use crate::support::{Credential, TestApp, WAIT, assert_problem, spawn_app_with};

/// Reads until the server closes the connection; fails after `WAIT`. Returns what it read.
async fn read_until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut read = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut buffer))
            .await
            .expect("the server did not close the connection in time");
        match n {
            Ok(0) | Err(_) => return read,
            Ok(n) => read.extend_from_slice(&buffer[..n]),
        }
    }
}

/// One counter from `/metrics`, 0 when absent.
async fn counter(app: &TestApp, name: &str, labels: &[(&str, &str)]) -> f64 {
    app.scrape().await.value(name, labels).unwrap_or(0.0)
}

async fn wait_for_counter(app: &TestApp, name: &str, labels: &[(&str, &str)], at_least: f64) {
    wait::until(&format!("{name} {labels:?} >= {at_least}"), async || {
        let value = counter(app, name, labels).await;
        Look::ready_if(value >= at_least, value)
    })
    .await;
}

#[tokio::test]
async fn a_client_that_sends_half_a_request_header_is_disconnected_after_the_timeout() {
    let app = spawn_app_with(|config| config.header_read_timeout_ms = 300).await;
    let mut half = TcpStream::connect(app.address).await.unwrap();
    half.write_all(b"GET /status HTTP/1.1\r\nHost: switchyard\r\n")
        .await
        .unwrap();

    let answer = read_until_closed(&mut half).await;

    let answer = String::from_utf8_lossy(&answer);
    assert!(
        !answer.contains(" 200 "),
        "half a request was answered: {answer}"
    );
    wait_for_counter(
        &app,
        "switchyard_connections_closed_total",
        &[("reason", "header_timeout")],
        1.0,
    )
    .await;
    // A whole request on a fresh connection is still served.
    let status = app.get("/status", Credential::Nothing).await.status();
    assert_eq!(status.as_u16(), 200);
}

/// Sends a whole request on `tcp` and reads its (small) answer, leaving the connection open.
async fn request_on(tcp: &mut TcpStream) -> String {
    tcp.write_all(b"GET /health/live HTTP/1.1\r\nHost: switchyard\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, tcp.read(&mut buffer))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buffer[..n]).into_owned()
}

#[tokio::test]
async fn a_connection_past_the_cap_is_answered_503_and_closed_at_once() {
    let app = spawn_app_with(|config| config.max_connections = 2).await;
    let mut first = TcpStream::connect(app.address).await.unwrap();
    let mut second = TcpStream::connect(app.address).await.unwrap();
    assert!(request_on(&mut first).await.starts_with("HTTP/1.1 200"));
    assert!(request_on(&mut second).await.starts_with("HTTP/1.1 200"));

    let mut third = TcpStream::connect(app.address).await.unwrap();
    let refused = String::from_utf8_lossy(&read_until_closed(&mut third).await).into_owned();

    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("retry-after: 1"), "{refused}");
    assert!(refused.contains("application/problem+json"), "{refused}");
    assert!(refused.contains("SWITCHYARD_MAX_CONNECTIONS"), "{refused}");
    // The two held connections are unaffected; once one closes, a new client gets in.
    assert!(request_on(&mut first).await.starts_with("HTTP/1.1 200"));
    drop(second);
    let fresh = reqwest::Client::new();
    let scrape = wait::until("a slot to free up", async || {
        match fresh.get(app.url("/metrics")).send().await {
            Ok(response) if response.status() == 200 => Look::Ready(response.text().await.unwrap()),
            Ok(response) => Look::NotYet(format!("{}", response.status())),
            Err(e) => Look::NotYet(e.to_string()),
        }
    })
    .await;
    let scrape = crate::metrics::Scrape::parse(scrape);
    let refused = scrape.value(
        "switchyard_connections_refused_total",
        &[("reason", "max_connections")],
    );
    assert!(refused.is_some_and(|n| n >= 1.0), "{:?}", refused);
    assert_eq!(scrape.value("switchyard_connections_open", &[]), Some(2.0));
}

fn large_event(n: usize) -> Value {
    json!({"event_type": "cache_metrics", "source": "bulk",
           "data": {"n": n, "blob": "x".repeat(100_000)}})
}

#[tokio::test]
async fn a_websocket_client_that_stops_reading_is_closed_and_counted_while_another_receives_everything()
 {
    let app = spawn_app_with(|config| config.send_timeout_ms = 500).await;
    let mut stalled = app.connect_ws_small_buffer("/v1/ws").await;
    send_json(&mut stalled, &json!({"op": "subscribe"})).await;
    assert_eq!(next_json(&mut stalled).await["op"], "subscribed");
    let mut healthy = app.subscribe_all().await;
    let closed = [("protocol", "ws"), ("reason", "send_timeout")];

    // Large events until the stalled client's buffers are full and its send times out; the
    // healthy one must receive every event, in order, all along.
    let mut last = 0;
    for batch in 0.. {
        assert!(batch < 100, "the stalled client was never cut");
        let events: Vec<Value> = (0..9).map(|i| large_event(batch * 9 + i)).collect();
        app.publish_ok(&Value::Array(events)).await;
        for _ in 0..9 {
            let offset = next_event(&mut healthy).await["offset"].as_u64().unwrap();
            assert_eq!(offset, last + 1, "the healthy subscriber missed an event");
            last = offset;
        }
        if counter(&app, "switchyard_streams_closed_total", &closed).await >= 1.0 {
            break;
        }
    }
    app.publish_ok(&large_event(0)).await;
    assert_eq!(
        next_event(&mut healthy).await["offset"].as_u64(),
        Some(last + 1)
    );

    // The stalled client's socket was closed: what was in flight drains, then it ends.
    let ended = tokio::time::timeout(WAIT, async {
        while let Some(Ok(_)) = stalled.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stalled socket is still open");
    let scrape = app.scrape().await;
    assert_eq!(
        scrape.value("switchyard_streams_closed_total", &closed),
        Some(1.0)
    );
    assert_eq!(
        scrape.value("switchyard_subscribers", &[("protocol", "ws")]),
        Some(1.0)
    );
    // And the operator's live view says so.
    let response = app.get("/v1/status/stream", app.admin()).await;
    let sample = crate::support::sse::SseClient::new(response)
        .next()
        .await
        .expect("a status")
        .json();
    let clients = &sample["connections"]["clients"];
    assert_eq!(clients["streams_closed_total"], 1, "{clients}");
    assert!(
        clients["send_timeouts_total"].as_u64() >= Some(1),
        "{clients}"
    );
    assert!(clients["open"].as_i64() >= Some(2), "{clients}");
}

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

#[tokio::test]
async fn an_sse_client_that_stops_reading_is_cut_and_counted() {
    let app = spawn_app_with(|config| config.send_timeout_ms = 500).await;
    // A raw client with a tiny receive buffer that reads the response head, then nothing.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut tcp = socket.connect(app.address).await.unwrap();
    let request = format!(
        "GET /v1/stream HTTP/1.1\r\nHost: switchyard\r\nAuthorization: Bearer {}\r\n\r\n",
        app.admin_key
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 64];
    let n = tcp.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"));
    let closed = [("protocol", "sse"), ("reason", "send_timeout")];

    for batch in 0.. {
        assert!(batch < 100, "the stalled SSE client was never cut");
        let events: Vec<Value> = (0..9).map(|i| large_event(batch * 9 + i)).collect();
        app.publish_ok(&Value::Array(events)).await;
        if counter(&app, "switchyard_streams_closed_total", &closed).await >= 1.0 {
            break;
        }
    }
    read_until_closed(&mut tcp).await;
    assert_eq!(
        counter(&app, "switchyard_subscribers", &[("protocol", "sse")]).await,
        0.0
    );
}
