//! `switchyard-bench evaluate`: evaluation requests per second against a running server, for
//! `POST /v1/evaluate` (every flag) and the OFREP bulk endpoint, plus the bulk endpoint as an
//! OFREP SDK polls it (`If-None-Match` with the ETag it holds -> 304).
//!
//! A closed loop: `--concurrency` workers each send their next request as soon as the last one
//! is answered, for a warm-up and then the measured seconds, one endpoint after the other.
//! Each request evaluates for one of 1,024 targeting keys, so no two consecutive answers are
//! the same. Requests/s is what the server sustains at that concurrency; the latency
//! percentiles are per request under that load. The load tool shares the machine with the
//! server, so its CPU use is reported beside the server's.

use std::sync::Arc;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::task::JoinSet;

use super::propagation::latency;
use super::report::{CpuSample, Latency};
use super::subscriber::{LATENCY_MAX_US, LATENCY_SIGNIFICANT_DIGITS};
use super::{BenchClock, TargetArgs, Window};

/// Targeting keys the requests cycle through.
const CONTEXTS: usize = 1_024;

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Requests in flight at once (closed loop).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub concurrency: u64,
    /// Measured seconds per endpoint.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before each measured window (not counted).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// The endpoints to load, one after the other.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "evaluate,ofrep-bulk,ofrep-bulk-304"
    )]
    pub endpoints: Vec<Endpoint>,
    /// Print one JSON object per endpoint instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Endpoint {
    /// `POST /v1/evaluate` without `flags`: every flag for the context.
    Evaluate,
    /// `POST /ofrep/v1/evaluate/flags`: every flag, OFREP's shape, with an ETag.
    OfrepBulk,
    /// The OFREP bulk endpoint with `If-None-Match` = the context's current ETag: a 304.
    #[value(name = "ofrep-bulk-304")]
    #[serde(rename = "ofrep-bulk-304")]
    OfrepBulk304,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Evaluate => "/v1/evaluate",
            Endpoint::OfrepBulk | Endpoint::OfrepBulk304 => "/ofrep/v1/evaluate/flags",
        }
    }

    fn body(self, n: usize) -> Bytes {
        let body = match self {
            Endpoint::Evaluate => format!(r#"{{"context":{{"targeting_key":"bench-{n}"}}}}"#),
            _ => format!(r#"{{"context":{{"targetingKey":"bench-{n}"}}}}"#),
        };
        Bytes::from(body)
    }
}

#[derive(Debug, Serialize)]
pub struct EvaluateReport {
    pub url: String,
    pub endpoint: Endpoint,
    pub concurrency: u64,
    pub duration_s: f64,
    pub requests: u64,
    pub requests_per_s: f64,
    pub latency_ms: Latency,
    /// Body size of one answer (0 for a 304).
    pub response_bytes: usize,
    pub failed: u64,
    pub first_error: Option<String>,
    pub bench_cpu_percent: Option<f64>,
    pub server_cpu_percent: Option<f64>,
}

pub async fn run(args: EvaluateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.duration > 0.0 && args.warmup >= 0.0,
        "--duration must be positive and --warmup not negative"
    );
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(args.concurrency as usize)
        .build()?;
    for endpoint in args.endpoints.clone() {
        let report = load(&client, &args, endpoint).await?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print_report(&report);
        }
    }
    Ok(())
}

/// What one request needs, prepared before the clock starts: the bodies and, for the 304
/// case, each context's current ETag.
struct Requests {
    url: String,
    key: Option<String>,
    bodies: Vec<Bytes>,
    etags: Vec<Option<String>>,
}

impl Requests {
    async fn prepare(
        client: &reqwest::Client,
        args: &EvaluateArgs,
        endpoint: Endpoint,
    ) -> anyhow::Result<Self> {
        let mut requests = Self {
            url: format!(
                "{}{}",
                args.target.url.trim_end_matches('/'),
                endpoint.path()
            ),
            key: args.target.key.clone(),
            bodies: (0..CONTEXTS).map(|n| endpoint.body(n)).collect(),
            etags: vec![None; CONTEXTS],
        };
        if endpoint == Endpoint::OfrepBulk304 {
            for n in 0..CONTEXTS {
                let response = requests.send(client, n).await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "{}: {}",
                    requests.url,
                    response.status()
                );
                requests.etags[n] = response
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .map(String::from);
            }
        }
        Ok(requests)
    }

    async fn send(&self, client: &reqwest::Client, n: usize) -> reqwest::Result<reqwest::Response> {
        let mut request = client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(self.bodies[n].clone());
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        if let Some(etag) = &self.etags[n] {
            request = request.header("if-none-match", etag);
        }
        request.send().await
    }
}

