//! The constant-rate publisher: batches of events POSTed on a fixed schedule, each event
//! stamped with the batch's intended send time.
//!
//! The schedule never waits for the server: a request that is due goes out even while earlier
//! ones are in flight (up to `MAX_IN_FLIGHT`), and the stamp is the time it was due, not the
//! time it left. A server that slows down therefore shows up as latency instead of quietly
//! lowering the offered load (coordinated omission).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{BenchClock, Window};

/// Requests allowed in flight at once; past it the publisher falls behind its schedule, and
/// the events it sends late carry their due time, so the delay is measured.
const MAX_IN_FLIGHT: usize = 64;
/// Every bench event's `event_type` (switchyard classifies it as `system`).
pub const EVENT_TYPE: &str = "bench";
/// switchyard takes at most 1,000 events per request.
pub const MAX_BATCH: usize = 1_000;
/// `data` is `{"sent_at_ns":N,"seq":S,"pad":"..."}`: 31 bytes plus the digits and the pad.
const DATA_OVERHEAD_BYTES: usize = 31;
/// The smallest `--payload-bytes` that every event can honour (20 + 12 digits at most).
pub const MIN_PAYLOAD_BYTES: usize = 64;

/// What to publish, and when.
#[derive(Debug, Clone)]
pub struct Plan {
    pub events_url: String,
    pub key: Option<String>,
    /// Events per second, over the whole run.
    pub rate: f64,
    /// Events per request.
    pub batch: usize,
    /// Size of each event's `data` object in bytes.
    pub payload_bytes: usize,
    /// Every event's `source`: one per run, so the run's Realtime rows can be counted.
    pub source: String,
    /// When the first request is due and when no more are, in `BenchClock` nanoseconds.
    pub start_ns: u64,
    pub end_ns: u64,
    /// The measured part of the run.
    pub window: Window,
}

#[derive(Debug, Default)]
pub struct Published {
    /// Events accepted by the server whose intended time is in the measured window.
    pub measured: u64,
    /// Every event accepted, warm-up included.
    pub total: u64,
    /// Accepted events the server routed to the Realtime path too (`"realtime": true` in the
    /// 202), warm-up included: each must land in the Realtime table once.
    pub realtime_acks: u64,
    pub failed_requests: u64,
    pub first_error: Option<String>,
    /// How far behind its schedule a request left, at worst.
    pub late_max: Duration,
}

pub async fn run(client: reqwest::Client, plan: Plan, clock: BenchClock) -> Published {
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut requests = JoinSet::new();
    let mut published = Published::default();
    let interval_ns = plan.batch as f64 * 1e9 / plan.rate;
    let pad = "x".repeat(plan.payload_bytes);
    for k in 0u64.. {
        let due_ns = plan.start_ns + (k as f64 * interval_ns) as u64;
        if due_ns >= plan.end_ns {
            break;
        }
        tokio::time::sleep_until(clock.instant_at(due_ns)).await;
        let permit = permits.clone().acquire_owned().await.expect("never closed");
        let late = Duration::from_nanos(clock.now_ns().saturating_sub(due_ns));
        published.late_max = published.late_max.max(late);
        let first_seq = k * plan.batch as u64;
        let body = batch_body(
            &plan.source,
            due_ns,
            first_seq,
            plan.batch,
            plan.payload_bytes,
            &pad,
        );
        let mut request = client
            .post(&plan.events_url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = &plan.key {
            request = request.bearer_auth(key);
        }
        let measured = plan.window.contains(due_ns);
        let events = plan.batch as u64;
        requests.spawn(async move {
            let outcome = send(request).await;
            drop(permit);
            (measured, events, outcome)
        });
        while let Some(done) = requests.try_join_next() {
            published.tally(done);
        }
    }
    while let Some(done) = requests.join_next().await {
        published.tally(done);
    }
    published
}

impl Published {
    fn tally(&mut self, done: Result<(bool, u64, Result<u64, String>), tokio::task::JoinError>) {
        let outcome = done.unwrap_or_else(|e| (false, 0, Err(format!("request task: {e}"))));
        match outcome {
            (measured, events, Ok(realtime)) => {
                self.total += events;
                self.realtime_acks += realtime;
                if measured {
                    self.measured += events;
                }
            }
            (_, _, Err(error)) => {
                self.failed_requests += 1;
                self.first_error.get_or_insert(error);
            }
        }
    }
}

/// Sends one batch; on success, how many of its events the server routed to Realtime too.
async fn send(request: reqwest::RequestBuilder) -> Result<u64, String> {
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status.is_success() {
        return Ok(realtime_receipts(&body));
    }
    Err(format!(
        "{status}: {}",
        body.chars().take(200).collect::<String>()
    ))
}

/// Receipts in a 202 body marked `"realtime":true`, counted without parsing it (the server
/// writes compact JSON), so the publisher stays cheap at thousands of requests per second.
fn realtime_receipts(body: &str) -> u64 {
    body.matches(r#""realtime":true"#).count() as u64
}

/// A JSON array of `batch` events, each stamped with `due_ns` and padded so that its `data`
/// object is `payload_bytes` long (or as short as it can be). `pad` holds enough `x`s.
fn batch_body(
    source: &str,
    due_ns: u64,
    first_seq: u64,
    batch: usize,
    payload_bytes: usize,
    pad: &str,
) -> String {
    use std::fmt::Write;
    let mut body = String::with_capacity(batch * (payload_bytes + 80) + 2);
    body.push('[');
    for i in 0..batch {
        if i > 0 {
            body.push(',');
        }
        let seq = first_seq + i as u64;
        let unpadded = DATA_OVERHEAD_BYTES + digits(due_ns) + digits(seq);
        let pad = &pad[..payload_bytes.saturating_sub(unpadded).min(pad.len())];
        let _ = write!(
            body,
            r#"{{"event_type":"{EVENT_TYPE}","source":"{source}","data":{{"sent_at_ns":{due_ns},"seq":{seq},"pad":"{pad}"}}}}"#
        );
    }
    body.push(']');
    body
}

fn digits(n: u64) -> usize {
    n.checked_ilog10().unwrap_or(0) as usize + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_carries_its_due_time_and_the_requested_payload_size() {
        let pad = "x".repeat(200);
        let body = batch_body("run-1", 42, 7, 3, 200, &pad);
        let events: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(events.len(), 3);
        for (i, event) in events.iter().enumerate() {
            assert_eq!(event["source"], "run-1");
            assert_eq!(event["data"]["sent_at_ns"], 42);
            assert_eq!(event["data"]["seq"], 7 + i as u64);
            assert_eq!(event["data"].to_string().len(), 200);
        }
        let largest = batch_body("s", u64::MAX, 999_999_999_999, 1, MIN_PAYLOAD_BYTES, &pad);
        let largest: Vec<serde_json::Value> = serde_json::from_str(&largest).unwrap();
        assert_eq!(largest[0]["data"].to_string().len(), MIN_PAYLOAD_BYTES);
    }

    #[test]
    fn receipts_routed_to_realtime_are_counted() {
        let body = r#"{"accepted":3,"events":[{"id":"a","offset":1,"realtime":true},{"id":"b","offset":2,"realtime":false},{"id":"c","offset":3,"realtime":true}]}"#;
        assert_eq!(realtime_receipts(body), 2);
        assert_eq!(realtime_receipts(r#"{"accepted":0,"events":[]}"#), 0);
    }
}
