//! `switchyard-bench validator`: what the consistency validator costs. One server child
//! process (this binary's hidden `serve`, i.e. `switchyard serve`) on scratch databases (a control store and a separate Realtime target), every
//! event routed to Realtime (`DUAL_WRITE_GLOBAL_OVERRIDE=realtime_only`), so every event is
//! one the validator checks when `validation.enabled` is on.
//!
//! - Throughput: `--publishers` concurrent HTTP publishers send batches of 100 as fast as the
//!   server accepts them for `--seconds`; rounds alternate validation off and on (flipped over
//!   REST, like an operator would) and the median events/s of each is reported with the ratio.
//! - Memory: the server's resident memory (VmRSS) after `--seconds` at `--rate` events/s
//!   (10,000 by default) with validation off, then on, and what the validator was tracking.
//!
//! Between phases the server drains its Realtime queue and backlog, so each phase starts
//! from the same state.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::failover::stream::Producer;
use super::procfs;
use super::scratch::Scratch;

#[derive(Debug, Args)]
pub struct ValidatorArgs {
    /// The Postgres server for the scratch databases.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub server_url: String,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Throughput rounds (each runs validation off, then on).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Concurrent publishers in the throughput phases.
    #[arg(long, default_value_t = 8)]
    pub publishers: usize,
    /// Events per second in the memory phases.
    #[arg(long, default_value_t = 10_000)]
    pub rate: u32,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct ValidatorReport {
    pub off_events_per_s: Vec<f64>,
    pub on_events_per_s: Vec<f64>,
    /// Median with validation on over median off.
    pub ratio: f64,
    pub rss_mib_off: f64,
    pub rss_mib_on: f64,
    /// The validator's summary at the end of the memory phase with validation on: events in
    /// flight (pending), resolved in its window (compared), and not checked.
    pub pending_at_end: u64,
    pub compared_at_end: u64,
    pub unchecked_at_end: u64,
}

struct Server {
    child: Child,
    base: String,
    key: String,
    client: reqwest::Client,
}

pub async fn run(args: ValidatorArgs) -> anyhow::Result<()> {
    let control = Scratch::create(&args.server_url, "validator_control").await?;
    let target = Scratch::create(&args.server_url, "validator_target").await?;
    let result = measure(&args, &control, &target).await;
    control.drop_database().await;
    target.drop_database().await;
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let median_off = median(&report.off_events_per_s);
    let median_on = median(&report.on_events_per_s);
    println!(
        "ingest, validation off: {median_off:>9.0} events/s (rounds {:?})",
        rounded(&report.off_events_per_s)
    );
    println!(
        "ingest, validation on:  {median_on:>9.0} events/s (rounds {:?})",
        rounded(&report.on_events_per_s)
    );
    println!(
        "on / off: {:.3} ({:+.1}%)",
        report.ratio,
        (report.ratio - 1.0) * 100.0
    );
    println!(
        "server RSS after {} s at {} events/s: off {:.1} MiB, on {:.1} MiB (validator tracking {} pending, {} compared, {} unchecked)",
        args.seconds,
        args.rate,
        report.rss_mib_off,
        report.rss_mib_on,
        report.pending_at_end,
        report.compared_at_end,
        report.unchecked_at_end
    );
    Ok(())
}

async fn measure(
    args: &ValidatorArgs,
    control: &Scratch,
    target: &Scratch,
) -> anyhow::Result<ValidatorReport> {
    let mut server = Server::start(control, target).await?;
    // Memory first, on a fresh server: at a rate the Realtime path keeps up with, nothing
    // piles up in its backlog and the validator holds only what is in flight.
    let mut rss = [0.0; 2];
    let mut summary = Value::Null;
    for (slot, enabled) in [false, true].into_iter().enumerate() {
        server.set_validation(enabled).await?;
        let producer = Producer::start(&server.base, &server.key, args.rate);
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        let pid = server.child.id().context("the server exited")?;
        rss[slot] = procfs::rss_kib(pid)? as f64 / 1024.0;
        if enabled {
            summary = server.get("/v1/validation/summary").await?;
        }
        producer.stop().await;
        server.drain().await?;
    }
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        for enabled in [false, true] {
            server.set_validation(enabled).await?;
            let rate = server
                .flood(args.publishers, Duration::from_secs(args.seconds))
                .await?;
            if enabled {
                on.push(rate)
            } else {
                off.push(rate)
            }
            server.drain().await?;
        }
    }
    server.child.kill().await.ok();
    Ok(ValidatorReport {
        ratio: median(&on) / median(&off),
        off_events_per_s: off,
        on_events_per_s: on,
        rss_mib_off: rss[0],
        rss_mib_on: rss[1],
        pending_at_end: summary["pending"].as_u64().unwrap_or(0),
        compared_at_end: summary["overall"]["expected"].as_u64().unwrap_or(0),
        unchecked_at_end: summary["unchecked"].as_u64().unwrap_or(0),
    })
}

