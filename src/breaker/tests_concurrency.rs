//! The breaker under many concurrent calls on a multi-threaded runtime: counters add up
//! exactly, transitions chain without a gap, and a half-open stampede gets no more trial calls
//! at once than the permits allow.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::*;

const TASKS: u32 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_thousand_concurrent_calls_are_each_counted_exactly_once() {
    let config = BreakerConfig {
        failure_policy: FailurePolicy::ConsecutiveFailures(u32::MAX),
        call_timeout: Duration::from_millis(200),
        // Counting, not tripping: the last slow calls may start after every success, which the
        // stall rule would rightly call a stall.
        stall_trip: false,
        ..BreakerConfig::default()
    };
    let breaker = Breaker::start("concurrent", config, CancellationToken::new());
    let calls: Vec<_> = (0..TASKS)
        .map(|i| {
            let breaker = breaker.clone();
            tokio::spawn(async move {
                breaker
                    .call(|| async move {
                        tokio::task::yield_now().await;
                        match i % 4 {
                            0 | 1 => Ok(()),
                            2 => Err("boom"),
                            _ => {
                                tokio::time::sleep(Duration::from_secs(5)).await;
                                Ok(())
                            }
                        }
                    })
                    .await
            })
        })
        .collect();
    for call in calls {
        let _ = call.await.unwrap();
    }
    let status = breaker.status();
    assert_eq!(status.state, BreakerState::Closed);
    assert_eq!(status.calls.success, 500);
    assert_eq!(status.calls.failure, 250);
    assert_eq!(status.calls.timeout, 250);
    assert_eq!(status.calls.rejected, 0);
    assert_eq!(status.window_calls, 1000);
    assert!((status.failure_rate - 0.5).abs() < f64::EPSILON);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_failure_storm_trips_once_and_every_call_is_failed_or_rejected() {
    let breaker = Breaker::start("storm", BreakerConfig::default(), CancellationToken::new());
    let mut transitions = breaker.subscribe();
    let calls: Vec<_> = (0..TASKS)
        .map(|_| {
            let breaker = breaker.clone();
            tokio::spawn(async move { breaker.call(|| async { Err::<(), _>("boom") }).await })
        })
        .collect();
    let (mut failed, mut rejected) = (0, 0);
    for call in calls {
        match call.await.unwrap() {
            Err(BreakerError::Failed(_)) => failed += 1,
            Err(BreakerError::Rejected) => rejected += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(failed + rejected, TASKS);
    assert!(failed >= 5, "{failed}");
    let status = breaker.status();
    assert_eq!(
        (status.calls.failure, status.calls.rejected),
        (u64::from(failed), u64::from(rejected))
    );
    assert_eq!(breaker.state(), BreakerState::Open);
    let trip = transitions.try_recv().expect("one trip");
    assert_eq!(
        (trip.from, trip.to),
        (BreakerState::Closed, BreakerState::Open)
    );
    assert!(transitions.try_recv().is_err(), "tripped exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_half_open_stampede_runs_at_most_the_permitted_trials_at_once() {
    let config = BreakerConfig {
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(20),
        // Never enough successes: the whole stampede meets the half-open breaker.
        half_open_successes: u32::MAX,
        ..BreakerConfig::default()
    };
    let breaker = Breaker::start("stampede", config, CancellationToken::new());
    let mut transitions = breaker.subscribe();
    for _ in 0..5 {
        let _ = breaker.call(|| async { Err::<(), _>("boom") }).await;
    }
    // The timer moves it to half-open after about 20 ms.
    loop {
        let transition = transitions.recv().await.unwrap();
        if transition.to == BreakerState::HalfOpen {
            break;
        }
    }
    let running = Arc::new(AtomicU32::new(0));
    let most = Arc::new(AtomicU32::new(0));
    let calls: Vec<_> = (0..TASKS)
        .map(|_| {
            let (breaker, running, most) = (breaker.clone(), running.clone(), most.clone());
            tokio::spawn(async move {
                breaker
                    .call(|| async move {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, &str>(())
                    })
                    .await
            })
        })
        .collect();
    let mut admitted = 0;
    for call in calls {
        if call.await.unwrap().is_ok() {
            admitted += 1;
        }
    }
    assert!(
        most.load(Ordering::SeqCst) <= 3,
        "{} trials at once",
        most.load(Ordering::SeqCst)
    );
    assert!(admitted >= 3, "{admitted}");
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert_eq!(breaker.status().calls.rejected, u64::from(TASKS - admitted));
    assert!(transitions.try_recv().is_err(), "nothing moved it");
}
