//! `switchyard-bench drill` (also reached as `switchyard drill`): the migration of issue 12,
//! rehearsed unattended on this machine with nothing but the local Postgres. switchyard runs in
//! this process on a scratch control store, its Realtime target a scratch database behind the
//! fault proxy. N dashboards listen on `/v1/ws`, a producer publishes a steady stream over all
//! five categories, and the operator's steps are taken over REST as an operator would: the
//! `dual` strategy, then one guarded rollout plan per category flag (0 -> 10 -> 50 -> 100%,
//! guarded by the Realtime breaker, rolling back one stage on a breach).
//!
//! During the 50% stage the target is blackholed. Expected, and checked: the breaker opens,
//! the dashboards are told to move to the WebSocket path (`transport_changed`), every plan
//! steps back to 10%, and nothing is lost; after the restore the breaker closes, the backlog
//! replays, the plans are resumed (`POST /v1/rollouts/{id}/resume`) and complete. The report
//! (`report.rs`) says whether every promise held; the process exits non-zero when one did not.

mod dashboards;
mod plans;
mod report;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::sync::Mutex;
use tokio::time::Instant;
use uuid::Uuid;

use fault_proxy::Fault;
use switchyard::breaker::BreakerState;
use switchyard::{Application, config::Config};

use crate::failover::stream::{self, Producer};
use crate::failover::{ms, target_rows, wait_drained, wait_for, watch_backlog};
use crate::scratch::Scratch;
use dashboards::Dashboards;
use plans::Plans;
pub use report::DrillReport;
use report::Timeline;

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// The Postgres server for the scratch control store and Realtime target.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub server_url: String,
    /// Events per second published over HTTP, spread over the five categories.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(100..=100_000))]
    pub rate: u32,
    /// Dashboards subscribed on `/v1/ws`.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub subscribers: u32,
    /// Seconds each stage of the rollout holds before the next.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub hold_s: u64,
    /// Seconds into the 50% stage at which the target is blackholed.
    #[arg(long, default_value_t = 1)]
    pub fault_after_s: u64,
    /// Seconds the target stays blackholed once the breaker has opened.
    #[arg(long, default_value_t = 5)]
    pub outage_s: u64,
    /// The fault: `blackhole` (connections accepted, never answered) or `reset` (connections
    /// reset).
    #[arg(long, default_value = "blackhole", value_parser = ["blackhole", "reset"])]
    pub fault: String,
    /// The breaker's call timeout in ms (a blackholed write fails after this long).
    #[arg(long, default_value_t = 1_000)]
    pub timeout_ms: u64,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: DrillArgs) -> anyhow::Result<()> {
    let control = Scratch::create(&args.server_url, "drill_control").await?;
    let target = Scratch::create(&args.server_url, "drill_target").await?;
    let result = drill(&args, &control, &target).await;
    control.drop_database().await;
    target.drop_database().await;
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        report.print();
    }
    let broken = report.broken_promises();
    anyhow::ensure!(broken.is_empty(), "promises broken: {}", broken.join("; "));
    Ok(())
}