impl Server {
    async fn start(control: &Scratch, target: &Scratch) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let key = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let child = Command::new(std::env::current_exe()?)
            .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
            .env("DATABASE_URL", &control.url)
            .env("REALTIME_DATABASE_URL", &target.url)
            .env("SWITCHYARD_ADMIN_KEY", &key)
            .env("DUAL_WRITE_GLOBAL_OVERRIDE", "realtime_only")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .context("cannot start switchyard serve")?;
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            key,
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.get("/health/ready").await.is_err() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the server did not get ready in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(server)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await?
            .error_for_status()?;
        Ok(response.json().await?)
    }

    /// Flips `validation.enabled` over REST and waits until the validator follows.
    async fn set_validation(&self, enabled: bool) -> anyhow::Result<()> {
        let side = if enabled { "on" } else { "off" };
        self.client
            .post(format!(
                "{}/v1/flags/validation.enabled/environments/production/{side}",
                self.base
            ))
            .bearer_auth(&self.key)
            .send()
            .await?
            .error_for_status()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.get("/v1/validation/summary").await?["enabled"] != enabled {
            anyhow::ensure!(Instant::now() < deadline, "validation did not turn {side}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Events/s accepted by `publishers` publishers posting batches of 100 for `length`.
    async fn flood(&self, publishers: usize, length: Duration) -> anyhow::Result<f64> {
        let started = Instant::now();
        let until = started + length;
        let mut tasks = JoinSet::new();
        for p in 0..publishers {
            let (client, url, key) = (
                self.client.clone(),
                format!("{}/v1/events", self.base),
                self.key.clone(),
            );
            tasks.spawn(async move {
                let mut accepted = 0u64;
                let mut n = 0u64;
                while Instant::now() < until {
                    let batch: Vec<Value> = (0..100)
                        .map(|_| {
                            n += 1;
                            json!({"event_type": "cache_metrics", "source": format!("bench-{p}"), "data": {"n": n}})
                        })
                        .collect();
                    let response = client.post(&url).bearer_auth(&key).json(&batch).send().await;
                    if response.is_ok_and(|r| r.status().is_success()) {
                        accepted += 100;
                    }
                }
                accepted
            });
        }
        let mut accepted = 0;
        while let Some(n) = tasks.join_next().await {
            accepted += n?;
        }
        Ok(accepted as f64 / started.elapsed().as_secs_f64())
    }

    /// Waits until the Realtime queue and backlog are empty.
    async fn drain(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let status = self.get("/v1/realtime").await?;
            let empty = status["queue_depth"] == 0
                && status["backlog_depth"] == 0
                && status["spill_depth"] == 0
                && status["dead_letter_waiting"] == false;
            if empty {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the Realtime path did not drain: {status}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

fn rounded(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.round() as u64).collect()
}
