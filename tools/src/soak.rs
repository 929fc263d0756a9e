//! What the soak and stalled-subscriber drills (issue 11) add to a fan-out run, in one place so
//! `fanout` only says when: `--dual` (both paths, then the Realtime rows counted: [`dual`]),
//! `--stalled` (subscribers that never read: [`stalled`]) and the server's resident memory
//! sampled every `--rss-every` seconds (with `--server-pid`).

use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::dual::{self, RealtimeReport};
use super::fanout::FanoutArgs;
use super::rest::Rest;
use super::stalled::{Stalled, StalledReport};
use super::subscriber::Endpoint;
use super::{BenchClock, Window, procfs};

/// What the probes found; each is absent when its option was not given.
#[derive(Debug, Default, Serialize)]
pub struct SoakFindings {
    /// The server's resident memory over the run (with `--server-pid`).
    pub rss: Option<RssReport>,
    /// The subscribers that never read (`--stalled`), left out of every other figure.
    pub stalled: Option<StalledReport>,
    /// The Realtime side (`--dual` or `--realtime-database-url`).
    pub realtime: Option<RealtimeReport>,
}

pub struct Probes {
    rest: Rest,
    server_pid: Option<u32>,
    rss_every: Duration,
    /// Every event's `source`, unique per run.
    pub source: String,
    realtime_before: Option<dual::Counters>,
    realtime_database_url: Option<String>,
    stalled: Option<Stalled>,
    sampling: CancellationToken,
    rss_samples: Option<JoinHandle<Vec<(f64, u64)>>>,
    pending: Option<JoinHandle<u64>>,
    window_start_s: f64,
    rss_warmed: Option<u64>,
    rss_end: Option<u64>,
}

impl Probes {
    /// Before anything connects: dual mode, and the Realtime counters to compare against.
    pub async fn prepare(args: &FanoutArgs) -> anyhow::Result<Self> {
        let rest = Rest::new(&args.target.url, args.target.key.as_deref());
        if args.dual {
            dual::enable(&rest).await?;
        }
        let realtime_before = if args.dual || args.realtime_database_url.is_some() {
            Some(dual::Counters::read(&rest).await?)
        } else {
            None
        };
        let run = uuid::Uuid::new_v4().simple().to_string();
        Ok(Self {
            rest,
            server_pid: args.target.server_pid,
            rss_every: Duration::from_secs_f64(args.rss_every),
            source: format!("switchyard-bench-{}", &run[..12]),
            realtime_before,
            realtime_database_url: args.realtime_database_url.clone(),
            stalled: None,
            sampling: CancellationToken::new(),
            rss_samples: None,
            pending: None,
            window_start_s: 0.0,
            rss_warmed: None,
            rss_end: None,
        })
    }

    /// `count` subscribers that never read, on `endpoint`.
    pub async fn open_stalled(&mut self, endpoint: &Endpoint, count: u64) -> anyhow::Result<()> {
        if count > 0 {
            self.stalled = Some(Stalled::open(endpoint, count, &self.rest).await?);
        }
        Ok(())
    }

    /// Starts sampling the server's memory and the Realtime backlog.
    pub fn start(&mut self, clock: BenchClock, window: Window) {
        self.window_start_s = window.start_ns as f64 / 1e9;
        self.rss_samples = self
            .server_pid
            .map(|pid| procfs::sample_rss(pid, self.rss_every, clock, self.sampling.clone()));
        if self.realtime_before.is_some() {
            let watch = dual::watch_pending(self.rest.clone(), self.sampling.clone());
            self.pending = Some(watch);
        }
    }

    pub fn window_started(&mut self) {
        self.rss_warmed = self.server_pid.and_then(|pid| procfs::rss_kib(pid).ok());
    }

    pub fn window_ended(&mut self, rss_kib: Option<u64>) {
        self.rss_end = rss_kib;
        self.sampling.cancel();
    }

