//! A restart loses nothing: the app's shutdown signal (what SIGTERM triggers) arrives during a
//! steady stream while the Realtime target is blackholed; after a restart, every event that
//! was answered 202 with `realtime: true` is in the Realtime table exactly once.
//!
//! The target is the control store itself (the default), behind the fault proxy: its outage
//! is the control store's too, so the dead letter cannot keep the held events and the local
//! spool (`SWITCHYARD_SPOOL_DIR`) must.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard::Config;
use uuid::Uuid;

use crate::support::proxy::{Fault, FaultProxy};
use crate::support::wait::{self, Look};
use crate::support::{POSTGRES_ADDR, event, spawn_app_on_with, spawn_app_with};

fn configure(config: &mut Config, spool: &Path) {
    config.spool_dir = spool.to_path_buf();
    config.shutdown_deadline_s = 5;
    config.store_timeout_ms = 500;
    config.legacy.timeout_ms = Some(300);
    config.circuit_breaker_failure_threshold = Some("2".into());
}

/// Spool files waiting for the next start.
fn spooled(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).count())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_restart_during_a_target_outage_loses_no_event_answered_202() {
    let proxy = FaultProxy::start(POSTGRES_ADDR.parse().unwrap())
        .await
        .expect("start the proxy");
    let spool = std::env::temp_dir().join(format!("switchyard-spool-{}", Uuid::new_v4().simple()));
    let mut first = spawn_app_with(|config| {
        config.database_url = config
            .database_url
            .replace(POSTGRES_ADDR, &proxy.address().to_string());
        configure(config, &spool);
    })
    .await;
    first.set_strategy("realtime").await;

    // A steady stream: one event every 2 ms, each 202 with `realtime: true` remembered.
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let (client, url, key) = (
        first.client.clone(),
        first.url("/v1/events"),
        first.admin_key.clone(),
    );
    let publisher = {
        let accepted = accepted.clone();
        tokio::spawn(async move {
            let mut refused_in_a_row = 0;
            while refused_in_a_row < 20 {
                let sent = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&event("cache_metrics", "restart"))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().as_u16() == 202 => {
                        refused_in_a_row = 0;
                        let receipt: serde_json::Value = response.json().await.unwrap();
                        let one = &receipt["events"][0];
                        if one["realtime"] == true {
                            let id = one["id"].as_str().unwrap().to_string();
                            accepted.lock().unwrap().push(id);
                        }
                    }
                    _ => refused_in_a_row += 1,
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let count = || accepted.lock().unwrap().len();
    wait::until("events to flow", async || {
        Look::ready_if(count() >= 50, count())
    })
    .await;
    proxy.set(Fault::Blackhole);
    let before_outage = count();
    wait::until("events accepted during the outage", async || {
        Look::ready_if(count() >= before_outage + 200, count())
    })
    .await;

    first.trigger_shutdown();
    first.stopped().await.expect("run_until_stopped returns Ok");
    publisher.await.expect("the publisher ends once refused");
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() >= before_outage + 200, "{}", accepted.len());
    assert!(spooled(&spool) >= 1, "the held events went to the spool");

    // Back again: the next start replays the spool.
    proxy.restore();
    let _second = spawn_app_on_with(&first, |config| configure(config, &spool)).await;
    let table = sqlx::PgPool::connect(&first.state.config.database_url)
        .await
        .expect("connect to the target");
    let counts = wait::until("every accepted event in the table", async || {
        let rows: Vec<(Uuid, i64)> =
            sqlx::query_as("SELECT id, count(*) FROM monitoring.monitoring_events GROUP BY id")
                .fetch_all(&table)
                .await
                .unwrap_or_default();
        let counts: HashMap<String, i64> = rows
            .into_iter()
            .map(|(id, n)| (id.to_string(), n))
            .collect();
        let missing = accepted
            .iter()
            .filter(|id| !counts.contains_key(*id))
            .count();
        if missing == 0 {
            Look::Ready(counts)
        } else {
            Look::NotYet(format!("{missing} of {} missing", accepted.len()))
        }
    })
    .await;
    for id in &accepted {
        assert_eq!(
            counts.get(id),
            Some(&1),
            "event {id} is in the table exactly once"
        );
    }
    assert_eq!(spooled(&spool), 0, "the replayed spool files are gone");
    table.close().await;
    let _ = std::fs::remove_dir_all(&spool);
}

#[tokio::test]
async fn the_spool_is_shown_on_v1_realtime_and_in_metrics() {
    let spool = std::env::temp_dir().join(format!("switchyard-spool-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&spool).unwrap();
    // What an earlier run left: one whole file, and one an operator must look at.
    let id = Uuid::new_v4();
    let row = serde_json::json!({
        "id": id, "event_type": "cache_metrics", "timestamp": chrono::Utc::now(),
        "source": "spool", "data": {}, "metadata": {}, "category": "performance",
        "sequence_id": 1, "epoch": "earlier-run",
    });
    let name = format!("realtime-{}.jsonl", Uuid::now_v7().simple());
    std::fs::write(spool.join(name), format!("{row}\n")).unwrap();
    std::fs::write(spool.join("realtime-~torn.jsonl"), "{\"id\": \n").unwrap();

    let app = spawn_app_with(|config| config.spool_dir = spool.clone()).await;
    let status = wait::until("the spool to be replayed", async || {
        let response = app.get("/v1/realtime", app.admin()).await;
        let status: serde_json::Value = response.json().await.unwrap();
        Look::ready_if(status["spool"]["replayed"] == 1, status)
    })
    .await;
    let shown = &status["spool"];
    assert_eq!(shown["directory"], spool.display().to_string(), "{shown}");
    assert_eq!(shown["files_waiting"], 1, "the torn file is kept: {shown}");
    assert_eq!(shown["spooled"], 0, "{shown}");
    let written: i64 =
        sqlx::query_scalar("SELECT count(*) FROM monitoring.monitoring_events WHERE id = $1")
            .bind(id)
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
    assert_eq!(written, 1);
    let metrics = app.get("/metrics", app.admin()).await.text().await.unwrap();
    for line in [
        "switchyard_realtime_spool_files 1.0",
        "switchyard_realtime_spool_replayed_events_total 1",
        "switchyard_realtime_spooled_events_total 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    let _ = std::fs::remove_dir_all(&spool);
}
