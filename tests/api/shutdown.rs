//! Graceful shutdown: open WebSockets are told goodbye with 1001, SSE streams end, and
//! `run_until_stopped` returns Ok; a request that never finishes is cut at the shutdown
//! deadline instead of holding the exit.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::ws::read_until_close;
use crate::support::{Credential, WAIT, spawn_app, spawn_app_with};

#[tokio::test]
async fn shutdown_closes_websockets_with_1001_ends_sse_streams_and_returns_ok() {
    let mut app = spawn_app().await;
    let mut subscriber = app.subscribe_all().await;
    let (mut legacy, _) = app.connect_legacy().await;
    let mut ingest = app
        .connect_ws("/events", app.admin())
        .await
        .expect("connect /events");
    let (mut sse, _) = app.stream("").await;

    app.trigger_shutdown();

    for ws in [&mut subscriber, &mut legacy, &mut ingest] {
        let (_, close) = read_until_close(ws).await;
        let close = close.expect("a close frame with a code");
        assert_eq!(close.code, CloseCode::Away, "{close:?}");
    }
    assert!(sse.next().await.is_none(), "the event stream ends");
    app.stopped().await.expect("run_until_stopped returns Ok");
}

#[tokio::test]
async fn a_request_that_never_finishes_cannot_hold_the_exit_past_the_shutdown_deadline() {
    let mut app = spawn_app_with(|config| {
        config.shutdown_deadline_s = 1;
        config.shutdown_grace_s = 1;
        // Far beyond the test's patience: only the shutdown deadline can end the request.
        config.request_timeout_ms = 600_000;
    })
    .await;
    // A publish whose body never comes: 1,000 bytes announced, 14 sent.
    let mut held = TcpStream::connect(app.address).await.expect("connect");
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nhost: switchyard\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"event_type\"",
        app.admin_key
    );
    held.write_all(head.as_bytes())
        .await
        .expect("send the head");
    // Another request answered after it: the server has read the held request's head.
    let live = app.get("/health/live", Credential::Nothing).await;
    assert_eq!(live.status().as_u16(), 200);

    app.trigger_shutdown();
    app.stopped()
        .await
        .expect("run_until_stopped returns Ok within the deadline");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(WAIT, held.read_to_end(&mut rest))
        .await
        .expect("the held connection is closed");
    assert!(
        read.is_err() || !String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 202"),
        "the unfinished request was not accepted: {}",
        String::from_utf8_lossy(&rest)
    );
}
