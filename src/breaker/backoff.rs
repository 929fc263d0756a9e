//! The open periods: failsafe's exponential steps with our jitter on top.

use std::time::Duration;

use super::config::BreakerConfig;

/// The open periods: failsafe's exponential steps (or our own doubling where failsafe cannot:
/// it panics under 1 s and counts whole seconds), with jitter, restarted when the breaker closes.
pub(crate) struct Backoff {
    steps: Steps,
    fresh: Steps,
    jitter: f64,
    max: Duration,
}

#[derive(Clone)]
enum Steps {
    Failsafe(failsafe::backoff::Exponential),
    Doubling { next: Duration, max: Duration },
}

impl Iterator for Steps {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        match self {
            Steps::Failsafe(steps) => steps.next(),
            Steps::Doubling { next, max } => {
                let step = *next;
                *next = next.saturating_mul(2).min(*max);
                Some(step)
            }
        }
    }
}

impl Backoff {
    pub(crate) fn new(config: &BreakerConfig) -> Self {
        let (initial, max) = (config.backoff_initial, config.backoff_max);
        let whole_seconds = initial.subsec_nanos() == 0 && max.subsec_nanos() == 0;
        let steps = if whole_seconds && initial.as_secs() >= 1 {
            Steps::Failsafe(failsafe::backoff::exponential(initial, max))
        } else {
            Steps::Doubling { next: initial, max }
        };
        Self {
            fresh: steps.clone(),
            steps,
            jitter: config.jitter,
            max,
        }
    }

    /// The next open period.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let step = self.steps.next().unwrap_or(self.max);
        if self.jitter <= 0.0 {
            return step;
        }
        let factor = 1.0 + rand::random_range(-self.jitter..=self.jitter);
        step.mul_f64(factor).min(self.max)
    }

    /// Back to the first step (the breaker closed).
    pub(crate) fn restart(&mut self) {
        self.steps = self.fresh.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_restarts() {
        let config = BreakerConfig {
            jitter: 0.0,
            backoff_max: Duration::from_secs(8),
            ..BreakerConfig::default()
        };
        let mut backoff = Backoff::new(&config);
        let steps: Vec<u64> = (0..5).map(|_| backoff.next_delay().as_secs()).collect();
        assert_eq!(steps, [1, 2, 4, 8, 8]);
        backoff.restart();
        assert_eq!(backoff.next_delay(), Duration::from_secs(1));
        let sub_second = BreakerConfig {
            backoff_initial: Duration::from_millis(10),
            ..config
        };
        let mut backoff = Backoff::new(&sub_second);
        assert_eq!(backoff.next_delay(), Duration::from_millis(10));
        assert_eq!(backoff.next_delay(), Duration::from_millis(20));
    }

    #[test]
    fn jitter_stays_within_its_fraction_and_under_the_cap() {
        let mut backoff = Backoff::new(&BreakerConfig::default());
        for _ in 0..100 {
            let first = backoff.next_delay();
            assert!((900..=1100).contains(&first.as_millis()), "{first:?}");
            backoff.restart();
        }
        for _ in 0..20 {
            assert!(backoff.next_delay() <= Duration::from_secs(60));
        }
    }
}