    /// After the subscribers stopped: what the stalled ones and the Realtime path show.
    /// `realtime_acks` are the events the server said it routed to Realtime.
    pub async fn finish(self, realtime_acks: u64) -> anyhow::Result<SoakFindings> {
        let rss = match (self.rss_warmed, self.rss_end, self.rss_samples) {
            (Some(warmed), Some(end), Some(samples)) => Some(RssReport::new(
                warmed,
                end,
                self.window_start_s,
                samples.await?,
            )),
            _ => None,
        };
        let stalled = match self.stalled {
            Some(stalled) => Some(stalled.finish(&self.rest).await?),
            None => None,
        };
        let realtime = match (self.realtime_before, self.pending) {
            (Some(before), Some(pending)) => Some(
                dual::settle_and_count(
                    &self.rest,
                    &before,
                    realtime_acks,
                    pending.await?,
                    &self.source,
                    self.realtime_database_url.as_deref(),
                )
                .await?,
            ),
            _ => None,
        };
        Ok(SoakFindings {
            rss,
            stalled,
            realtime,
        })
    }
}

/// The server's resident memory: at the end of the warm-up, at the end of the measured window,
/// the most seen, and how it moved in between.
#[derive(Debug, Serialize)]
pub struct RssReport {
    pub warmed_kib: u64,
    pub end_kib: u64,
    pub max_kib: u64,
    /// `(end - warmed) / warmed`, in percent.
    pub growth_percent: f64,
    /// Least-squares slope of the samples taken in the measured window, KiB per minute: a
    /// steady climb shows here even when the end happens to land on a dip.
    pub slope_kib_per_min: Option<f64>,
    /// (seconds since the bench started, KiB).
    pub samples: Vec<(f64, u64)>,
}

impl RssReport {
    pub fn new(
        warmed_kib: u64,
        end_kib: u64,
        window_start_s: f64,
        samples: Vec<(f64, u64)>,
    ) -> Self {
        let max_kib = samples
            .iter()
            .map(|s| s.1)
            .chain([warmed_kib, end_kib])
            .max()
            .unwrap_or(0);
        let measured: Vec<_> = samples.iter().filter(|s| s.0 >= window_start_s).collect();
        let slope_kib_per_min = (measured.len() >= 2).then(|| {
            let n = measured.len() as f64;
            let mean_t = measured.iter().map(|s| s.0).sum::<f64>() / n;
            let mean_k = measured.iter().map(|s| s.1 as f64).sum::<f64>() / n;
            let (mut cov, mut var) = (0.0, 0.0);
            for (t, k) in &measured {
                cov += (t - mean_t) * (*k as f64 - mean_k);
                var += (t - mean_t) * (t - mean_t);
            }
            if var > 0.0 { cov / var * 60.0 } else { 0.0 }
        });
        Self {
            warmed_kib,
            end_kib,
            max_kib,
            growth_percent: (end_kib as f64 - warmed_kib as f64) / warmed_kib.max(1) as f64 * 100.0,
            slope_kib_per_min,
            samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_growth_is_measured_from_the_end_of_the_warm_up() {
        // Warm-up samples (before 60 s) do not count towards the slope.
        let samples = vec![
            (10.0, 5_000),
            (60.0, 10_000),
            (120.0, 10_100),
            (180.0, 10_200),
        ];
        let rss = RssReport::new(10_000, 10_200, 60.0, samples);
        assert_eq!(rss.max_kib, 10_200);
        assert!(
            (rss.growth_percent - 2.0).abs() < 1e-9,
            "{}",
            rss.growth_percent
        );
        let slope = rss.slope_kib_per_min.unwrap();
        assert!((slope - 100.0).abs() < 1e-6, "{slope}");
        let flat = RssReport::new(8_000, 7_600, 0.0, vec![(1.0, 8_000)]);
        assert!((flat.growth_percent + 5.0).abs() < 1e-9);
        assert_eq!(flat.slope_kib_per_min, None);
    }
}