async fn drill(
    args: &DrillArgs,
    control: &Scratch,
    target: &Scratch,
) -> anyhow::Result<DrillReport> {
    let (proxy, target_url) = target.behind_proxy().await?;
    let admin_key = format!("drill-{}", Uuid::new_v4().simple());
    let mut config = Config::for_database(control.url.clone());
    config.port = 0;
    config.admin_key = Some(admin_key.clone());
    config.realtime.database_url = Some(target_url);
    config.legacy.timeout_ms = Some(args.timeout_ms);
    config.circuit_breaker_failure_threshold = Some("3".into());
    config.circuit_breaker_recovery_time_s = Some(1);
    let app = Application::build(config).await?;
    let base = format!("http://{}", app.local_addr());
    let realtime = app.realtime().clone();
    let breaker = app
        .breakers()
        .get(switchyard::breaker::REALTIME)
        .context("no realtime breaker")?;
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    let timeline = Timeline::start(!args.json);
    let plans = Plans::new(&base, &admin_key);
    plans.prepare().await?;
    timeline
        .note("dual strategy; every category flag at 0%")
        .await;
    let dashboards = Dashboards::open(&base, &admin_key, args.subscribers as usize).await?;
    let mut transitions = breaker.subscribe();
    let breaker_log = timeline.follow_breaker(breaker.subscribe());
    let producer = Producer::start(&base, &admin_key, args.rate);
    let peak = Arc::new(Mutex::new(0usize));
    let backlog = watch_backlog(realtime.clone(), peak.clone());
    let started = Instant::now();
    // The fault strikes `fault_after_s` into the 50% stage; the breaker needs about three call
    // timeouts to open and the plans a driver tick to step back: 5 s more covers both.
    let fault_hold_s = args
        .hold_s
        .max(args.fault_after_s + args.timeout_ms.div_ceil(1000) * 3 + 5);
    plans.create(args.hold_s, fault_hold_s).await?;
    let plan_log = timeline.follow_plans(plans.clone());

    let stage_limit = Duration::from_secs(args.hold_s * 3 + fault_hold_s + 60);
    plans
        .wait_all("at 50%", stage_limit, |p| p.percentage == 50)
        .await?;
    tokio::time::sleep(Duration::from_secs(args.fault_after_s)).await;
    let faulted = Instant::now();
    proxy.set(match args.fault.as_str() {
        "reset" => Fault::Reset,
        _ => Fault::Blackhole,
    });
    timeline
        .note(&format!("target faulted: {}", args.fault))
        .await;
    let opened = wait_for(
        &mut transitions,
        BreakerState::Open,
        Duration::from_secs(120),
    )
    .await?;
    plans
        .wait_all("rolled back", Duration::from_secs(60), |p| {
            p.status == "rolled_back"
        })
        .await?;
    let rolled_back = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.outage_s)).await;
    let restored = Instant::now();
    proxy.restore();
    timeline.note("target restored").await;
    let closed = wait_for(
        &mut transitions,
        BreakerState::Closed,
        Duration::from_secs(120),
    )
    .await?;
    let drained = wait_drained(&realtime).await?;
    timeline.note("backlog drained").await;
    plans.resume_all().await?;
    timeline.note("every plan resumed by the operator").await;
    plans
        .wait_all("completed", stage_limit, |p| p.status == "completed")
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent = producer.stop().await;
    let sentinel = stream::publish_sentinel(&base, &admin_key).await?;
    let seen = dashboards.finish().await?;
    backlog.abort();
    plan_log.abort();
    breaker_log.abort();

    let accepted: Vec<Uuid> = sent.iter().flat_map(|b| b.ids.iter().copied()).collect();
    let routed: HashSet<Uuid> = sent
        .iter()
        .flat_map(|b| {
            b.ids
                .iter()
                .zip(&b.routed)
                .filter(|(_, r)| **r)
                .map(|(id, _)| *id)
        })
        .collect();
    let routed_list: Vec<Uuid> = routed.iter().copied().collect();
    let rows = target_rows(&target.url, &routed_list, &sentinel).await?;
    let fault_window = (faulted, drained);
    let status = realtime.status();
    let final_plans = plans.snapshot().await?;
    let _ = stop_server.send(());
    let _ = server.await;
    Ok(DrillReport::build(report::Inputs {
        args,
        elapsed_s: started.elapsed().as_secs_f64(),
        sent: &sent,
        accepted: &accepted,
        routed: &routed,
        rows: &rows,
        seen: &seen,
        fault_window,
        status: &status,
        backlog_peak: *peak.lock().await,
        plans: &final_plans,
        open_ms: ms(opened - faulted),
        rollback_ms: ms(rolled_back.saturating_duration_since(opened)),
        close_ms: ms(closed - restored),
        drain_ms: ms(drained.saturating_duration_since(closed)),
        timeline: timeline.entries().await,
    }))
}
