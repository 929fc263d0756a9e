//! What the benches read from Linux's /proc: a process's resident memory (once, or sampled
//! over a run) and CPU time, and this process's open-files limit.

use std::io;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::BenchClock;

/// /proc reports CPU time in clock ticks of USER_HZ, which is 100 on every Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// `VmRSS` of a process, in KiB.
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_rss_kib(&status).ok_or_else(|| invalid(format!("no VmRSS in /proc/{pid}/status")))
}

/// `VmRSS` of `pid` every `every` until `stop`, as (seconds since `clock`'s origin, KiB); a
/// reading that fails (the process is gone) ends the sampling.
pub fn sample_rss(
    pid: u32,
    every: Duration,
    clock: BenchClock,
    stop: CancellationToken,
) -> JoinHandle<Vec<(f64, u64)>> {
    tokio::spawn(async move {
        let mut samples = Vec::new();
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticks.tick() => {}
            }
            match rss_kib(pid) {
                Ok(kib) => samples.push((clock.now_ns() as f64 / 1e9, kib)),
                Err(_) => break,
            }
        }
        samples
    })
}

/// User plus system CPU time of a process (`None`: this one), in seconds.
pub fn cpu_seconds(pid: Option<u32>) -> io::Result<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(&path)?;
    let ticks = parse_cpu_ticks(&stat).ok_or_else(|| invalid(format!("unreadable {path}")))?;
    Ok(ticks as f64 / TICKS_PER_SECOND)
}

/// The soft limit on open files of this process.
pub fn open_files_limit() -> io::Result<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    parse_open_files_limit(&limits).ok_or_else(|| invalid("no open-files line".into()))
}

fn parse_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    // After it, field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn parse_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    // "unlimited" is as good as any number.
    Some(soft.parse().unwrap_or(u64::MAX))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_the_benches_need() {
        assert_eq!(
            parse_rss_kib("Name:\tx\nVmPeak:\t 9 kB\nVmRSS:\t   12345 kB\n"),
            Some(12345)
        );
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 17 0 0 20 0 9 0";
        assert_eq!(parse_cpu_ticks(stat), Some(267));
        let limits = "Limit Soft Limit Hard Limit Units\n\
                      Max open files            20000                20000                files\n";
        assert_eq!(parse_open_files_limit(limits), Some(20000));
    }

    #[test]
    fn this_process_can_be_read() {
        assert!(cpu_seconds(None).unwrap() >= 0.0);
        assert!(rss_kib(std::process::id()).unwrap() > 0);
        assert!(open_files_limit().unwrap() > 0);
    }
}
