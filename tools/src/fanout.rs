//! `switchyard-bench fanout`: N subscribers, events published at a constant rate, and what
//! reached the subscribers: delivered messages/s, the delivery ratio against
//! `published x N`, and latency percentiles from each event's intended send time.
//!
//! A run: connect and subscribe everyone (and only then start the clock), publish through
//! the warm-up and the measured window, wait until everything expected has arrived or nothing
//! has arrived for `DRAIN_QUIET`, then stop the subscribers and merge what they saw.
//!
//! For the soak and stalled-subscriber drills (issue 11): `--dual` puts every event on the
//! Realtime path too and counts the run's rows there ([`dual`]), `--stalled` adds subscribers
//! that never read ([`stalled`]), and with `--server-pid` the server's resident memory is
//! sampled every `--rss-every` seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::publisher::{self, MAX_BATCH, MIN_PAYLOAD_BYTES, Plan};
pub use super::report::Latency;
use super::report::{CpuSample, FanoutReport, Merged, print_table};
use super::soak::Probes;
use super::subscriber::{self, Endpoint, Tally};
use super::{BenchClock, TargetArgs, Window, procfs};

/// Subscribers connecting at once.
pub const CONNECT_CONCURRENCY: usize = 256;
/// After the last publish, how long the run waits without a single new delivery before it
/// declares the rest lost.
const DRAIN_QUIET: Duration = Duration::from_secs(2);
/// The longest the run waits for stragglers after the last publish.
const DRAIN_MAX: Duration = Duration::from_secs(30);
/// File descriptors the bench needs besides its subscribers (publisher pool, stdio, runtime).
pub const SPARE_FDS: u64 = 128;

#[derive(Debug, Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// WebSocket subscribers, each receiving every event.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub subscribers: u64,
    /// Events published per second, at a constant rate.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of publishing before the measured window (not counted).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Events per POST; a batch's events share its intended send time.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=MAX_BATCH as u64))]
    pub batch: u64,
    /// Size of each event's `data` object, in bytes.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(MIN_PAYLOAD_BYTES as u64..=512 * 1024))]
    pub payload_bytes: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Other instances on the same NATS stream (`SWITCHYARD_NATS_URL`): each gets
    /// `--subscribers` subscribers too, and every event published to `--url` must reach all of
    /// them. Repeat for more instances.
    #[arg(long = "also")]
    pub also: Vec<String>,
    /// Subscribers more that connect and subscribe, then never read (`SO_RCVBUF` 4 KiB), so the
    /// server's send timeout trips. Left out of every delivery and latency figure; the report
    /// says how many the server closed, and the close counters of its /metrics that moved.
    #[arg(long, default_value_t = 0)]
    pub stalled: u64,
    /// Seconds between samples of the server's resident memory (with --server-pid): the report
    /// gives it after the warm-up, at the end, its max and growth.
    #[arg(long, default_value_t = 5.0)]
    pub rss_every: f64,
    /// First put every bench event on both paths through the admin API (needs an admin --key):
    /// `broadcast.strategy` = dual, the bench's category (`system`) on at 100%. Then check the
    /// Realtime side: the events acknowledged with `"realtime": true` against its counters.
    #[arg(long)]
    pub dual: bool,
    /// The Realtime target (the server's REALTIME_DATABASE_URL, by default its DATABASE_URL):
    /// the run's rows are counted there by their `source`, unique per run (implies the
    /// Realtime check of --dual, without changing the strategy).
    #[arg(long)]
    pub realtime_database_url: Option<String>,
}

