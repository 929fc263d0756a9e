//! The Realtime path on a shared stream: every routed event is written once whichever
//! instance took it, an instance that stops leaves its share to the others, and an open
//! breaker leaves routed events in the stream (the backlog) until it closes.

use std::collections::HashSet;

use serde_json::json;
use uuid::Uuid;

use super::{ids, three};
use crate::support::nats::TestStream;
use crate::support::wait::{self, Look};
use crate::support::{event, expect_json, spawn_app_with};

#[tokio::test]
async fn the_realtime_table_holds_every_routed_event_once_with_an_instance_stopped_midway() {
    let stream = TestStream::new();
    let (a, mut b, c) = three(&stream).await;
    a.set_strategy("realtime").await;
    let mut sent = Vec::new();
    for i in 0..40 {
        let receipt = a.publish_ok(&event("cpu", &format!("host-{i}"))).await;
        assert_eq!(receipt["events"][0]["realtime"], true, "{receipt}");
        sent.extend(ids(&receipt));
        if i == 20 {
            b.trigger_shutdown();
            b.stopped().await.unwrap();
        }
    }
    let want: HashSet<Uuid> = sent.iter().map(|id| id.parse().unwrap()).collect();
    let database = a.state.pool.clone();
    let rows = wait::until(
        "the Realtime table to hold every routed event",
        async || {
            let rows: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM monitoring.monitoring_events")
                .fetch_all(&database)
                .await
                .unwrap_or_default();
            let missing = want.iter().filter(|id| !rows.contains(id)).count();
            Look::ready_if(missing == 0, (missing, rows.len()))
        },
    )
    .await;
    assert_eq!(rows.1, 40, "each routed event once, nothing else");
    drop(c);
}

#[tokio::test]
async fn while_the_breaker_is_open_routed_events_wait_in_the_stream_then_are_written() {
    use async_nats::jetstream::consumer::pull;
    let stream = TestStream::new();
    let app = spawn_app_with(|c| stream.configure(c)).await;
    app.set_strategy("realtime").await;
    app.force_breaker_open("scale-out test").await;
    let client = async_nats::connect(stream.url.as_str()).await.unwrap();
    let nats = async_nats::jetstream::new(client);
    let queue = wait::until(
        "the shared work queue with no pull outstanding",
        async || {
            let consumer = match nats.get_stream(&stream.name).await {
                Ok(s) => {
                    s.get_consumer::<pull::Config>(&format!("{}-realtime", stream.name))
                        .await
                }
                Err(e) => return Look::NotYet(e.to_string()),
            };
            match consumer {
                Ok(mut consumer) => {
                    let waiting = consumer.info().await.unwrap().num_waiting;
                    Look::ready_if(waiting == 0, consumer)
                }
                Err(e) => Look::NotYet(e.to_string()),
            }
        },
    )
    .await;
    let mut sent = HashSet::new();
    for i in 0..5 {
        let receipt = app.publish_ok(&event("cpu", &format!("held-{i}"))).await;
        sent.insert(
            receipt["events"][0]["id"]
                .as_str()
                .unwrap()
                .parse::<Uuid>()
                .unwrap(),
        );
    }
    let mut queue = queue;
    let info = queue.info().await.unwrap().clone();
    assert_eq!(info.num_pending, 5, "the stream holds them: {info:?}");
    assert_eq!(
        info.num_ack_pending, 0,
        "nothing pulled while open: {info:?}"
    );

    let body = json!({"action": "auto"});
    let response = app
        .as_admin(reqwest::Method::POST, "/v1/breakers/realtime", &body)
        .await;
    expect_json(response, 200).await;
    let database = app.state.pool.clone();
    wait::until("the held events in the Realtime table", async || {
        let rows: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM monitoring.monitoring_events")
            .fetch_all(&database)
            .await
            .unwrap_or_default();
        let written: HashSet<Uuid> = rows.into_iter().collect();
        Look::ready_if(written == sent, written.len())
    })
    .await;
}
