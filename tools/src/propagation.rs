//! `switchyard-bench propagation`: how long a flag change takes to reach another instance's
//! subscribers. A `/v1/ws` subscriber listens on instance B; the bench flips a flag on
//! instance A (both on one database) and times each flip from just before the request leaves
//! until B's subscriber reads the `flag_changed` frame with the new version: A's write and
//! commit, the NOTIFY, B's reload and snapshot swap, and B's fan-out, end to end.
//!
//! Flips are sequential (the next one leaves once the last one was observed), alternating on
//! and off so that each one changes the flag. B is read by its own task, so a frame that
//! arrives before A's response is timed when it arrives, not when the flip loop gets to it.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hdrhistogram::Histogram;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::BenchClock;
use super::feed::Frame;
use super::report::{CpuSample, Latency};
use super::subscriber::{Endpoint, LATENCY_MAX_US, LATENCY_SIGNIFICANT_DIGITS, Socket};

/// The longest a flip may take to be observed before the run gives up on it.
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct PropagationArgs {
    /// Instance A, where the flag is flipped.
    #[arg(long)]
    pub url_a: String,
    /// Instance B (same database as A), where a `/v1/ws` subscriber waits for the change.
    #[arg(long)]
    pub url_b: String,
    /// An admin key both instances accept, sent as `Authorization: Bearer`.
    #[arg(long, env = "SWITCHYARD_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// The flag to flip; created as a boolean flag if missing.
    #[arg(long, default_value = "bench.propagation")]
    pub flag: String,
    /// The environment flipped.
    #[arg(long, default_value = "production")]
    pub env: String,
    /// Flips to time.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub flips: u64,
    /// Flips before the timed ones (not counted).
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct PropagationReport {
    pub url_a: String,
    pub url_b: String,
    pub flag: String,
    pub flips: u64,
    /// Flip request sent on A -> `flag_changed` read on B.
    pub observed_ms: Latency,
    /// Flip request sent on A -> A's response (the write alone, for comparison).
    pub write_ms: Latency,
    pub bench_cpu_percent: Option<f64>,
    pub elapsed_s: f64,
}

pub async fn run(args: PropagationArgs) -> anyhow::Result<()> {
    let a = Instance::new(&args.url_a, args.key.clone());
    let flag_path = format!("/v1/flags/{}", args.flag);
    let mut enabled = match a.send(Method::GET, &flag_path, None).await {
        Ok(flag) => flag["environments"][&args.env]["enabled"] == true,
        Err(e) if e.downcast_ref::<StatusCode>() == Some(&StatusCode::NOT_FOUND) => {
            let definition = json!({"key": args.flag, "type": "boolean",
                                    "description": "flipped by `switchyard-bench propagation`"});
            a.send(Method::POST, "/v1/flags", Some(definition)).await?;
            false
        }
        Err(e) => return Err(e),
    };
    let endpoint = Endpoint::resolve(&args.url_b, args.key.clone()).await?;
    let socket = endpoint.subscribe(None).await.context("subscribe on B")?;
    let clock = BenchClock::start();
    let (observed, mut changes) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_changes(socket, args.flag.clone(), clock, observed));

    let histogram =
        || Histogram::<u64>::new_with_bounds(1, LATENCY_MAX_US, LATENCY_SIGNIFICANT_DIGITS);
    let (mut observed_us, mut write_us) = (histogram()?, histogram()?);
    let cpu_before = CpuSample::take(None);
    let started_ns = clock.now_ns();
    for flip in 0..args.warmup + args.flips {
        enabled = !enabled;
        let side = if enabled { "on" } else { "off" };
        let path = format!("{flag_path}/environments/{}/{side}", args.env);
        let sent_ns = clock.now_ns();
        let written = a.send(Method::POST, &path, None).await?;
        let written_ns = clock.now_ns();
        let version = written["version"]
            .as_i64()
            .context("the flip answered no version")?;
        let seen_ns = wait_for(&mut changes, version).await?;
        if flip >= args.warmup {
            observed_us.saturating_record(seen_ns.saturating_sub(sent_ns) / 1_000);
            write_us.saturating_record((written_ns - sent_ns) / 1_000);
        }
    }
    let elapsed_s = (clock.now_ns() - started_ns) as f64 / 1e9;
    reader.abort();
    let cpu = CpuSample::take(None).since(&cpu_before, elapsed_s);
    let report = PropagationReport {
        url_a: args.url_a,
        url_b: args.url_b,
        flag: args.flag,
        flips: args.flips,
        observed_ms: latency(&observed_us),
        write_ms: latency(&write_us),
        bench_cpu_percent: cpu.bench_percent,
        elapsed_s,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// Percentiles of a histogram of microseconds, in milliseconds.
pub fn latency(histogram: &Histogram<u64>) -> Latency {
    let ms = |us: u64| us as f64 / 1_000.0;
    Latency {
        p50: ms(histogram.value_at_quantile(0.50)),
        p95: ms(histogram.value_at_quantile(0.95)),
        p99: ms(histogram.value_at_quantile(0.99)),
        max: ms(histogram.max()),
    }
}

/// One server, with a kept-alive HTTP client (a new connection per flip would time the TCP
/// handshake too).
pub struct Instance {
    base: String,
    key: Option<String>,
    client: reqwest::Client,
}

impl Instance {
    pub fn new(base: &str, key: Option<String>) -> Self {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a default HTTP client builds");
        Self {
            base: base.trim_end_matches('/').to_string(),
            key,
            client,
        }
    }

    /// Sends a request; the JSON body on success, an error carrying the `StatusCode` otherwise.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            return Err(anyhow::Error::msg(status).context(format!("{path}: {text}")));
        }
        Ok(serde_json::from_str(&text)?)
    }
}

