//! Graceful shutdown: open WebSockets are told goodbye with 1001, SSE streams end, and
//! `run_until_stopped` returns Ok.

use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::spawn_app;
use crate::support::ws::read_until_close;

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
