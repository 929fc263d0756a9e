//! `switchyard-bench sink`: Realtime sink throughput, adaptive batching against one INSERT per
//! event (what the legacy adapter did: one awaited insert per event), on the same Postgres in
//! the same run, into a scratch database created for the run and dropped after it.
//!
//! Adaptive batching is measured through the real `RealtimePath` (queue, batcher, breaker,
//! sink) with the default settings except a queue large enough to take the whole burst: from
//! the first `submit` to the commit of the last event, linger of the last partial batches
//! included. The baseline writes the same kind of events one statement at a time on one
//! connection, with the same `ON CONFLICT (id) DO NOTHING`. Rounds alternate the two methods
//! and the median of each is reported, so a noisy moment on a shared machine hits both.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use sqlx::{Connection, PgConnection};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use switchyard::breaker::{Breaker, BreakerConfig};
use switchyard::hub::{Hub, Published};
use switchyard::realtime::{RealtimePath, RealtimeSettings};

use super::scratch::Scratch;

/// Event types cycled through, one per category, so every batch class takes part.
const EVENT_TYPES: [&str; 5] = [
    "cache_metrics",
    "session_start",
    "health_check",
    "stats",
    "debug",
];

#[derive(Debug, Args)]
pub struct SinkArgs {
    /// The Postgres server to create the scratch database on (its database part is ignored).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub server_url: String,
    /// Events each method writes per round.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub events: u64,
    /// Rounds (each runs both methods); the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    pub rounds: u64,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct SinkReport {
    pub events: u64,
    pub rounds: u64,
    pub adaptive_events_per_s: f64,
    pub one_insert_per_event_events_per_s: f64,
    pub ratio: f64,
    pub adaptive_rounds: Vec<f64>,
    pub one_insert_rounds: Vec<f64>,
    /// Batch sizes per class when the last adaptive round ended.
    pub final_batch_sizes: Vec<(String, usize)>,
}

pub async fn run(args: SinkArgs) -> anyhow::Result<()> {
    let scratch = Scratch::create(&args.server_url, "sink").await?;
    let result = measure(&args, &scratch.url).await;
    scratch.drop_database().await;
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "events per method per round: {}, rounds: {}",
            report.events, report.rounds
        );
        println!(
            "adaptive batching:    {:>10.0} events/s  (rounds: {:?})",
            report.adaptive_events_per_s,
            rounded(&report.adaptive_rounds)
        );
        println!(
            "one INSERT per event: {:>10.0} events/s  (rounds: {:?})",
            report.one_insert_per_event_events_per_s,
            rounded(&report.one_insert_rounds)
        );
        println!("ratio: {:.1}x", report.ratio);
        println!("batch sizes at the end: {:?}", report.final_batch_sizes);
    }
    Ok(())
}

async fn measure(args: &SinkArgs, url: &str) -> anyhow::Result<SinkReport> {
    let n = args.events as usize;
    let control = switchyard::store::connect_and_migrate(url).await?;
    let hub = Hub::new(n, 16);
    let mut single = PgConnection::connect(url).await?;
    let (mut adaptive, mut one_insert) = (vec![], vec![]);
    let mut final_batch_sizes = vec![];
    for _ in 0..args.rounds {
        let events = publish(&hub, n);
        let shutdown = CancellationToken::new();
        let breaker = Breaker::start(
            switchyard::breaker::REALTIME,
            BreakerConfig::default(),
            shutdown.clone(),
        );
        let mut settings = RealtimeSettings::new(url, hub.epoch());
        settings.queue_capacity = n;
        let path =
            RealtimePath::start(settings, control.clone(), url, breaker, shutdown.clone()).await;
        let took = write_adaptive(&path, &events).await?;
        adaptive.push(n as f64 / took.as_secs_f64());
        final_batch_sizes = path
            .status()
            .classes
            .iter()
            .map(|c| (format!("{:?}", c.class).to_lowercase(), c.batch_size))
            .collect();
        shutdown.cancel();
        path.stopped().await;

        let events = publish(&hub, n);
        let took = write_one_by_one(&mut single, &events, hub.epoch()).await?;
        one_insert.push(n as f64 / took.as_secs_f64());
    }
    let (a, b) = (median(&adaptive), median(&one_insert));
    Ok(SinkReport {
        events: args.events,
        rounds: args.rounds,
        adaptive_events_per_s: a,
        one_insert_per_event_events_per_s: b,
        ratio: a / b,
        adaptive_rounds: adaptive,
        one_insert_rounds: one_insert,
        final_batch_sizes,
    })
}

fn publish(hub: &Hub, n: usize) -> Vec<Arc<Published>> {
    for i in 0..n {
        let body = serde_json::json!({
            "event_type": EVENT_TYPES[i % EVENT_TYPES.len()],
            "source": "bench-sink",
            "data": {"i": i, "response_time_ms": 12.5, "endpoint": "/api/v1/things"},
        });
        let event =
            switchyard::event::parse_event(&body, None, chrono::Utc::now()).expect("a valid event");
        hub.publish(event);
    }
    hub.recent(n)
}

/// Submits every event and waits until the target has committed all of them.
async fn write_adaptive(
    path: &RealtimePath,
    events: &[Arc<Published>],
) -> anyhow::Result<Duration> {
    let mut committed = path.subscribe_committed();
    let started = Instant::now();
    for published in events {
        path.submit(published.clone());
    }
    let mut done = 0;
    while done < events.len() {
        match tokio::time::timeout(Duration::from_secs(60), committed.recv()).await {
            Ok(Ok(batch)) => done += batch.ids.len(),
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                anyhow::bail!("the bench fell behind the commit announcements")
            }
            _ => anyhow::bail!("events stopped committing: {:?}", path.status()),
        }
    }
    Ok(started.elapsed())
}

/// The legacy way: one awaited INSERT per event.
async fn write_one_by_one(
    conn: &mut PgConnection,
    events: &[Arc<Published>],
    epoch: &str,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for published in events {
        let event = &published.event;
        sqlx::query(
            "INSERT INTO monitoring.monitoring_events
                 (id, event_type, \"timestamp\", source, data, metadata, category, sequence_id, epoch)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(event.id)
        .bind(&event.event_type)
        .bind(event.timestamp)
        .bind(&event.source)
        .bind(serde_json::Value::Object(event.data.clone()))
        .bind(serde_json::Value::Object(event.metadata.clone()))
        .bind(event.category.as_str())
        .bind(published.offset as i64)
        .bind(epoch)
        .execute(&mut *conn)
        .await?;
    }
    Ok(started.elapsed())
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn rounded(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.round() as u64).collect()
}
