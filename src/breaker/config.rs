//! A breaker's configuration: the legacy system's numbers as defaults, the legacy settings
//! that change them, validation, and the view the status shows.

use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use super::policy::FailurePolicy;

/// Everything that tunes a breaker. `Default` is the legacy system's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    pub failure_policy: FailurePolicy,
    /// Every call gets this long; a call that takes longer is a failure.
    pub call_timeout: Duration,
    /// The first open period; each reopen from half-open doubles it, up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Each open period is the step times a random factor in `1 ± jitter`, capped at the max.
    pub jitter: f64,
    /// Trial calls admitted at once while half-open.
    pub half_open_permits: u32,
    /// Successful trial calls that close the breaker.
    pub half_open_successes: u32,
    /// The stall rule: a call that times out trips the breaker at once when no call has
    /// succeeded since it started, that is when the target made no progress for a whole call
    /// timeout. A blackholed target then opens the breaker one timeout after it stopped
    /// answering (5 s by default) instead of `threshold x timeout` (25 s), because the Realtime
    /// writer is sequential and each of those timeouts would be served in turn while dashboards
    /// stay on a dead path. Calls that fail fast, and timeouts while other calls still succeed,
    /// are judged by the failure policy alone (resilience4j's slow-call rate is the model:
    /// here one slow call with no success beside it is a rate of 100%).
    pub stall_trip: bool,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_policy: FailurePolicy::ConsecutiveFailures(5),
            call_timeout: Duration::from_millis(5000),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            jitter: 0.1,
            half_open_permits: 3,
            half_open_successes: 2,
            stall_trip: true,
        }
    }
}

impl BreakerConfig {
    /// The defaults changed by the legacy settings: `CIRCUIT_BREAKER_FAILURE_THRESHOLD`,
    /// `CIRCUIT_BREAKER_RECOVERY_TIME_S` (the longest open period) and `MONITORING_TIMEOUT_MS`.
    pub fn from_settings(
        failure_threshold: Option<&str>,
        recovery_time_s: Option<u64>,
        timeout_ms: Option<u64>,
    ) -> Result<Self, String> {
        let mut config = Self::default();
        if let Some(raw) = failure_threshold.filter(|raw| !raw.trim().is_empty()) {
            config.failure_policy = FailurePolicy::parse_legacy_threshold(raw)?;
        }
        match recovery_time_s {
            Some(0) => {
                return Err("CIRCUIT_BREAKER_RECOVERY_TIME_S must be at least 1 second".into());
            }
            Some(seconds) => {
                config.backoff_max = Duration::from_secs(seconds);
                config.backoff_initial = config.backoff_initial.min(config.backoff_max);
            }
            None => {}
        }
        match timeout_ms {
            Some(0) => return Err("MONITORING_TIMEOUT_MS must be at least 1 millisecond".into()),
            Some(ms) => config.call_timeout = Duration::from_millis(ms),
            None => {}
        }
        config.validate()?;
        Ok(config)
    }

    /// Refuses settings the breaker cannot honour.
    pub fn validate(&self) -> Result<(), String> {
        match self.failure_policy {
            FailurePolicy::ConsecutiveFailures(0) => {
                return Err("the consecutive failure count must be at least 1".into());
            }
            FailurePolicy::FailureRate {
                threshold,
                minimum_calls,
                window,
            } => {
                if !(threshold > 0.0 && threshold <= 1.0) {
                    return Err(format!(
                        "the failure rate threshold {threshold} is not in (0, 1]"
                    ));
                }
                if minimum_calls == 0 || window.is_zero() {
                    return Err("a failure rate needs minimum_calls >= 1 and a window > 0".into());
                }
            }
            FailurePolicy::ConsecutiveFailures(_) => {}
        }
        if self.call_timeout.is_zero() || self.backoff_initial.is_zero() {
            return Err("the call timeout and the initial backoff must be positive".into());
        }
        if self.backoff_max < self.backoff_initial {
            return Err("the longest backoff is shorter than the first".into());
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(format!("jitter {} is not in [0, 1)", self.jitter));
        }
        if self.half_open_permits == 0 || self.half_open_successes == 0 {
            return Err("half-open permits and successes must be at least 1".into());
        }
        Ok(())
    }

