//! `switchyard-bench failover`: the failover drill of issue 4. switchyard runs in this process
//! on scratch databases, its Realtime target (a database of its own) behind the fault proxy,
//! with the `realtime` strategy pinned so every event is routed to Realtime. A producer
//! publishes over HTTP at a constant rate while one dashboard listens on `/v1/ws`. After a
//! warm-up the target is blackholed (connections accepted, never answered); once the breaker
//! has been open for `--outage-s` it is restored. The drill reports:
//!
//! - blackhole -> open: how long the breaker took to trip (its timeouts and failure count);
//! - open -> fallback delivery: from the trip to the WebSocket delivery of the first event
//!   accepted after it (the WebSocket path carries every event whatever the breaker does);
//! - restore -> closed (the probe schedule plus the half-open trials) and closed -> drained
//!   (the backlog's replay at its bounded rate);
//! - events lost: accepted ids missing from the subscriber, and routed ids missing from the
//!   Realtime table once drained, with duplicates on either side (target: 0);
//! - ingest latency (HTTP round trip of each batch) before, during and after the outage.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use tokio::sync::{Mutex, broadcast};
use tokio::time::Instant;
use uuid::Uuid;

use fault_proxy::Fault;
use switchyard::breaker::{BreakerState, Transition};
use switchyard::realtime::RealtimePath;
use switchyard::{Application, config::Config};

use super::scratch::Scratch;

pub(super) mod stream;

use stream::{Listener, Producer};

#[derive(Debug, Args)]
pub struct FailoverArgs {
    /// The Postgres server for the scratch control store and Realtime target.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub server_url: String,
    /// Events per second published over HTTP (in batches every 10 ms).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(100..=100_000))]
    pub rate: u32,
    /// Seconds of steady stream before the blackhole.
    #[arg(long, default_value_t = 5)]
    pub warmup_s: u64,
    /// Seconds the breaker stays open before the target is restored.
    #[arg(long, default_value_t = 10)]
    pub outage_s: u64,
    /// The breaker's call timeout in ms (`MONITORING_TIMEOUT_MS`; default the legacy 5000).
    #[arg(long, default_value_t = 5_000)]
    pub timeout_ms: u64,
    /// When the breaker trips (`CIRCUIT_BREAKER_FAILURE_THRESHOLD`; default 5 consecutive).
    #[arg(long, default_value = "5")]
    pub failure_threshold: String,
    /// The breaker's stall rule (`SWITCHYARD_BREAKER_STALL_TRIP`): a timeout with no success
    /// since it started opens at once. `--stall-trip false` is the threshold x timeout baseline.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub stall_trip: bool,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct FailoverReport {
    pub rate: u32,
    pub accepted: usize,
    /// Publish requests that failed or were refused.
    pub failed_requests: usize,
    pub blackhole_to_open_ms: f64,
    pub open_to_fallback_delivery_ms: f64,
    pub restore_to_closed_ms: f64,
    pub closed_to_drained_ms: f64,
    pub backlog_peak: usize,
    pub replayed: u64,
    pub lost_on_websocket: usize,
    pub duplicated_on_websocket: usize,
    pub lost_on_realtime: usize,
    pub duplicated_on_realtime: usize,
    pub dropped: u64,
    /// Ingest round trip p50 / p99 / max in ms: before, during and after the outage.
    pub ingest_ms_before: [f64; 3],
    pub ingest_ms_during: [f64; 3],
    pub ingest_ms_after: [f64; 3],
}

pub async fn run(args: FailoverArgs) -> anyhow::Result<()> {
    let control = Scratch::create(&args.server_url, "failover_control").await?;
    let target = Scratch::create(&args.server_url, "failover_target").await?;
    let result = drill(&args, &control, &target).await;
    control.drop_database().await;
    target.drop_database().await;
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print(&args, &report);
    }
    Ok(())
}

