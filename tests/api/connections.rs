//! Clients that stall or never finish (issue 11): half a request header, more connections than
//! the cap, a WebSocket or SSE client that stops reading. Real sockets throughout; the limits
//! are set small so the tests are quick. The limits on event streams are in `stream_limits`.

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::wait::{self, Look};
use crate::support::ws::{next_event, next_json, send_json};
use crate::support::{Credential, TestApp, WAIT, spawn_app_with};

/// Reads until the server closes the connection; fails after `WAIT`. Returns what it read.
pub(crate) async fn read_until_closed(tcp: &mut TcpStream) -> Vec<u8> {
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
pub(crate) async fn counter(app: &TestApp, name: &str, labels: &[(&str, &str)]) -> f64 {
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

/// Room for `large_event`'s 100 kB events (the default maximum is 64 KiB): a client that stops
/// reading must fill its socket buffers quickly.
const LARGE_EVENT_LIMIT: u32 = 256 * 1024;

fn large_event(n: usize) -> Value {
    json!({"event_type": "cache_metrics", "source": "bulk",
           "data": {"n": n, "blob": "x".repeat(100_000)}})
}

#[tokio::test]
async fn a_websocket_client_that_stops_reading_is_closed_and_counted_while_another_receives_everything()
 {
    let app = spawn_app_with(|config| {
        config.send_timeout_ms = 500;
        config.limits.max_event_bytes = LARGE_EVENT_LIMIT;
    })
    .await;
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

#[tokio::test]
async fn an_sse_client_that_stops_reading_is_cut_and_counted() {
    let app = spawn_app_with(|config| {
        config.send_timeout_ms = 500;
        config.limits.max_event_bytes = LARGE_EVENT_LIMIT;
    })
    .await;
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

/// The kernel send buffer is bounded (`SWITCHYARD_SOCKET_SEND_BUFFER_BYTES`): a client that
/// stops reading is cut after a burst of a few times that size, with nothing published after
/// the burst. Left to the kernel's auto-tuning (up to 4 MiB), the same 1 MiB can sit in the
/// buffer and the client stays open, still costing every event's copy.
#[tokio::test]
async fn a_stalled_client_is_cut_after_a_burst_a_few_times_its_send_buffer() {
    let app = spawn_app_with(|config| {
        config.send_timeout_ms = 500;
        config.socket_send_buffer_bytes = 64 * 1024;
    })
    .await;
    let mut stalled = app.connect_ws_small_buffer("/v1/ws").await;
    send_json(&mut stalled, &json!({"op": "subscribe"})).await;
    assert_eq!(next_json(&mut stalled).await["op"], "subscribed");

    // 1 MiB in 16 KiB events, then nothing more.
    for batch in 0..4 {
        let events: Vec<Value> = (0..16)
            .map(|i| {
                json!({"event_type": "cache_metrics", "source": "burst",
                            "data": {"n": batch * 16 + i, "blob": "x".repeat(16_000)}})
            })
            .collect();
        app.publish_ok(&Value::Array(events)).await;
    }
    let closed = [("protocol", "ws"), ("reason", "send_timeout")];
    wait_for_counter(&app, "switchyard_streams_closed_total", &closed, 1.0).await;
}
