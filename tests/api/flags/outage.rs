//! The database stopped: evaluation keeps answering from the last snapshot, marked stale once
//! a reload fails; `/health/flags` says degraded; a flag write is 503, not 500.

use serde_json::json;

use crate::support::proxy::{Fault, FaultProxy};
use crate::support::wait::{self, Look};
use crate::support::{Credential, POSTGRES_ADDR, assert_problem, spawn_app_with};

#[tokio::test]
async fn with_the_database_connection_reset_evaluation_serves_the_last_snapshot_marked_stale() {
    evaluation_outlives_the_database(Fault::Reset).await;
}

/// A database that stops answering (no reset: the listener's connection looks alive), so only
/// the periodic resync can notice.
#[tokio::test]
async fn with_the_database_silent_evaluation_serves_the_last_snapshot_marked_stale() {
    evaluation_outlives_the_database(Fault::Blackhole).await;
}

async fn evaluation_outlives_the_database(fault: Fault) {
    let proxy = FaultProxy::start(POSTGRES_ADDR.parse().unwrap())
        .await
        .expect("start the proxy");
    let app = spawn_app_with(|config| {
        config.database_url = config
            .database_url
            .replace(POSTGRES_ADDR, &proxy.address().to_string());
        // The resync notices the outage within a second even if the listener does not.
        config.flag_resync_s = 1;
    })
    .await;
    app.create_boolean_flag("survivor").await;
    app.flip_ok("survivor", true).await;
    let context = json!({"targeting_key": "u-1"});
    assert_eq!(app.evaluate_all(context.clone()).await["stale"], false);

    proxy.set(fault);

    // A failed resync marks the snapshot stale in the background: there is no event to wait on.
    wait::until("the snapshot to be marked stale", async || {
        let all = app.evaluate_all(context.clone()).await;
        Look::ready_if(all["stale"] == true, all)
    })
    .await;
    let result = app.evaluate("survivor", context.clone()).await;
    assert_eq!(result["value"], true, "{result}");
    assert_eq!(result["version"], 2, "{result}");
    let health = super::ok_json(app.get("/health/flags", Credential::Nothing).await).await;
    assert_eq!(health["health"], "degraded", "{health:#}");
    assert!(
        health["issues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.as_str().unwrap().contains("stale")),
        "{health:#}"
    );
    let refused = assert_problem(app.flip("survivor", false).await, 503).await;
    assert!(
        refused["detail"].as_str().unwrap().contains("unavailable"),
        "{refused}"
    );

    // Back again, the next reload clears the mark.
    proxy.restore();
    wait::until("the snapshot to be fresh again", async || {
        let all = app.evaluate_all(context.clone()).await;
        Look::ready_if(all["stale"] == false, all)
    })
    .await;
}
