//! `switchyard-bench`: benchmarks run against a live server, beside the service rather than in
//! it (the service's library and binary carry the service and its CLI only). `fanout` (N
//! subscribers, a constant publish rate, delivery latency and ratio) and `idle` (the server's
//! resident memory per idle subscribed connection).
//!
//! Both speak only the subset of the protocol that the Node.js peer in `shared/peers/` also
//! speaks (`POST /v1/events`, `GET /v1/ws` with `{"op":"subscribe"}`), so the same tool measures
//! switchyard and the baseline side by side. The method follows REFERENCE.md section 5: each
//! event carries its intended send time, subscribers record arrival minus intended time, and
//! what arrived is counted against what was expected. `docs/benchmarks.md` has the figures.
//!
//! `propagation` (a flag flip on one instance until another instance's subscriber sees it) and
//! `evaluate` (evaluation requests/s) measure the flag half; `docs/flags-bench.md` has their
//! figures. `sink`, `failover` and `validator` measure the Realtime path
//! (`docs/realtime-bench.md`). They use the service only through the `switchyard` library's
//! public API, never its HTTP layer (`switchyard::api`).

mod drill;
mod dual;
mod evaluate;
mod failover;
mod fanout;
mod feed;
mod idle;
mod procfs;
mod propagation;
mod publisher;
mod report;
mod rest;
mod scratch;
mod sink;
mod soak;
mod stalled;
mod subscriber;
mod validator;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio::time::Instant;

pub use fanout::FanoutArgs;
pub use idle::IdleArgs;

#[derive(Debug, Parser)]
#[command(
    name = "switchyard-bench",
    version,
    about = "Benchmarks and load tools for switchyard"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Bench(BenchCommand),
    /// `switchyard serve`, for `validator`'s child server: the service this binary was built
    /// with, so the bench never measures a stale or missing `switchyard` binary.
    #[command(hide = true)]
    Serve(Box<switchyard::Config>),
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// N WebSocket subscribers, events published at a constant rate: delivered msgs/s,
    /// delivery ratio and latency percentiles.
    Fanout(FanoutArgs),
    /// Open C idle subscribed connections and report the server's resident memory per
    /// connection (VmRSS of --server-pid, before and after).
    Idle(IdleArgs),
    /// Realtime sink throughput on a scratch database: adaptive batching against one INSERT
    /// per event (the legacy way), same Postgres, same run.
    Sink(sink::SinkArgs),
    /// Flip a flag on instance A N times and time each flip until a `/v1/ws` subscriber of
    /// instance B (same database) reads its `flag_changed` frame: p50/p95/p99/max.
    Propagation(propagation::PropagationArgs),
    /// Evaluation requests/s and latency at a fixed concurrency: `POST /v1/evaluate` and the
    /// OFREP bulk endpoint (fresh and 304).
    Evaluate(evaluate::EvaluateArgs),
    /// The failover drill: switchyard in-process with its Realtime target behind a fault
    /// proxy, a steady stream over HTTP and a WebSocket subscriber; blackhole the target,
    /// restore it, and time open, fallback delivery and recovery; count events lost.
    Failover(failover::FailoverArgs),
    /// The migration rehearsed (`switchyard drill`): scratch databases, switchyard in-process,
    /// N dashboards and a steady stream; guarded rollout plans take every category to 100%
    /// dual-write while the Realtime target is faulted and restored. Exits non-zero when a
    /// promise (no loss, rollback, recovery, consistency) did not hold.
    Drill(drill::DrillArgs),
    /// The consistency validator's cost: ingest throughput with validation off and on in the
    /// same run, and the server's memory at a steady rate with each.
    Validator(validator::ValidatorArgs),
}

/// On the service's runtime choice (`switchyard::runtime`): a bench pinned to one core runs
/// its thousand subscribers on one first-in-first-out run queue, so its own scheduling does
/// not add an unfair tail to the latencies it measures.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match switchyard::runtime::build() {
        Ok(runtime) => runtime.block_on(start(cli)),
        Err(e) => switchyard::cli::exit_code(Err(e)),
    }
}

async fn start(cli: Cli) -> ExitCode {
    // reqwest's rustls has no provider of its own here (no aws-lc-sys): ring, process-wide.
    switchyard::client::install_default_provider();
    let command = match cli.command {
        Command::Bench(command) => command,
        Command::Serve(config) => {
            let command = switchyard::cli::Command::Serve(config);
            return switchyard::cli::run(switchyard::cli::Cli { command }).await;
        }
    };
    switchyard::cli::exit_code(run(command).await)
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Fanout(args) => fanout::run(args).await,
        BenchCommand::Idle(args) => idle::run(args).await,
        BenchCommand::Sink(args) => sink::run(args).await,
        BenchCommand::Propagation(args) => propagation::run(args).await,
        BenchCommand::Evaluate(args) => evaluate::run(args).await,
        BenchCommand::Failover(args) => failover::run(args).await,
        BenchCommand::Validator(args) => validator::run(args).await,
        BenchCommand::Drill(args) => drill::run(args).await,
    }
}

/// The server under test. Not `client::ServerArgs`: a bench reads `SWITCHYARD_KEY` but not
/// `SWITCHYARD_URL`, so a run measures the server named on its command line and nothing else.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Base URL of the server under test (switchyard or a peer speaking the same subset).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API key, sent as `Authorization: Bearer` (harmless for a server without auth).
    #[arg(long, env = "SWITCHYARD_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Process id of the server, to report its CPU use and resident memory from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

/// One clock for the whole process: publishers stamp events with nanoseconds since `origin`
/// and subscribers compare against the same origin, so no wall clock is involved.
#[derive(Debug, Clone, Copy)]
pub struct BenchClock {
    origin: Instant,
}

impl BenchClock {
    pub fn start() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    /// The instant `ns` nanoseconds after the origin.
    pub fn instant_at(&self, ns: u64) -> Instant {
        self.origin + Duration::from_nanos(ns)
    }
}

/// The measured part of a run, in `BenchClock` nanoseconds: events whose intended send time
/// falls in `[start_ns, end_ns)` are counted; the warm-up before it is not.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Window {
    pub fn contains(&self, ns: u64) -> bool {
        (self.start_ns..self.end_ns).contains(&ns)
    }
}