/// Forwards `(version, arrival)` of each `flag_changed` frame for `flag` until the socket ends.
async fn read_changes(
    mut socket: Socket,
    flag: String,
    clock: BenchClock,
    observed: mpsc::UnboundedSender<(i64, u64)>,
) {
    while let Ok(Some(frame)) = socket.next().await {
        let arrived_ns = clock.now_ns();
        let Frame::Text(text) = frame else {
            continue;
        };
        let Ok(frame) = serde_json::from_slice::<Value>(text) else {
            continue;
        };
        if frame["kind"] == "flag_changed" && frame["key"] == flag.as_str() {
            let version = frame["version"].as_i64().unwrap_or(0);
            if observed.send((version, arrived_ns)).is_err() {
                return;
            }
        }
    }
}

/// The arrival of the change to `version`, skipping older ones.
async fn wait_for(
    changes: &mut mpsc::UnboundedReceiver<(i64, u64)>,
    version: i64,
) -> anyhow::Result<u64> {
    tokio::time::timeout(OBSERVE_TIMEOUT, async {
        while let Some((seen, arrived_ns)) = changes.recv().await {
            if seen >= version {
                return Ok(arrived_ns);
            }
        }
        anyhow::bail!("B's WebSocket closed")
    })
    .await
    .with_context(|| {
        format!("version {version} was not observed on B within {OBSERVE_TIMEOUT:?}")
    })?
}

fn print_report(r: &PropagationReport) {
    println!(
        "flag propagation: flip on {} -> flag_changed on {}'s /v1/ws",
        r.url_a, r.url_b
    );
    println!(
        "  flips            {} of `{}` in {:.1} s",
        r.flips, r.flag, r.elapsed_s
    );
    let line = |name: &str, l: &Latency| {
        println!(
            "  {name:<16} p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2} ms",
            l.p50, l.p95, l.p99, l.max
        )
    };
    line("flip -> observed", &r.observed_ms);
    line("flip -> response", &r.write_ms);
    if let Some(cpu) = r.bench_cpu_percent {
        println!("  bench cpu        {cpu:.0}%");
    }
}
