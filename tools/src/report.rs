//! What `bench fanout` reports: every subscriber's delivery merged, the CPU use of the bench and
//! the server over the measured window, and the table or JSON object printed at the end.

use serde::Serialize;

use super::procfs;
use super::soak::SoakFindings;
use super::subscriber::{self, Delivery};

#[derive(Debug, Serialize)]
pub struct FanoutReport {
    pub url: String,
    pub subscribers: u64,
    pub rate: f64,
    pub batch: u64,
    pub payload_bytes: u64,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub connect_s: f64,
    pub published: u64,
    pub published_per_s: f64,
    pub expected: u64,
    pub delivered: u64,
    pub delivered_per_s: f64,
    pub delivery_ratio: f64,
    pub latency_ms: Latency,
    pub lagged_notices: u64,
    pub disconnected: u64,
    /// Subscribers that received fewer measured events than were published.
    pub short_subscribers: u64,
    /// The fewest measured events one subscriber received.
    pub fewest_delivered: u64,
    pub failed_requests: u64,
    pub first_error: Option<String>,
    pub publisher_late_max_ms: f64,
    pub bench_cpu_percent: Option<f64>,
    pub server_cpu_percent: Option<f64>,
    pub server_rss_kib: Option<u64>,
    /// The drills' findings: `rss`, `stalled`, `realtime`.
    #[serde(flatten)]
    pub soak: SoakFindings,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// Every subscriber's delivery, merged.
pub struct Merged {
    pub delivered: u64,
    /// The run's [`subscriber::Tally`] holds the latencies: set from it once all have ended.
    pub latency_us: hdrhistogram::Histogram<u64>,
    pub lagged_notices: u64,
    pub disconnected: u64,
    pub first_disconnect: Option<String>,
    pub last_arrival_ns: u64,
    pub short_subscribers: u64,
    pub fewest_delivered: Option<u64>,
}

impl Merged {
    pub fn new() -> Self {
        Self {
            delivered: 0,
            latency_us: hdrhistogram::Histogram::new_with_bounds(
                1,
                subscriber::LATENCY_MAX_US,
                subscriber::LATENCY_SIGNIFICANT_DIGITS,
            )
            .expect("valid bounds"),
            lagged_notices: 0,
            disconnected: 0,
            first_disconnect: None,
            last_arrival_ns: 0,
            short_subscribers: 0,
            fewest_delivered: None,
        }
    }

    /// Adds one subscriber's delivery; `expected` is what each subscriber should have seen.
    pub fn add(&mut self, delivery: Delivery, expected: u64) {
        self.delivered += delivery.delivered;
        self.short_subscribers += u64::from(delivery.delivered < expected);
        let fewest = self.fewest_delivered.get_or_insert(delivery.delivered);
        *fewest = (*fewest).min(delivery.delivered);
        self.lagged_notices += delivery.lagged_notices;
        self.last_arrival_ns = self.last_arrival_ns.max(delivery.last_arrival_ns);
        if let Some(why) = delivery.ended_early {
            self.disconnected += 1;
            self.first_disconnect
                .get_or_insert(format!("a subscriber disconnected: {why}"));
        }
    }
}

/// CPU time of this process and of the server, to tell whether the load tool kept up.
pub struct CpuSample {
    bench_s: Option<f64>,
    server_s: Option<f64>,
}

pub struct CpuUse {
    pub bench_percent: Option<f64>,
    pub server_percent: Option<f64>,
}

impl CpuSample {
    pub fn take(server_pid: Option<u32>) -> Self {
        Self {
            bench_s: procfs::cpu_seconds(None).ok(),
            server_s: server_pid.and_then(|pid| procfs::cpu_seconds(Some(pid)).ok()),
        }
    }

