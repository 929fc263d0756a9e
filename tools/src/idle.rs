//! `switchyard-bench idle`: C subscribed connections that receive nothing, held open while the
//! server's resident memory (VmRSS of `--server-pid`) is read before and after, so the cost of
//! an idle subscriber can be read as KiB per connection.
//!
//! The connections answer the server's pings (they keep being read), so a long `--hold` does
//! not get them dropped as unresponsive.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::fanout::{check_open_files, connect_all};
use super::subscriber::{self, Endpoint};
use super::{BenchClock, TargetArgs, Window, procfs};

#[derive(Debug, Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Idle subscribed connections to open.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub connections: u64,
    /// Seconds to let the server settle after the last subscription before reading its memory.
    #[arg(long, default_value_t = 2.0)]
    pub settle: f64,
    /// Seconds to keep the connections open after the reading (to inspect the server by hand).
    #[arg(long, default_value_t = 0.0)]
    pub hold: f64,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct IdleReport {
    pub url: String,
    pub connections: u64,
    pub connect_s: f64,
    pub server_rss_before_kib: Option<u64>,
    pub server_rss_after_kib: Option<u64>,
    pub kib_per_connection: Option<f64>,
    pub disconnected: u64,
}

pub async fn run(args: IdleArgs) -> anyhow::Result<()> {
    check_open_files(args.connections)?;
    let endpoint = Endpoint::resolve(&args.target.url, args.target.key.clone()).await?;
    let pid = args.target.server_pid;
    if pid.is_none() {
        eprintln!("no --server-pid: connections are opened and held, but no memory is read");
    }
    let rss = || pid.map(procfs::rss_kib).transpose();
    let before = rss()?;
    let clock = BenchClock::start();
    let sockets = connect_all(&endpoint, args.connections).await?;
    let connect_s = clock.now_ns() as f64 / 1e9;

    // Keep reading every connection (pings), counting nothing: the window is empty.
    let nothing = Window {
        start_ns: 0,
        end_ns: 0,
    };
    let stop = CancellationToken::new();
    let ignored = Arc::new(subscriber::Tally::new());
    let mut held = JoinSet::new();
    for socket in sockets {
        held.spawn(subscriber::receive(
            socket,
            clock,
            nothing,
            ignored.clone(),
            stop.clone(),
        ));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let after = rss()?;
    let report = IdleReport {
        url: args.target.url.clone(),
        connections: args.connections,
        connect_s,
        server_rss_before_kib: before,
        server_rss_after_kib: after,
        kib_per_connection: before
            .zip(after)
            .map(|(b, a)| (a as f64 - b as f64) / args.connections as f64),
        disconnected: 0,
    };
    tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    stop.cancel();
    let mut disconnected = 0;
    while let Some(delivery) = held.join_next().await {
        disconnected += u64::from(delivery?.ended_early.is_some());
    }
    let report = IdleReport {
        disconnected,
        ..report
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("idle connections against {}", report.url);
        println!(
            "  connections      {} (connected and subscribed in {:.1} s), {} dropped by the server",
            report.connections, report.connect_s, report.disconnected
        );
        if let (Some(b), Some(a), Some(per)) = (before, after, report.kib_per_connection) {
            println!("  server rss       {b} KiB before, {a} KiB after");
            println!("  per connection   {per:.2} KiB");
        }
    }
    Ok(())
}
