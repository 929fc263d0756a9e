//! The breaker's state machine on tokio's paused clock: trips, the timer's probe, the backoff
//! steps, the half-open permits, forced modes. Paused time auto-advances to the next timer when
//! every task is idle, so waiting for a transition takes no wall-clock time and the elapsed
//! test time is exactly the breaker's delay.

use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;

/// The defaults without jitter, so open periods are exact.
pub(super) fn exact() -> BreakerConfig {
    BreakerConfig {
        jitter: 0.0,
        ..BreakerConfig::default()
    }
}

pub(super) fn breaker(config: BreakerConfig) -> (Breaker, broadcast::Receiver<Transition>) {
    let breaker = Breaker::start("test", config, CancellationToken::new());
    let transitions = breaker.subscribe();
    (breaker, transitions)
}

pub(super) async fn succeed(breaker: &Breaker) -> Result<(), BreakerError<&'static str>> {
    breaker.call(|| async { Ok(()) }).await
}

pub(super) async fn fail(breaker: &Breaker) -> Result<(), BreakerError<&'static str>> {
    breaker.call(|| async { Err("boom") }).await
}

pub(super) async fn next(
    transitions: &mut broadcast::Receiver<Transition>,
) -> (BreakerState, BreakerState) {
    let transition = transitions.recv().await.expect("a transition");
    (transition.from, transition.to)
}

/// Trips a fresh default breaker with five failures.
pub(super) async fn trip(breaker: &Breaker, transitions: &mut broadcast::Receiver<Transition>) {
    for _ in 0..5 {
        assert!(matches!(
            fail(breaker).await,
            Err(BreakerError::Failed("boom"))
        ));
    }
    assert_eq!(
        next(transitions).await,
        (BreakerState::Closed, BreakerState::Open)
    );
}

use BreakerState::{Closed, HalfOpen, Open};

#[tokio::test(start_paused = true)]
async fn trips_on_the_fifth_consecutive_failure_and_a_success_resets_the_count() {
    let (breaker, mut transitions) = breaker(exact());
    for _ in 0..4 {
        fail(&breaker).await.unwrap_err();
    }
    succeed(&breaker).await.unwrap();
    for _ in 0..4 {
        fail(&breaker).await.unwrap_err();
    }
    assert_eq!(breaker.state(), Closed);
    assert_eq!(breaker.status().consecutive_failures, 4);
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), Open);
    let transition = transitions.recv().await.unwrap();
    assert_eq!((transition.from, transition.to), (Closed, Open));
    assert_eq!(
        transition.reason,
        "5 consecutive failures (the last failed)"
    );
    assert_eq!(transition.actor, None);
    assert!(matches!(
        succeed(&breaker).await,
        Err(BreakerError::Rejected)
    ));
    assert!(!breaker.permits_calls());
    let status = breaker.status();
    assert_eq!(status.calls.failure, 9);
    assert_eq!(status.calls.rejected, 1);
    assert!(status.next_probe_at.is_some());
}

#[tokio::test(start_paused = true)]
async fn the_timer_moves_open_to_half_open_after_the_backoff_without_any_call() {
    let (breaker, mut transitions) = breaker(exact());
    trip(&breaker, &mut transitions).await;
    let opened = Instant::now();
    tokio::time::advance(Duration::from_millis(999)).await;
    assert_eq!(breaker.state(), Open);
    // Nothing calls: the timer alone moves it, at exactly the first step.
    assert_eq!(next(&mut transitions).await, (Open, HalfOpen));
    assert_eq!(opened.elapsed(), Duration::from_secs(1));
    assert!(breaker.permits_calls());
    assert_eq!(breaker.status().next_probe_at, None);
}

#[tokio::test(start_paused = true)]
async fn a_failed_trial_reopens_with_the_next_step_and_closing_restarts_the_backoff() {
    let (breaker, mut transitions) = breaker(exact());
    trip(&breaker, &mut transitions).await;
    let mut steps = Vec::new();
    for _ in 0..4 {
        let opened = Instant::now();
        assert_eq!(next(&mut transitions).await, (Open, HalfOpen));
        steps.push(opened.elapsed().as_secs());
        fail(&breaker).await.unwrap_err();
        let reopen = transitions.recv().await.unwrap();
        assert_eq!((reopen.from, reopen.to), (HalfOpen, Open));
        assert_eq!(reopen.reason, "a trial call failed");
    }
    assert_eq!(steps, [1, 2, 4, 8]);
    assert_eq!(next(&mut transitions).await, (Open, HalfOpen));
    succeed(&breaker).await.unwrap();
    assert_eq!(breaker.state(), HalfOpen, "one success is not enough");
    succeed(&breaker).await.unwrap();
    let closed = transitions.recv().await.unwrap();
    assert_eq!((closed.from, closed.to), (HalfOpen, Closed));
    assert_eq!(closed.reason, "2 trial calls succeeded");
    assert_eq!(breaker.status().consecutive_failures, 0);
    trip(&breaker, &mut transitions).await;
    let opened = Instant::now();
    assert_eq!(next(&mut transitions).await, (Open, HalfOpen));
    assert_eq!(
        opened.elapsed(),
        Duration::from_secs(1),
        "the backoff restarted"
    );
}

