//! The drill's producer (HTTP batches at a constant rate, each with its send time, round trip
//! and receipts) and listener (a `/v1/ws` subscriber recording each event's id and arrival).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

/// One published batch.
pub struct Batch {
    pub sent_at: Instant,
    pub round_trip: Duration,
    pub ids: Vec<Uuid>,
    /// Beside `ids`: whether the receipt says the event was routed to Realtime too.
    pub routed: Vec<bool>,
    /// Beside `ids`: the event's index in [`TYPES`] (one type per category).
    pub types: Vec<usize>,
    /// False when the request failed or was refused (its events were not accepted).
    pub ok: bool,
}

pub const TYPES: [&str; 5] = ["error", "cache_metrics", "session_start", "stats", "debug"];

pub struct Producer {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Vec<Batch>>,
}

impl Producer {
    /// Publishes `rate / 100` events every 10 ms, each request on its own task so a slow
    /// answer does not lower the rate.
    pub fn start(base: &str, key: &str, rate: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let (client, url, key) = (
            reqwest::Client::new(),
            format!("{base}/v1/events"),
            key.to_string(),
        );
        let per_tick = (rate / 100).max(1) as usize;
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(10));
            ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
            let mut requests = JoinSet::new();
            let mut n = 0usize;
            while !stopping.load(Ordering::Relaxed) {
                ticks.tick().await;
                let types: Vec<usize> = (1..=per_tick).map(|i| (n + i) % 5).collect();
                let body: Vec<Value> = (0..per_tick)
                    .map(|_| {
                        n += 1;
                        json!({"event_type": TYPES[n % 5], "source": "failover-drill", "data": {"n": n}})
                    })
                    .collect();
                let request = client.post(&url).bearer_auth(&key).json(&body);
                requests.spawn(async move {
                    let sent_at = Instant::now();
                    let (ids, routed) = match request.send().await {
                        Ok(response) if response.status().is_success() => {
                            let body = response.json::<Value>().await.unwrap_or_default();
                            (receipts(&body), routed(&body))
                        }
                        _ => (Vec::new(), Vec::new()),
                    };
                    let round_trip = sent_at.elapsed();
                    let ok = !ids.is_empty();
                    Batch {
                        sent_at,
                        round_trip,
                        ids,
                        routed,
                        types,
                        ok,
                    }
                });
            }
            let mut batches = Vec::new();
            while let Some(batch) = requests.join_next().await {
                batches.extend(batch.ok());
            }
            batches.sort_by_key(|b| b.sent_at);
            batches
        });
        Self { stop, task }
    }

    pub async fn stop(self) -> Vec<Batch> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

fn receipts(body: &Value) -> Vec<Uuid> {
    body["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["id"].as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn routed(body: &Value) -> Vec<bool> {
    body["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| e["realtime"].as_bool().unwrap_or(false))
                .collect()
        })
        .unwrap_or_default()
}

/// Publishes the event that ends the listener; returns its id.
pub async fn publish_sentinel(base: &str, key: &str) -> anyhow::Result<Uuid> {
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/events"))
        .bearer_auth(key)
        .json(&json!({"event_type": "sentinel", "source": "failover-drill"}))
        .send()
        .await?
        .error_for_status()?;
    receipts(&response.json().await?)
        .pop()
        .context("no receipt for the sentinel")
}

pub struct Listener {
    task: JoinHandle<anyhow::Result<Vec<(Uuid, Instant)>>>,
}

impl Listener {
    /// Subscribes to everything on `/v1/ws`; returns once subscribed.
    pub async fn start(base: &str, key: &str) -> anyhow::Result<Self> {
        let mut request =
            format!("{}/v1/ws", base.replacen("http", "ws", 1)).into_client_request()?;
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {key}").parse()?);
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
        ws.send(Message::text(json!({"op": "subscribe"}).to_string()))
            .await?;
        let task = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(message) = ws.next().await {
                let Message::Text(text) = message? else {
                    continue;
                };
                let arrived = Instant::now();
                let frame: Value = serde_json::from_str(text.as_str())?;
                if frame["op"] != "event" {
                    continue;
                }
                if frame["event"]["event_type"] == "sentinel" {
                    return Ok(seen);
                }
                let id = frame["event"]["id"]
                    .as_str()
                    .context("an event id")?
                    .parse()?;
                seen.push((id, arrived));
            }
            anyhow::bail!("the subscription ended before the sentinel")
        });
        Ok(Self { task })
    }

    /// Every event received before the sentinel, with its arrival.
    pub async fn finish(self) -> anyhow::Result<Vec<(Uuid, Instant)>> {
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .context("the sentinel never arrived")??
    }
}

/// When the first event accepted after `opened` reached the subscriber.
pub fn first_delivery_after(
    sent: &[Batch],
    received: &[(Uuid, Instant)],
    opened: Instant,
) -> Option<Instant> {
    let first = sent
        .iter()
        .find(|b| b.sent_at >= opened && !b.ids.is_empty())?;
    let arrivals: HashMap<Uuid, Instant> = received.iter().copied().collect();
    first
        .ids
        .iter()
        .filter_map(|id| arrivals.get(id))
        .min()
        .copied()
}

/// p50, p99 and max ingest round trip in ms of the batches sent in `[from, to)`.
pub fn ingest_ms(sent: &[Batch], from: Option<Instant>, to: Option<Instant>) -> [f64; 3] {
    let mut trips: Vec<f64> = sent
        .iter()
        .filter(|b| from.is_none_or(|f| b.sent_at >= f) && to.is_none_or(|t| b.sent_at < t))
        .map(|b| b.round_trip.as_secs_f64() * 1_000.0)
        .collect();
    if trips.is_empty() {
        return [f64::NAN; 3];
    }
    trips.sort_by(f64::total_cmp);
    let at = |q: f64| trips[((trips.len() - 1) as f64 * q).round() as usize];
    [at(0.50), at(0.99), at(1.0)]
}