    /// Brings a configuration that `validate` would refuse into range.
    pub(crate) fn sanitized(self) -> Self {
        let mut config = self;
        if let Err(problem) = config.validate() {
            tracing::warn!(%problem, "breaker configuration out of range; clamping it");
            let defaults = BreakerConfig::default();
            let unusable_policy = match config.failure_policy {
                FailurePolicy::ConsecutiveFailures(n) => n == 0,
                FailurePolicy::FailureRate {
                    threshold,
                    minimum_calls,
                    window,
                } => {
                    !(threshold > 0.0 && threshold <= 1.0) || minimum_calls == 0 || window.is_zero()
                }
            };
            if unusable_policy {
                config.failure_policy = defaults.failure_policy.clone();
            }
            if config.call_timeout.is_zero() {
                config.call_timeout = defaults.call_timeout;
            }
            if config.backoff_initial.is_zero() {
                config.backoff_initial = defaults.backoff_initial;
            }
            config.backoff_max = config.backoff_max.max(config.backoff_initial);
            config.jitter = config.jitter.clamp(0.0, 0.99);
            config.half_open_permits = config.half_open_permits.max(1);
            config.half_open_successes = config.half_open_successes.max(1);
        }
        config
    }

    /// The configuration as the status shows it.
    pub fn view(&self) -> ConfigView {
        let (kind, consecutive_failures, threshold, minimum_calls) = match self.failure_policy {
            FailurePolicy::ConsecutiveFailures(n) => ("consecutive_failures", Some(n), None, None),
            FailurePolicy::FailureRate {
                threshold,
                minimum_calls,
                ..
            } => ("failure_rate", None, Some(threshold), Some(minimum_calls)),
        };
        ConfigView {
            failure_policy: kind,
            consecutive_failures,
            failure_rate_threshold: threshold,
            minimum_calls,
            window_ms: millis(self.failure_policy.window()),
            call_timeout_ms: millis(self.call_timeout),
            backoff_initial_ms: millis(self.backoff_initial),
            backoff_max_ms: millis(self.backoff_max),
            jitter: self.jitter,
            half_open_permits: self.half_open_permits,
            half_open_successes: self.half_open_successes,
            stall_trip: self.stall_trip,
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A breaker's configuration in the status document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConfigView {
    /// `consecutive_failures` or `failure_rate`.
    pub failure_policy: &'static str,
    pub consecutive_failures: Option<u32>,
    pub failure_rate_threshold: Option<f64>,
    pub minimum_calls: Option<u32>,
    /// The window of the failure rate (shown in the status for either policy).
    pub window_ms: u64,
    pub call_timeout_ms: u64,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    pub jitter: f64,
    pub half_open_permits: u32,
    pub half_open_successes: u32,
    /// Whether a timeout with no success since the call started trips at once.
    pub stall_trip: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_time_caps_the_backoff_and_the_timeout_bounds_each_call() {
        let config = BreakerConfig::from_settings(None, Some(30), Some(2500)).unwrap();
        assert_eq!(config.backoff_max, Duration::from_secs(30));
        assert_eq!(config.call_timeout, Duration::from_millis(2500));
        assert!(BreakerConfig::from_settings(None, Some(0), None).is_err());
        assert!(BreakerConfig::from_settings(None, None, Some(0)).is_err());
    }

    #[test]
    fn the_defaults_are_the_legacy_numbers() {
        let config = BreakerConfig::default();
        assert_eq!(config.failure_policy, FailurePolicy::ConsecutiveFailures(5));
        assert_eq!(config.call_timeout, Duration::from_secs(5));
        assert_eq!(
            (config.half_open_permits, config.half_open_successes),
            (3, 2)
        );
        assert_eq!(config.validate(), Ok(()));
    }
}
