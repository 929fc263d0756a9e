//! Forced modes, reset and the status document, on tokio's paused clock (helpers in `tests`).

use std::time::Duration;

use super::tests::{breaker, exact, fail, next, succeed, trip};
use super::*;

use BreakerState::{Closed, Disabled, ForcedClosed, ForcedOpen, Open};

#[tokio::test(start_paused = true)]
async fn forced_modes_override_the_policy_and_auto_returns_to_it() {
    let (breaker, mut transitions) = breaker(exact());
    breaker.set_mode(BreakerMode::ForceOpen, "ops", Some("maintenance"));
    let forced = transitions.recv().await.unwrap();
    assert_eq!((forced.from, forced.to), (Closed, ForcedOpen));
    assert_eq!(
        (forced.reason.as_str(), forced.actor.as_deref()),
        ("mode force_open: maintenance", Some("ops"))
    );
    assert!(matches!(
        succeed(&breaker).await,
        Err(BreakerError::Rejected)
    ));
    // Forced open stays open: no timer moves it.
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(
        (breaker.state(), breaker.mode()),
        (ForcedOpen, BreakerMode::ForceOpen)
    );

    breaker.set_mode(BreakerMode::ForceClosed, "ops", None);
    assert_eq!(next(&mut transitions).await, (ForcedOpen, ForcedClosed));
    for _ in 0..20 {
        fail(&breaker).await.unwrap_err();
    }
    assert_eq!(breaker.state(), ForcedClosed, "forced closed never trips");
    assert_eq!(breaker.status().calls.failure, 20);

    breaker.set_mode(BreakerMode::Disabled, "ops", None);
    assert_eq!(next(&mut transitions).await, (ForcedClosed, Disabled));
    fail(&breaker).await.unwrap_err();
    succeed(&breaker).await.unwrap();
    let status = breaker.status();
    assert_eq!(
        (status.calls.failure, status.calls.success),
        (20, 0),
        "disabled records nothing"
    );

    breaker.set_mode(BreakerMode::Disabled, "ops", None);
    breaker.set_mode(BreakerMode::Auto, "ops", None);
    assert_eq!(
        next(&mut transitions).await,
        (Disabled, Closed),
        "the repeat announced nothing"
    );
    assert_eq!(breaker.status().consecutive_failures, 0);
    trip(&breaker, &mut transitions).await;
    breaker.set_mode(BreakerMode::Auto, "ops", None);
    assert_eq!(
        breaker.state(),
        Open,
        "auto while auto leaves the policy's state alone"
    );
}

#[tokio::test(start_paused = true)]
async fn reset_closes_from_any_state_and_clears_the_counters() {
    let (breaker, mut transitions) = breaker(exact());
    trip(&breaker, &mut transitions).await;
    succeed(&breaker).await.unwrap_err();
    breaker.reset("ops");
    let reset = transitions.recv().await.unwrap();
    assert_eq!(
        (reset.from, reset.to, reset.actor.as_deref()),
        (Open, Closed, Some("ops"))
    );
    let status = breaker.status();
    assert_eq!(status.calls, CallCounts::default());
    assert_eq!(
        (
            status.state,
            status.consecutive_failures,
            status.failure_rate
        ),
        (Closed, 0, 0.0)
    );
    assert_eq!(status.latency_ms, LatencyPercentiles::default());
    // The stale open period's timer must not move the closed breaker.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(breaker.state(), Closed);
    breaker.reset("ops");
    assert_eq!(
        next(&mut transitions).await,
        (Closed, Closed),
        "a reset is always audited"
    );
}

#[tokio::test(start_paused = true)]
async fn the_status_shows_the_configuration_and_serializes_in_snake_case() {
    let (breaker, _transitions) = breaker(BreakerConfig::default());
    succeed(&breaker).await.unwrap();
    let status = serde_json::to_value(breaker.status()).unwrap();
    assert_eq!(status["state"], "closed");
    assert_eq!(status["mode"], "auto");
    assert_eq!(status["calls"]["success"], 1);
    assert_eq!(status["config"]["failure_policy"], "consecutive_failures");
    assert_eq!(status["config"]["consecutive_failures"], 5);
    assert_eq!(status["config"]["call_timeout_ms"], 5000);
    assert!(status["since"].as_str().unwrap().contains('T'), "{status}");
    assert!(status["latency_ms"]["p99"].is_number());
}