async fn drill(
    args: &FailoverArgs,
    control: &Scratch,
    target: &Scratch,
) -> anyhow::Result<FailoverReport> {
    let (proxy, target_url) = target.behind_proxy().await?;

    let admin_key = format!("bench-{}", Uuid::new_v4().simple());
    let mut config = Config::for_database(control.url.clone());
    config.port = 0;
    config.admin_key = Some(admin_key.clone());
    config.realtime.database_url = Some(target_url);
    config.circuit_breaker_failure_threshold = Some(args.failure_threshold.clone());
    config.legacy.timeout_ms = Some(args.timeout_ms);
    config.breaker_stall_trip = args.stall_trip;
    config.legacy.global_override = Some("realtime_only".into());
    let app = Application::build(config).await?;
    let address = app.local_addr();
    let realtime = app.realtime().clone();
    let realtime_breaker = app
        .breakers()
        .get(switchyard::breaker::REALTIME)
        .context("no realtime breaker")?;
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    let base = format!("http://{address}");
    let listener = Listener::start(&base, &admin_key).await?;
    let mut transitions = realtime_breaker.subscribe();
    let producer = Producer::start(&base, &admin_key, args.rate);
    let peak = Arc::new(Mutex::new(0usize));
    let watcher = watch_backlog(realtime.clone(), peak.clone());

    tokio::time::sleep(Duration::from_secs(args.warmup_s)).await;
    let blackholed = Instant::now();
    proxy.set(Fault::Blackhole);
    let opened = wait_for(
        &mut transitions,
        BreakerState::Open,
        Duration::from_secs(300),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(args.outage_s)).await;
    let restored = Instant::now();
    proxy.restore();
    let closed = wait_for(
        &mut transitions,
        BreakerState::Closed,
        Duration::from_secs(300),
    )
    .await?;
    let drained = wait_drained(&realtime).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = producer.stop().await;
    let sentinel = stream::publish_sentinel(&base, &admin_key).await?;
    let received = listener.finish().await?;
    watcher.abort();

    let accepted: Vec<Uuid> = sent.iter().flat_map(|b| b.ids.iter().copied()).collect();
    let rows = target_rows(&target.url, &accepted, &sentinel).await?;
    let status = realtime.status();
    let first_after_open = stream::first_delivery_after(&sent, &received, opened);
    let phases = [
        (None, Some(blackholed)),
        (Some(blackholed), Some(closed)),
        (Some(closed), None),
    ];
    let [before, during, after] = phases.map(|(from, to)| stream::ingest_ms(&sent, from, to));
    let (lost_ws, dup_ws) = compare(&accepted, received.iter().map(|(id, _)| *id));
    let (lost_rt, dup_rt) = compare(&accepted, rows.into_iter());
    let _ = stop_server.send(());
    let _ = server.await;
    Ok(FailoverReport {
        rate: args.rate,
        accepted: accepted.len(),
        failed_requests: sent.iter().filter(|b| !b.ok).count(),
        blackhole_to_open_ms: ms(opened - blackholed),
        open_to_fallback_delivery_ms: first_after_open.map_or(f64::NAN, |at| ms(at - opened)),
        restore_to_closed_ms: ms(closed - restored),
        closed_to_drained_ms: ms(drained.saturating_duration_since(closed)),
        backlog_peak: *peak.lock().await,
        replayed: status.replayed,
        lost_on_websocket: lost_ws,
        duplicated_on_websocket: dup_ws,
        lost_on_realtime: lost_rt,
        duplicated_on_realtime: dup_rt,
        dropped: status.dropped,
        ingest_ms_before: before,
        ingest_ms_during: during,
        ingest_ms_after: after,
    })
}

pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// (accepted ids missing from `seen`, ids seen more than once).
pub(crate) fn compare(accepted: &[Uuid], seen: impl Iterator<Item = Uuid>) -> (usize, usize) {
    let mut distinct = HashSet::new();
    let duplicates = seen.filter(|id| !distinct.insert(*id)).count();
    let lost = accepted.iter().filter(|id| !distinct.contains(id)).count();
    (lost, duplicates)
}

pub(crate) async fn wait_for(
    transitions: &mut broadcast::Receiver<Transition>,
    state: BreakerState,
    limit: Duration,
) -> anyhow::Result<Instant> {
    tokio::time::timeout(limit, async {
        loop {
            match transitions.recv().await {
                Ok(transition) if transition.to == state => return Ok(Instant::now()),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => anyhow::bail!("the breaker is gone"),
            }
        }
    })
    .await
    .with_context(|| format!("the breaker did not become {state} within {limit:?}"))?
}

/// Samples the backlog depth every 10 ms, keeping its peak.
pub(crate) fn watch_backlog(
    realtime: RealtimePath,
    peak: Arc<Mutex<usize>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let depth = realtime.status().backlog_depth;
            let mut peak = peak.lock().await;
            *peak = (*peak).max(depth);
            drop(peak);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

pub(crate) async fn wait_drained(realtime: &RealtimePath) -> anyhow::Result<Instant> {
    tokio::time::timeout(Duration::from_secs(300), async {
        while realtime.status().backlog_depth > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Instant::now()
    })
    .await
    .context("the backlog did not drain within 300 s")
}

/// The target's ids once it holds the sentinel (committed after every other event, in order)
/// or 60 s have passed; read directly, not through the proxy.
pub(crate) async fn target_rows(
    url: &str,
    accepted: &[Uuid],
    sentinel: &Uuid,
) -> anyhow::Result<Vec<Uuid>> {
    let pool = sqlx::PgPool::connect(url).await?;
    let want: HashSet<Uuid> = accepted.iter().chain([sentinel]).copied().collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM monitoring.monitoring_events")
            .fetch_all(&pool)
            .await?;
        let complete = want.is_subset(&rows.iter().copied().collect());
        if complete || Instant::now() > deadline {
            pool.close().await;
            return Ok(rows.into_iter().filter(|id| id != sentinel).collect());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn print(args: &FailoverArgs, r: &FailoverReport) {
    println!(
        "failover drill: {} events/s, timeout {} ms, threshold {}, {} events accepted, {} requests failed",
        r.rate, args.timeout_ms, args.failure_threshold, r.accepted, r.failed_requests
    );
    println!(
        "blackhole -> open:            {:>9.0} ms",
        r.blackhole_to_open_ms
    );
    println!(
        "open -> fallback delivery:    {:>9.1} ms",
        r.open_to_fallback_delivery_ms
    );
    println!(
        "restore -> closed:            {:>9.0} ms",
        r.restore_to_closed_ms
    );
    println!(
        "closed -> backlog drained:    {:>9.0} ms (peak {} events, {} replayed)",
        r.closed_to_drained_ms, r.backlog_peak, r.replayed
    );
    println!(
        "lost: websocket {} realtime {} dropped {} | duplicated: websocket {} realtime {}",
        r.lost_on_websocket,
        r.lost_on_realtime,
        r.dropped,
        r.duplicated_on_websocket,
        r.duplicated_on_realtime
    );
    for (phase, [p50, p99, max]) in [
        ("before", r.ingest_ms_before),
        ("during", r.ingest_ms_during),
        ("after", r.ingest_ms_after),
    ] {
        println!(
            "ingest round trip {phase:<6}  p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  max {max:>7.2} ms"
        );
    }
}
