//! The tokio runtime both binaries run on, picked for the CPUs the process may use.
//!
//! With one CPU (a container limited to one core, `taskset -c 0`, a 1-vCPU VM) it is the
//! current-thread runtime; with more, the multi-thread one with a worker per CPU.
//! `SWITCHYARD_RUNTIME` (`auto`, the default; `current_thread`; `multi_thread`) overrides.
//!
//! Why not the multi-thread runtime with one worker: its worker keeps runnable tasks in a
//! local queue of 256 slots and moves the overflow to a global queue that it looks at only
//! every 61st task. A published event wakes every subscriber's task at once; with 1,000
//! subscribers most of them overflow, and the ones that land in the global queue wait several
//! passes over the others. Measured on one core, 1,000 subscribers at 800 events/s (docs/
//! benchmarks.md, session 6): p99 69-133 ms with the one-worker multi-thread runtime, 26-34
//! ms with the current-thread one, whose single run queue is first in, first out; the same
//! CPU either way. Blocking work still goes to the blocking pool (`spawn_blocking`) in both.

use std::num::NonZeroUsize;

use tokio::runtime::{Builder, Runtime};

/// The variable that overrides the choice.
pub const RUNTIME_ENV: &str = "SWITCHYARD_RUNTIME";

/// Which scheduler runs the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    CurrentThread,
    MultiThread,
}

/// The flavor for `setting` (the variable's value, if set) on a machine where the process
/// may use `cpus` CPUs.
pub fn choose(setting: Option<&str>, cpus: usize) -> Result<Flavor, String> {
    match setting.map(str::trim) {
        None | Some("" | "auto") if cpus <= 1 => Ok(Flavor::CurrentThread),
        None | Some("" | "auto") => Ok(Flavor::MultiThread),
        Some("current_thread") => Ok(Flavor::CurrentThread),
        Some("multi_thread") => Ok(Flavor::MultiThread),
        Some(other) => Err(format!(
            "{RUNTIME_ENV}={other:?}: expected auto, current_thread or multi_thread"
        )),
    }
}

/// The runtime for this process (module docs).
pub fn build() -> anyhow::Result<Runtime> {
    let setting = std::env::var(RUNTIME_ENV).ok();
    // Counts the CPUs this process may run on (affinity and cgroup quota).
    let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let mut builder = match choose(setting.as_deref(), cpus).map_err(anyhow::Error::msg)? {
        Flavor::CurrentThread => Builder::new_current_thread(),
        Flavor::MultiThread => Builder::new_multi_thread(),
    };
    Ok(builder.enable_all().build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cpu_runs_on_the_current_thread_unless_told_otherwise() {
        assert_eq!(choose(None, 1), Ok(Flavor::CurrentThread));
        assert_eq!(choose(Some("auto"), 1), Ok(Flavor::CurrentThread));
        assert_eq!(choose(None, 2), Ok(Flavor::MultiThread));
        assert_eq!(choose(Some(""), 8), Ok(Flavor::MultiThread));
        assert_eq!(choose(Some("multi_thread"), 1), Ok(Flavor::MultiThread));
        assert_eq!(choose(Some("current_thread"), 8), Ok(Flavor::CurrentThread));
        let refused = choose(Some("threads"), 2).unwrap_err();
        assert!(
            refused.contains("SWITCHYARD_RUNTIME") && refused.contains("threads"),
            "{refused}"
        );
    }
}