/// What one worker saw in the measured window.
struct Tally {
    latency_us: Histogram<u64>,
    failed: u64,
    first_error: Option<String>,
    response_bytes: usize,
}

async fn load(
    client: &reqwest::Client,
    args: &EvaluateArgs,
    endpoint: Endpoint,
) -> anyhow::Result<EvaluateReport> {
    let requests = Arc::new(Requests::prepare(client, args, endpoint).await?);
    let clock = BenchClock::start();
    let window = Window {
        start_ns: (args.warmup * 1e9) as u64,
        end_ns: ((args.warmup + args.duration) * 1e9) as u64,
    };
    let mut workers = JoinSet::new();
    for worker in 0..args.concurrency as usize {
        let (client, requests) = (client.clone(), requests.clone());
        workers.spawn(async move { run_worker(&client, &requests, worker, clock, window).await });
    }
    tokio::time::sleep_until(clock.instant_at(window.start_ns)).await;
    let cpu_before = CpuSample::take(args.target.server_pid);
    tokio::time::sleep_until(clock.instant_at(window.end_ns)).await;
    let cpu = CpuSample::take(args.target.server_pid).since(&cpu_before, args.duration);
    let mut merged =
        Histogram::<u64>::new_with_bounds(1, LATENCY_MAX_US, LATENCY_SIGNIFICANT_DIGITS)?;
    let (mut failed, mut first_error, mut response_bytes) = (0, None, 0);
    while let Some(tally) = workers.join_next().await {
        let tally = tally?;
        merged.add(&tally.latency_us)?;
        failed += tally.failed;
        first_error = first_error.or(tally.first_error);
        response_bytes = response_bytes.max(tally.response_bytes);
    }
    Ok(EvaluateReport {
        url: args.target.url.clone(),
        endpoint,
        concurrency: args.concurrency,
        duration_s: args.duration,
        requests: merged.len(),
        requests_per_s: merged.len() as f64 / args.duration,
        latency_ms: latency(&merged),
        response_bytes,
        failed,
        first_error,
        bench_cpu_percent: cpu.bench_percent,
        server_cpu_percent: cpu.server_percent,
    })
}

/// Sends requests back to back until the window ends; counts those sent inside it.
async fn run_worker(
    client: &reqwest::Client,
    requests: &Requests,
    worker: usize,
    clock: BenchClock,
    window: Window,
) -> Tally {
    let mut tally = Tally {
        latency_us: Histogram::new_with_bounds(1, LATENCY_MAX_US, LATENCY_SIGNIFICANT_DIGITS)
            .expect("valid bounds"),
        failed: 0,
        first_error: None,
        response_bytes: 0,
    };
    let mut n = worker * 61;
    loop {
        let sent_ns = clock.now_ns();
        if sent_ns >= window.end_ns {
            return tally;
        }
        n = (n + 1) % CONTEXTS;
        let outcome = match requests.send(client, n).await {
            Ok(response) if response.status().is_success() || response.status().as_u16() == 304 => {
                response
                    .bytes()
                    .await
                    .map(|body| body.len())
                    .map_err(|e| e.to_string())
            }
            Ok(response) => Err(format!("{}", response.status())),
            Err(e) => Err(e.to_string()),
        };
        if !window.contains(sent_ns) {
            continue;
        }
        match outcome {
            Ok(bytes) => {
                tally
                    .latency_us
                    .saturating_record((clock.now_ns() - sent_ns) / 1_000);
                tally.response_bytes = bytes;
            }
            Err(error) => {
                tally.failed += 1;
                tally.first_error.get_or_insert(error);
            }
        }
    }
}

fn print_report(r: &EvaluateReport) {
    let percent = |p: Option<f64>| p.map_or("-".into(), |p| format!("{p:.0}%"));
    println!(
        "{:?} against {} ({} in flight, {} s)",
        r.endpoint, r.url, r.concurrency, r.duration_s
    );
    println!(
        "  requests         {:>10}  {:>10.0} /s  ({} B each)",
        r.requests, r.requests_per_s, r.response_bytes
    );
    let l = &r.latency_ms;
    println!(
        "  latency ms       p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}",
        l.p50, l.p95, l.p99, l.max
    );
    println!(
        "  cpu              bench {}, server {}",
        percent(r.bench_cpu_percent),
        percent(r.server_cpu_percent)
    );
    if r.failed > 0 {
        println!(
            "  failed           {} (first: {})",
            r.failed,
            r.first_error.as_deref().unwrap_or("-")
        );
    }
}
