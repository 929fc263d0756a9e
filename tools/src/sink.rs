//! `switchyard-bench sink`: Realtime sink throughput against a plain `COPY` of the same kind
//! of rows into the same table, on the same Postgres in the same run, in a scratch database
//! created for the run and dropped after it.
//!
//! Each round runs three methods, in an order that alternates between rounds, each on an
//! emptied table (same indexes, same publication) and fresh events:
//!
//! - **sink**: the real `RealtimePath` (queue, batcher, breaker, sink) with the default
//!   settings except a queue large enough to take the whole burst; from the first `submit` to
//!   the commit of the last event (taken from `subscribe_committed`). The burst ends with
//!   `RealtimePath::flush`, as a sustained stream would never wait for the linger of its last
//!   partial batches: the figure is what the sink writes, not how long the low class lingers
//!   (up to 4 s) after a stream stops;
//! - **COPY**: one `COPY ... FROM STDIN` (text format, as `psql \copy` sends it) of all the
//!   rows on one plain connection, encoded beforehand, the statement alone timed;
//! - **one INSERT per event** (`--insert-events`, 0 skips it): what the legacy adapter did.
//!
//! The medians of the rounds are reported, with the sink-to-COPY ratio (issue 14 item 3: at
//! least 0.85).

mod baselines;

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
    /// Events the sink and the COPY each write per round.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub events: u64,
    /// Events the one-INSERT-per-event baseline writes per round (0 skips it; it is slow).
    #[arg(long, default_value_t = 2_000)]
    pub insert_events: u64,
    /// Rounds (each runs every method); the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    pub rounds: u64,
    /// Connections the sink writes a large batch over (1 or 2; the default is the service's).
    #[arg(long, default_value_t = RealtimeSettings::new("", "").writers)]
    pub writers: usize,
    /// The largest batch any class may grow to (0: the legacy bounds, ten times each preset).
    #[arg(long, default_value_t = RealtimeSettings::new("", "").largest_batch)]
    pub largest_batch: usize,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct SinkReport {
    pub events: u64,
    pub rounds: u64,
    pub writers: usize,
    pub largest_batch: usize,
    /// Medians.
    pub sink_events_per_s: f64,
    pub copy_rows_per_s: f64,
    /// Sink / COPY (the target is at least 0.85).
    pub sink_to_copy: f64,
    pub one_insert_per_event_events_per_s: Option<f64>,
    pub sink_rounds: Vec<f64>,
    pub copy_rounds: Vec<f64>,
    pub one_insert_rounds: Vec<f64>,
    /// Batch sizes per class when the last sink round ended.
    pub final_batch_sizes: Vec<(String, usize)>,
}

pub async fn run(args: SinkArgs) -> anyhow::Result<()> {
    let scratch = Scratch::create(&args.server_url, "sink").await?;
    let result = measure(&args, &scratch.url).await;
    scratch.drop_database().await;
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "events per round: {}, rounds: {}, sink writers: {}, largest batch: {}",
        report.events, report.rounds, report.writers, report.largest_batch
    );
    let line = |what: &str, median: f64, rounds: &[f64]| {
        println!(
            "{what:<22}{median:>10.0} events/s  (rounds: {:?})",
            rounded(rounds)
        );
    };
    line(
        "sink (RealtimePath):",
        report.sink_events_per_s,
        &report.sink_rounds,
    );
    line(
        "COPY, one connection:",
        report.copy_rows_per_s,
        &report.copy_rounds,
    );
    if let Some(one) = report.one_insert_per_event_events_per_s {
        line("one INSERT per event:", one, &report.one_insert_rounds);
    }
    println!("sink / COPY: {:.2}", report.sink_to_copy);
    println!("batch sizes at the end: {:?}", report.final_batch_sizes);
    Ok(())
}

async fn measure(args: &SinkArgs, url: &str) -> anyhow::Result<SinkReport> {
    let n = args.events as usize;
    let control = switchyard::store::connect_and_migrate(url).await?;
    let hub = Hub::new(n.max(args.insert_events as usize), 16);
    let mut plain = PgConnection::connect(url).await?;
    let (mut sink, mut copy, mut one_insert) = (vec![], vec![], vec![]);
    let mut final_batch_sizes = vec![];
    for round in 0..args.rounds {
        // Alternate which goes first, so a noisy moment does not always hit the same one.
        for method in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            baselines::empty_table(&mut plain).await?;
            if method == 0 {
                let (rate, sizes) = write_through_sink(&hub, &control, url, n, args).await?;
                sink.push(rate);
                final_batch_sizes = sizes;
            } else {
                let text = baselines::copy_text(&publish(&hub, n), hub.epoch());
                let (took, rows) = baselines::copy_rows(&mut plain, &text).await?;
                anyhow::ensure!(rows == n as u64, "COPY wrote {rows} rows, not {n}");
                copy.push(n as f64 / took.as_secs_f64());
            }
        }
        if args.insert_events > 0 {
            baselines::empty_table(&mut plain).await?;
            let m = args.insert_events as usize;
            let events = publish(&hub, m);
            let took = baselines::insert_one_by_one(&mut plain, &events, hub.epoch()).await?;
            one_insert.push(m as f64 / took.as_secs_f64());
        }
    }
    let (s, c) = (median(&sink), median(&copy));
    Ok(SinkReport {
        events: args.events,
        rounds: args.rounds,
        writers: args.writers,
        largest_batch: args.largest_batch,
        sink_events_per_s: s,
        copy_rows_per_s: c,
        sink_to_copy: s / c,
        one_insert_per_event_events_per_s: (!one_insert.is_empty()).then(|| median(&one_insert)),
        sink_rounds: sink,
        copy_rounds: copy,
        one_insert_rounds: one_insert,
        final_batch_sizes,
    })
}

/// One sink round: a fresh `RealtimePath` (default settings, a queue that takes the burst)
/// writes `n` new events; returns events/s and the batch sizes it ended with.
async fn write_through_sink(
    hub: &Hub,
    control: &sqlx::PgPool,
    url: &str,
    n: usize,
    args: &SinkArgs,
) -> anyhow::Result<(f64, Vec<(String, usize)>)> {
    let events = publish(hub, n);
    let shutdown = CancellationToken::new();
    let breaker = Breaker::start(
        switchyard::breaker::REALTIME,
        BreakerConfig::default(),
        shutdown.clone(),
    );
    let mut settings = RealtimeSettings::new(url, hub.epoch());
    settings.queue_capacity = n;
    settings.writers = args.writers;
    settings.largest_batch = args.largest_batch;
    let path = RealtimePath::start(settings, control.clone(), url, breaker, shutdown.clone()).await;
    let took = write_adaptive(&path, &events).await;
    let sizes = path
        .status()
        .classes
        .iter()
        .map(|c| (format!("{:?}", c.class).to_lowercase(), c.batch_size))
        .collect();
    shutdown.cancel();
    path.stopped().await;
    Ok((n as f64 / took?.as_secs_f64(), sizes))
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
    path.flush();
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

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn rounded(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.round() as u64).collect()
}