pub async fn run(args: FanoutArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate > 0.0 && args.duration > 0.0 && args.warmup >= 0.0 && args.rss_every > 0.0,
        "--rate, --duration and --rss-every must be positive, --warmup not negative"
    );
    let instances = 1 + args.also.len() as u64;
    check_open_files(args.subscribers * instances + args.stalled)?;
    let mut probes = Probes::prepare(&args).await?;
    let clock = BenchClock::start();

    let mut sockets = Vec::new();
    for (i, url) in std::iter::once(&args.target.url)
        .chain(&args.also)
        .enumerate()
    {
        let endpoint = Endpoint::resolve(url, args.target.key.clone()).await?;
        sockets.extend(connect_all(&endpoint, args.subscribers).await?);
        if i == 0 {
            probes.open_stalled(&endpoint, args.stalled).await?;
        }
    }
    let subscribers = args.subscribers * instances;
    let connect_s = clock.now_ns() as f64 / 1e9;

    // The schedule starts a little ahead so the first request is not already late.
    let start_ns = clock.now_ns() + 100_000_000;
    let window = Window {
        start_ns: start_ns + secs_to_ns(args.warmup),
        end_ns: start_ns + secs_to_ns(args.warmup + args.duration),
    };
    let tally = Arc::new(Tally::new());
    let stop = CancellationToken::new();
    let mut receivers = JoinSet::new();
    for socket in sockets {
        let task = subscriber::receive(socket, clock, window, tally.clone(), stop.clone());
        receivers.spawn(task);
    }
    let plan = Plan {
        events_url: format!("{}/v1/events", args.target.url.trim_end_matches('/')),
        key: args.target.key.clone(),
        rate: args.rate,
        batch: args.batch as usize,
        payload_bytes: args.payload_bytes as usize,
        source: probes.source.clone(),
        start_ns,
        end_ns: window.end_ns,
        window,
    };
    let client = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let publishing = tokio::spawn(publisher::run(client, plan, clock));
    probes.start(clock, window);

    tokio::time::sleep_until(clock.instant_at(window.start_ns)).await;
    let cpu_before = CpuSample::take(args.target.server_pid);
    probes.window_started();
    tokio::time::sleep_until(clock.instant_at(window.end_ns)).await;
    let cpu = CpuSample::take(args.target.server_pid).since(&cpu_before, args.duration);
    let server_rss_kib = args
        .target
        .server_pid
        .and_then(|pid| procfs::rss_kib(pid).ok());
    probes.window_ended(server_rss_kib);

    let published = publishing.await?;
    let expected = published.measured * subscribers;
    drain(&tally.delivered, expected).await;
    stop.cancel();
    let mut merged = Merged::new();
    while let Some(delivery) = receivers.join_next().await {
        merged.add(delivery?, published.measured);
    }
    merged.latency_us = tally.latencies();
    let soak = probes.finish(published.realtime_acks).await?;

    let measured_s =
        (merged.last_arrival_ns.saturating_sub(window.start_ns) as f64 / 1e9).max(args.duration);
    let quantile_ms = |q: f64| merged.latency_us.value_at_quantile(q) as f64 / 1_000.0;
    let report = FanoutReport {
        url: args.target.url.clone(),
        subscribers,
        rate: args.rate,
        batch: args.batch,
        payload_bytes: args.payload_bytes,
        duration_s: args.duration,
        warmup_s: args.warmup,
        connect_s,
        published: published.measured,
        published_per_s: published.measured as f64 / args.duration,
        expected,
        delivered: merged.delivered,
        delivered_per_s: merged.delivered as f64 / measured_s,
        delivery_ratio: if expected == 0 {
            0.0
        } else {
            merged.delivered as f64 / expected as f64
        },
        latency_ms: Latency {
            p50: quantile_ms(0.50),
            p95: quantile_ms(0.95),
            p99: quantile_ms(0.99),
            max: merged.latency_us.max() as f64 / 1_000.0,
        },
        lagged_notices: merged.lagged_notices,
        disconnected: merged.disconnected,
        short_subscribers: merged.short_subscribers,
        fewest_delivered: merged.fewest_delivered.unwrap_or(0),
        failed_requests: published.failed_requests,
        first_error: published.first_error.or(merged.first_disconnect),
        publisher_late_max_ms: published.late_max.as_secs_f64() * 1_000.0,
        bench_cpu_percent: cpu.bench_percent,
        server_cpu_percent: cpu.server_percent,
        server_rss_kib,
        soak,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// Connects and subscribes `count` sockets, `CONNECT_CONCURRENCY` at a time.
pub async fn connect_all(
    endpoint: &Endpoint,
    count: u64,
) -> anyhow::Result<Vec<subscriber::Socket>> {
    let total = count as usize;
    let permits = Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY));
    let mut connecting = JoinSet::new();
    for index in 0..total {
        let endpoint = endpoint.clone();
        let permits = permits.clone();
        connecting.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            let source = endpoint.source_for(index, total);
            endpoint.subscribe(source).await.map_err(|e| {
                e.context(format!(
                    "subscriber {index} could not subscribe at {}",
                    endpoint.ws_url
                ))
            })
        });
    }
    let mut sockets = Vec::with_capacity(total);
    while let Some(socket) = connecting.join_next().await {
        sockets.push(socket??);
    }
    Ok(sockets)
}

/// Fails early, with the fix, when this process may not open enough sockets.
pub fn check_open_files(connections: u64) -> anyhow::Result<()> {
    let limit = procfs::open_files_limit()?;
    let needed = connections + SPARE_FDS;
    anyhow::ensure!(
        limit >= needed,
        "{connections} connections need about {needed} open files but the limit is {limit}; \
         raise it in the shell first (`ulimit -n {needed}`; the hard limit is `ulimit -Hn`)"
    );
    Ok(())
}

/// Waits until `expected` deliveries have arrived, or none has for `DRAIN_QUIET`.
async fn drain(delivered: &AtomicU64, expected: u64) {
    let started = tokio::time::Instant::now();
    let mut seen = delivered.load(Ordering::Relaxed);
    let mut last_progress = started;
    loop {
        // Progress first: a check that ran late must not mistake its own delay for silence.
        let now = delivered.load(Ordering::Relaxed);
        if now != seen {
            seen = now;
            last_progress = tokio::time::Instant::now();
        }
        if now >= expected
            || last_progress.elapsed() >= DRAIN_QUIET
            || started.elapsed() >= DRAIN_MAX
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn secs_to_ns(seconds: f64) -> u64 {
    (seconds * 1e9) as u64
}