    pub fn since(&self, before: &Self, elapsed_s: f64) -> CpuUse {
        let percent =
            |after: Option<f64>, before: Option<f64>| Some((after? - before?) / elapsed_s * 100.0);
        CpuUse {
            bench_percent: percent(self.bench_s, before.bench_s),
            server_percent: percent(self.server_s, before.server_s),
        }
    }
}

pub fn print_table(r: &FanoutReport) {
    let percent = |p: Option<f64>| p.map_or("-".into(), |p| format!("{p:.0}%"));
    println!("fan-out against {}", r.url);
    println!(
        "  subscribers      {} (connected and subscribed in {:.1} s)",
        r.subscribers, r.connect_s
    );
    println!(
        "  offered          {} events/s, batch {}, payload {} B, {} s measured after {} s warm-up",
        r.rate, r.batch, r.payload_bytes, r.duration_s, r.warmup_s
    );
    println!(
        "  published        {:>12} events  {:>12.1} /s",
        r.published, r.published_per_s
    );
    println!(
        "  delivered        {:>12} msgs    {:>12.1} /s",
        r.delivered, r.delivered_per_s
    );
    println!(
        "  delivery ratio   {:>11.3}%  ({} expected)",
        r.delivery_ratio * 100.0,
        r.expected
    );
    let l = &r.latency_ms;
    println!(
        "  latency ms       p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}",
        l.p50, l.p95, l.p99, l.max
    );
    println!(
        "  trouble          {} lagged notices, {} disconnected, {} failed publishes, \
         {} subscribers short (fewest {} of {})",
        r.lagged_notices,
        r.disconnected,
        r.failed_requests,
        r.short_subscribers,
        r.fewest_delivered,
        r.published
    );
    if let Some(error) = &r.first_error {
        println!("  first error      {error}");
    }
    println!(
        "  cpu              bench {}, server {}; publisher late by {:.1} ms at worst",
        percent(r.bench_cpu_percent),
        percent(r.server_cpu_percent),
        r.publisher_late_max_ms
    );
    if let Some(rss) = r.server_rss_kib {
        println!("  server rss       {rss} KiB");
    }
    if let Some(rss) = &r.soak.rss {
        let slope = rss
            .slope_kib_per_min
            .map_or("-".into(), |s| format!("{s:+.0}"));
        println!(
            "  rss over run     {} KiB after warm-up, {} KiB at the end ({:+.2}%), max {} KiB, \
             slope {slope} KiB/min ({} samples)",
            rss.warmed_kib,
            rss.end_kib,
            rss.growth_percent,
            rss.max_kib,
            rss.samples.len()
        );
    }
    if let Some(s) = &r.soak.stalled {
        println!(
            "  stalled          {} never read: {} closed by the server, {} still open{}",
            s.subscribers,
            s.closed,
            s.still_open,
            s.first_end
                .as_ref()
                .map_or(String::new(), |e| format!(" (first seen as: {e})"))
        );
        for (series, count) in &s.server_closes {
            println!("  server counted   {series} +{count}");
        }
    }
    if let Some(rt) = &r.soak.realtime {
        let c = &rt.counters;
        let rows = rt
            .rows
            .map_or("not counted (no --realtime-database-url)".into(), |rows| {
                format!("{rows} rows, {} lost", rt.lost.unwrap_or(0))
            });
        println!(
            "  realtime         {} events acked for Realtime: {rows} (source {})",
            rt.expected, rt.source
        );
        println!(
            "  realtime path    committed {}, dropped {}, quarantined {}, dead-lettered {}; \
             pending max {}, {} at the end; settled {:.1} s after the last publish",
            c.committed,
            c.dropped,
            c.quarantined,
            c.dead_lettered,
            rt.pending_max,
            c.pending,
            rt.settle_s
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Window;
    use crate::subscriber::Tally;

    #[test]
    fn merging_keeps_every_subscribers_latencies() {
        let window = Window {
            start_ns: 0,
            end_ns: u64::MAX,
        };
        let counted = Tally::new();
        let frame = |sent_at_ns: u64| {
            format!(
                r#"{{"op":"event","offset":1,"event":{{"data":{{"sent_at_ns":{sent_at_ns}}}}}}}"#
            )
        };
        let mut merged = Merged::new();
        for latency_ms in [2, 40] {
            let mut delivery = Delivery::new();
            delivery.observe(
                frame(1_000_000).as_bytes(),
                1_000_000 + latency_ms * 1_000_000,
                &window,
                &counted,
            );
            merged.add(delivery, 1);
        }
        merged.latency_us = counted.latencies();
        assert_eq!(merged.delivered, 2);
        assert_eq!(
            (merged.short_subscribers, merged.fewest_delivered),
            (0, Some(1))
        );
        assert_eq!(merged.latency_us.len(), 2);
        let p50_ms = merged.latency_us.value_at_quantile(0.5) as f64 / 1_000.0;
        let max_ms = merged.latency_us.max() as f64 / 1_000.0;
        assert!((1.98..2.03).contains(&p50_ms), "{p50_ms}");
        assert!((39.6..40.4).contains(&max_ms), "{max_ms}");
    }
}