#[tokio::test(start_paused = true)]
async fn the_backoff_stops_growing_at_its_cap() {
    let config = BreakerConfig {
        backoff_max: Duration::from_secs(3),
        ..exact()
    };
    let (breaker, mut transitions) = breaker(config);
    trip(&breaker, &mut transitions).await;
    let mut steps = Vec::new();
    for _ in 0..4 {
        let opened = Instant::now();
        assert_eq!(next(&mut transitions).await, (Open, HalfOpen));
        steps.push(opened.elapsed().as_secs());
        fail(&breaker).await.unwrap_err();
        assert_eq!(next(&mut transitions).await, (HalfOpen, Open));
    }
    assert_eq!(steps, [1, 2, 3, 3]);
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_only_its_permits_at_once_and_the_rest_are_rejected() {
    let (breaker, mut transitions) = breaker(exact());
    trip(&breaker, &mut transitions).await;
    assert_eq!(next(&mut transitions).await, (Open, HalfOpen));
    let mut releases = Vec::new();
    let mut trials = Vec::new();
    for _ in 0..3 {
        let (release, hold) = tokio::sync::oneshot::channel::<()>();
        releases.push(release);
        let breaker = breaker.clone();
        trials.push(tokio::spawn(async move {
            breaker
                .call(|| async move { hold.await.map_err(|_| "dropped") })
                .await
        }));
    }
    tokio::task::yield_now().await;
    assert!(!breaker.permits_calls());
    assert!(matches!(
        succeed(&breaker).await,
        Err(BreakerError::Rejected)
    ));
    // One trial finishes: its permit comes back.
    releases.remove(0).send(()).unwrap();
    trials.remove(0).await.unwrap().unwrap();
    assert_eq!(breaker.state(), HalfOpen);
    assert!(breaker.permits_calls());
    releases.remove(0).send(()).unwrap();
    trials.remove(0).await.unwrap().unwrap();
    assert_eq!(next(&mut transitions).await, (HalfOpen, Closed));
    // The last trial belonged to the half-open period that ended: it changes nothing.
    releases.remove(0).send(()).unwrap();
    trials.remove(0).await.unwrap().unwrap();
    assert_eq!(breaker.state(), Closed);
    assert_eq!(breaker.status().calls.rejected, 1);
}

#[tokio::test(start_paused = true)]
async fn a_trial_that_never_finishes_times_out_and_reopens_the_breaker() {
    let (breaker, mut transitions) = breaker(exact());
    trip(&breaker, &mut transitions).await;
    assert_eq!(next(&mut transitions).await, (Open, HalfOpen));
    let started = Instant::now();
    let hung = breaker.call(std::future::pending::<Result<(), &str>>).await;
    assert!(matches!(hung, Err(BreakerError::Timeout)));
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    let reopen = transitions.recv().await.unwrap();
    assert_eq!((reopen.from, reopen.to), (HalfOpen, Open));
    assert_eq!(reopen.reason, "a trial call timed out");
    assert_eq!(breaker.status().calls.timeout, 1);
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_trial_gives_its_permit_back() {
    let config = BreakerConfig {
        half_open_permits: 1,
        ..exact()
    };
    let (breaker, mut transitions) = breaker(config);
    trip(&breaker, &mut transitions).await;
    assert_eq!(next(&mut transitions).await, (Open, HalfOpen));
    let abandoned = tokio::time::timeout(
        Duration::from_millis(10),
        breaker.call(std::future::pending::<Result<(), &str>>),
    )
    .await;
    assert!(abandoned.is_err());
    assert!(breaker.permits_calls(), "the permit was returned on drop");
    assert_eq!(breaker.state(), HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn a_slow_call_is_a_timeout_and_counts_towards_the_trip() {
    let config = BreakerConfig {
        call_timeout: Duration::from_millis(100),
        // The failure policy's count, without the stall rule (which trips on the first).
        stall_trip: false,
        ..exact()
    };
    let (breaker, mut transitions) = breaker(config);
    for _ in 0..5 {
        let slow = breaker
            .call(|| async {
                tokio::time::sleep(Duration::from_millis(150)).await;
                Ok::<_, &str>(())
            })
            .await;
        assert!(matches!(slow, Err(BreakerError::Timeout)));
    }
    let transition = transitions.recv().await.unwrap();
    assert_eq!(
        transition.reason,
        "5 consecutive failures (the last timed out)"
    );
    assert_eq!(breaker.status().calls.timeout, 5);
}

#[tokio::test(start_paused = true)]
async fn a_failure_rate_trips_at_the_threshold_once_the_minimum_calls_are_reached() {
    let config = BreakerConfig {
        failure_policy: FailurePolicy::FailureRate {
            threshold: 0.5,
            minimum_calls: 10,
            window: Duration::from_secs(10),
        },
        ..exact()
    };
    let (breaker, mut transitions) = breaker(config);
    // Nine failures in a row are below the minimum number of calls.
    for _ in 0..9 {
        fail(&breaker).await.unwrap_err();
    }
    assert_eq!(breaker.state(), Closed);
    // They slide out of the window.
    tokio::time::advance(Duration::from_secs(11)).await;
    for _ in 0..6 {
        succeed(&breaker).await.unwrap();
    }
    for _ in 0..5 {
        fail(&breaker).await.unwrap_err();
    }
    assert_eq!(breaker.state(), Closed, "5 of 11 is under 50%");
    fail(&breaker).await.unwrap_err();
    let transition = transitions.recv().await.unwrap();
    assert_eq!((transition.from, transition.to), (Closed, Open));
    assert!(
        transition
            .reason
            .starts_with("failure rate 50.0% >= 50.0% over 12 calls")
    );
}

#[tokio::test(start_paused = true)]
async fn a_target_that_stops_answering_opens_the_breaker_after_one_call_timeout() {
    let (breaker, mut transitions) = breaker(exact());
    succeed(&breaker).await.unwrap();
    let started = Instant::now();
    let hung = breaker.call(std::future::pending::<Result<(), &str>>).await;
    assert!(matches!(hung, Err(BreakerError::Timeout)));
    let transition = transitions.recv().await.unwrap();
    assert_eq!((transition.from, transition.to), (Closed, Open));
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(5),
        "one call timeout"
    );
    assert_eq!(
        transition.reason,
        "a call timed out after 5.000 s and nothing succeeded since it started"
    );
    assert_eq!(breaker.status().consecutive_failures, 1);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_while_other_calls_succeed_is_left_to_the_failure_policy() {
    let (breaker, _transitions) = breaker(exact());
    let slow = {
        let breaker = breaker.clone();
        tokio::spawn(async move { breaker.call(std::future::pending::<Result<(), &str>>).await })
    };
    // Another call succeeds while the slow one is in flight: the target is making progress.
    tokio::time::sleep(Duration::from_secs(1)).await;
    succeed(&breaker).await.unwrap();
    assert!(matches!(slow.await.unwrap(), Err(BreakerError::Timeout)));
    assert_eq!(breaker.state(), Closed);
    assert_eq!(breaker.status().calls.timeout, 1);
}

#[tokio::test(start_paused = true)]
async fn a_stall_is_measured_from_the_close_not_from_before_the_outage() {
    let (breaker, mut transitions) = breaker(exact());
    trip(&breaker, &mut transitions).await;
    assert_eq!(next(&mut transitions).await, (Open, HalfOpen));
    succeed(&breaker).await.unwrap();
    succeed(&breaker).await.unwrap();
    assert_eq!(next(&mut transitions).await, (HalfOpen, Closed));
    // The first call after the close hangs: no success since it started, so it trips alone.
    let hung = breaker.call(std::future::pending::<Result<(), &str>>).await;
    assert!(matches!(hung, Err(BreakerError::Timeout)));
    assert_eq!(next(&mut transitions).await, (Closed, Open));
}

#[tokio::test(start_paused = true)]
async fn without_the_stall_rule_timeouts_count_like_any_failure() {
    let config = BreakerConfig {
        stall_trip: false,
        ..exact()
    };
    let (breaker, _transitions) = breaker(config);
    for _ in 0..4 {
        let hung = breaker.call(std::future::pending::<Result<(), &str>>).await;
        assert!(matches!(hung, Err(BreakerError::Timeout)));
    }
    assert_eq!(
        breaker.state(),
        Closed,
        "four timeouts are under the count of five"
    );
}
