//! When a closed breaker trips: consecutive failures, or a failure rate over a time window.
//!
//! `failsafe` supplies the consecutive-failures policy. Its own rate policy is not used: it is
//! an exponential moving average that cannot trip during its first window, compares strictly
//! (`<` the success rate), and reads the standard clock. The rate policy here implements
//! failsafe's `FailurePolicy` over our [`RateWindow`], which counts outcomes lock-free on
//! tokio's clock and trips at `>=` once the minimum calls are reached.

use std::sync::Arc;
use std::time::Duration;

use super::window::RateWindow;

/// When a closed breaker trips.
#[derive(Debug, Clone, PartialEq)]
pub enum FailurePolicy {
    /// After this many failures in a row.
    ConsecutiveFailures(u32),
    /// When failures / calls over the last `window` reach `threshold`, once at least
    /// `minimum_calls` calls were made in it.
    FailureRate {
        threshold: f64,
        minimum_calls: u32,
        window: Duration,
    },
}

/// The window over which the failure rate is shown when the policy counts consecutive failures.
pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);
/// The minimum calls of a rate threshold given by the legacy setting.
pub const DEFAULT_MINIMUM_CALLS: u32 = 10;

impl FailurePolicy {
    pub(crate) fn window(&self) -> Duration {
        match self {
            FailurePolicy::ConsecutiveFailures(_) => DEFAULT_RATE_WINDOW,
            FailurePolicy::FailureRate { window, .. } => *window,
        }
    }

    /// The legacy `CIRCUIT_BREAKER_FAILURE_THRESHOLD`: an integer >= 1 counts consecutive
    /// failures, a number in (0, 1) is a failure rate.
    pub fn parse_legacy_threshold(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let invalid = || {
            format!(
                "CIRCUIT_BREAKER_FAILURE_THRESHOLD=`{raw}` is neither a number of consecutive failures \
                 (an integer >= 1) nor a failure rate (a number between 0 and 1, exclusive)"
            )
        };
        if let Ok(count) = raw.parse::<u32>() {
            return if count >= 1 {
                Ok(FailurePolicy::ConsecutiveFailures(count))
            } else {
                Err(invalid())
            };
        }
        let value: f64 = raw.parse().map_err(|_| invalid())?;
        if value > 0.0 && value < 1.0 {
            Ok(FailurePolicy::FailureRate {
                threshold: value,
                minimum_calls: DEFAULT_MINIMUM_CALLS,
                window: DEFAULT_RATE_WINDOW,
            })
        } else if value >= 1.0 && value.fract() == 0.0 && value <= f64::from(u32::MAX) {
            Ok(FailurePolicy::ConsecutiveFailures(value as u32))
        } else {
            Err(invalid())
        }
    }

    /// The failsafe policy that decides when a closed breaker trips.
    pub(crate) fn trip_policy(
        &self,
        window: Arc<RateWindow>,
    ) -> Box<dyn failsafe::FailurePolicy + Send> {
        // The policy only answers "trip now?"; the open period comes from `Backoff`, which
        // keeps stepping through half-open reopens where failsafe would reuse the last delay.
        let no_delay = failsafe::backoff::constant(Duration::ZERO);
        match *self {
            FailurePolicy::ConsecutiveFailures(n) => {
                Box::new(failsafe::failure_policy::consecutive_failures(n, no_delay))
            }
            FailurePolicy::FailureRate {
                threshold,
                minimum_calls,
                ..
            } => Box::new(RateTrip {
                window,
                threshold,
                minimum_calls,
            }),
        }
    }
}

/// Failure rate over the window, as a failsafe policy. Outcomes are counted lock-free in the
/// window before the policy is asked, so `record_success` has nothing left to do.
struct RateTrip {
    window: Arc<RateWindow>,
    threshold: f64,
    minimum_calls: u32,
}

impl failsafe::FailurePolicy for RateTrip {
    fn record_success(&mut self) {}

    fn mark_dead_on_failure(&mut self) -> Option<Duration> {
        let counts = self.window.counts();
        (counts.calls >= u64::from(self.minimum_calls) && counts.rate() >= self.threshold)
            .then_some(Duration::ZERO)
    }

    fn revived(&mut self) {
        self.window.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::BreakerConfig;

    #[test]
    fn a_legacy_integer_threshold_counts_consecutive_failures() {
        let config = BreakerConfig::from_settings(Some("5"), None, None).unwrap();
        assert_eq!(config.failure_policy, FailurePolicy::ConsecutiveFailures(5));
        assert_eq!(
            FailurePolicy::parse_legacy_threshold(" 3.0 "),
            Ok(FailurePolicy::ConsecutiveFailures(3))
        );
    }

    #[test]
    fn a_legacy_fractional_threshold_is_a_failure_rate_over_a_minute() {
        let config = BreakerConfig::from_settings(Some("0.05"), None, None).unwrap();
        assert_eq!(
            config.failure_policy,
            FailurePolicy::FailureRate {
                threshold: 0.05,
                minimum_calls: 10,
                window: Duration::from_secs(60)
            }
        );
    }

    #[test]
    fn bad_legacy_thresholds_are_refused_with_the_variable_named() {
        for bad in ["0", "1.5", "-1", "abc", "NaN", "0.0", "1e12"] {
            let error = BreakerConfig::from_settings(Some(bad), None, None).unwrap_err();
            assert!(
                error.contains("CIRCUIT_BREAKER_FAILURE_THRESHOLD"),
                "{bad}: {error}"
            );
        }
        assert_eq!(
            BreakerConfig::from_settings(Some("  "), None, None),
            Ok(BreakerConfig::default())
        );
    }
}
