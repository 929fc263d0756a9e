//! An instance killed mid-stream (SIGKILL of a real `switchyard serve` process, no graceful
//! stop): its subscribers resume on another instance with `since` and miss nothing, and the
//! Realtime table holds every routed event exactly once, because what the killed instance had
//! pulled from the shared work queue and not acknowledged comes back to the others after the
//! ack wait (and the table's `ON CONFLICT` absorbs a row it had written but not acknowledged).
//!
//! The publisher behaves as a careful client: an event sent to the dying instance that gets no
//! 202 is sent again, with the same id, to a live one (one event either way: the stream
//! de-duplicates by id).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::events;
use super::process::Process;
use crate::support::nats::TestStream;
use crate::support::wait::{self, Look};
use crate::support::ws::Ws;
use crate::support::{TestApp, WAIT, spawn_app_on_with, spawn_app_with};

/// Where events are posted: an instance's `/v1/events` and its admin key.
#[derive(Clone)]
struct Target {
    client: reqwest::Client,
    url: String,
    key: String,
}

impl Target {
    fn of_app(app: &TestApp) -> Self {
        Self {
            client: app.client.clone(),
            url: app.url("/v1/events"),
            key: app.admin_key.clone(),
        }
    }

    fn of_process(process: &Process) -> Self {
        Self {
            client: process.client.clone(),
            url: process.url("/v1/events"),
            key: process.admin_key.clone(),
        }
    }

    /// The receipt of one event, if it was answered 202.
    async fn publish(&self, body: &Value) -> Option<Value> {
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(&self.key)
            .json(body)
            .timeout(WAIT)
            .send()
            .await
            .ok()?;
        if response.status().as_u16() != 202 {
            return None;
        }
        response.json().await.ok()
    }
}

/// Each accepted event's id and receipt, in the order they were answered.
type Accepted = Arc<Mutex<Vec<(Uuid, Value)>>>;

/// Publishes `n` events, one every 5 ms, in turn to each of `targets`; an event that is not
/// answered 202 is sent again with its id to `fallback`. Returns each event's id and receipt.
fn steady_stream(
    targets: Vec<Target>,
    fallback: Target,
    n: usize,
) -> (Accepted, tokio::task::JoinHandle<()>) {
    let accepted: Accepted = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let publisher = tokio::spawn({
        let accepted = accepted.clone();
        async move {
            for i in 0..n {
                let id = Uuid::new_v4();
                let body = json!({"id": id, "event_type": "cpu", "source": format!("host-{i}")});
                let receipt = match targets[i % targets.len()].publish(&body).await {
                    Some(receipt) => receipt,
                    None => fallback
                        .publish(&body)
                        .await
                        .expect("the live instance accepts the event again"),
                };
                accepted.lock().unwrap().push((id, receipt));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    (accepted, publisher)
}

/// Event frames read from `ws` until the server goes away: (offset, id), as far as received.
async fn read_until_gone(ws: &mut Ws, got: &mut Vec<(u64, String)>) {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the killed instance's socket did not end");
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
            Some(Ok(_)) => continue,
        };
        let frame: Value = serde_json::from_str(text.as_str()).expect("JSON");
        if frame["op"] == "event" {
            let offset = frame["offset"].as_u64().expect("an offset");
            got.push((offset, frame["event"]["id"].as_str().unwrap().to_string()));
        }
    }
}

#[tokio::test]
async fn a_killed_instances_subscriber_resumes_on_another_and_misses_nothing() {
    let stream = TestStream::new();
    let a = spawn_app_with(|c| stream.configure(c)).await;
    let c = spawn_app_on_with(&a, |c| stream.configure(c)).await;
    let mut b = Process::start_on(&a, &stream).await;
    let (mut on_b, subscribed_b) = b.subscribe_v1(&json!({"op": "subscribe"})).await;

    let (accepted, publisher) = steady_stream(
        vec![Target::of_app(&a), Target::of_process(&b)],
        Target::of_app(&a),
        150,
    );
    let mut got = events(&mut on_b, 40).await;
    b.kill().await;
    read_until_gone(&mut on_b, &mut got).await;
    publisher.await.expect("the publisher");
    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 150);

    let last = got.last().expect("events before the kill").0;
    let since = json!({"epoch": subscribed_b["epoch"], "offset": last});
    let (mut on_c, subscribed_c) = c
        .subscribe_v1(json!({"op": "subscribe", "since": since}))
        .await;
    assert_eq!(subscribed_c["recovered"], true, "{subscribed_c}");
    let rest = events(&mut on_c, accepted.len() - got.len()).await;
    assert_eq!(rest[0].0, last + 1, "resumed right after the last one seen");
    got.extend(rest);
    let offsets: Vec<u64> = got.iter().map(|(o, _)| *o).collect();
    assert!(
        offsets.windows(2).all(|w| w[1] == w[0] + 1),
        "one sequence without gaps or repeats across the kill: {offsets:?}"
    );
    let seen: HashSet<String> = got.into_iter().map(|(_, id)| id).collect();
    let sent: HashSet<String> = accepted.iter().map(|(id, _)| id.to_string()).collect();
    assert_eq!(seen, sent, "every accepted event, each once");
    c.assert_nothing_was_broadcast(&mut on_c).await;
}

#[tokio::test]
async fn the_realtime_table_holds_every_routed_event_once_with_an_instance_killed_midway() {
    let stream = TestStream::new();
    let a = spawn_app_with(|c| stream.configure(c)).await;
    let c = spawn_app_on_with(&a, |c| stream.configure(c)).await;
    a.set_strategy("realtime").await;
    // The killed one starts after the strategy is set, so it routes like the others.
    let mut killed = Process::start_on(&a, &stream).await;
    let targets = vec![
        Target::of_app(&a),
        Target::of_process(&killed),
        Target::of_app(&c),
    ];
    let (accepted, publisher) = steady_stream(targets, Target::of_app(&a), 300);
    let count = || accepted.lock().unwrap().len();
    wait::until("a third of the events to be accepted", async || {
        Look::ready_if(count() >= 100, count())
    })
    .await;
    killed.kill().await;
    publisher.await.expect("the publisher");
    let accepted = accepted.lock().unwrap().clone();
    for (_, receipt) in &accepted {
        assert_eq!(receipt["events"][0]["realtime"], true, "{receipt}");
    }
    let want: HashSet<Uuid> = accepted.iter().map(|(id, _)| *id).collect();
    assert_eq!(want.len(), 300);

    let database = a.state.pool.clone();
    let rows = wait::until(
        "the Realtime table to hold every routed event",
        async || {
            let rows: Vec<(Uuid, i64)> =
                sqlx::query_as("SELECT id, count(*) FROM monitoring.monitoring_events GROUP BY id")
                    .fetch_all(&database)
                    .await
                    .unwrap_or_default();
            let rows: HashMap<Uuid, i64> = rows.into_iter().collect();
            match want.iter().filter(|id| !rows.contains_key(id)).count() {
                0 => Look::Ready(rows),
                missing => Look::NotYet(format!("{missing} of {} missing", want.len())),
            }
        },
    )
    .await;
    assert_eq!(rows.len(), 300, "each routed event, nothing else");
    assert!(
        rows.values().all(|&n| n == 1),
        "each once: {:?}",
        rows.iter().filter(|(_, n)| **n != 1).collect::<Vec<_>>()
    );
}
