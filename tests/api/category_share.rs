//! One percentage per category (issue 12): the share of a category's events dual-written to
//! Realtime is that category flag's rollout percentage, evaluated per event with the event id
//! as targeting key. REST moves it, the migration that introduced it keeps every route as it
//! was, and the legacy `DUAL_WRITE_*_PERCENTAGE` pins still win.

use serde_json::{Value, json};
use sqlx::PgPool;
use switchyard::event::Category;
use switchyard::flags::Snapshot;
use switchyard::flags::hash::in_rollout;
use switchyard::flagstore::record_from_store;
use switchyard::router::Strategy;
use switchyard::store::flags as flag_store;
use uuid::Uuid;

use crate::support::wait::{self, Look};
use crate::support::{TestApp, TestDatabase, expect_json, spawn_app, spawn_app_with};

const PERFORMANCE: &str = "broadcast.category.performance";

/// Publishes `n` performance events with ids of our own; returns (id, routed to Realtime).
async fn publish_performance(app: &TestApp, n: usize) -> Vec<(Uuid, bool)> {
    let mut routed = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let body: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"id": Uuid::new_v4(), "event_type": "cache_metrics", "source": "share", "data": {"i": i}}))
            .collect();
        let receipts = app.publish_ok(&json!(body)).await;
        for receipt in receipts["events"].as_array().expect("receipts") {
            let id = receipt["id"].as_str().unwrap().parse().unwrap();
            routed.push((id, receipt["realtime"].as_bool().expect("a realtime field")));
        }
    }
    routed
}

async fn wait_for_share(app: &TestApp, percentage: f64) {
    wait::until(
        &format!("the performance share at {percentage}%"),
        async || {
            let now = app.state.ingest.router().current();
            let share = now.route(Category::Performance).percentage;
            Look::ready_if(share == percentage, share)
        },
    )
    .await;
}

#[tokio::test]
async fn a_rest_rollout_of_30_percent_dual_writes_exactly_the_events_the_flag_hash_puts_inside() {
    let app = spawn_app().await;
    app.set_strategy("dual").await;

    let path = format!("/v1/flags/{PERFORMANCE}/environments/production/rollout");
    expect_json(
        app.as_admin(reqwest::Method::PUT, &path, &json!({"percentage": 30}))
            .await,
        200,
    )
    .await;
    wait_for_share(&app, 30.0).await;
    let routed = publish_performance(&app, 400).await;

    for (id, realtime) in &routed {
        let inside = in_rollout(PERFORMANCE, &id.to_string(), 30);
        assert_eq!(
            *realtime, inside,
            "event {id}: routed {realtime}, hash says {inside}"
        );
    }
    let share = routed.iter().filter(|(_, r)| *r).count();
    assert!(
        (80..=160).contains(&share),
        "about 30% of 400 performance events dual-written, got {share}"
    );
    let strategy = expect_json(app.get("/v1/strategy", app.admin()).await, 200).await;
    let route = &strategy["categories"][1];
    assert_eq!(route["category"], "performance", "{strategy:#}");
    assert_eq!(route["percentage"], 30.0, "{strategy:#}");
    assert_eq!(route["decided_by"]["tier"], "flag", "{strategy:#}");
}

/// The routes the five category flags give at `pool`'s current revision.
async fn routes(pool: &PgPool) -> Vec<(bool, f64)> {
    let stored = flag_store::list(pool, false).await.unwrap();
    let records: Vec<_> = stored
        .iter()
        .map(|r| record_from_store(r).unwrap())
        .collect();
    let snapshot = Snapshot::compile(1, &records, &Default::default());
    let strategy = Strategy::from_snapshot(&snapshot, "production");
    Category::ALL
        .into_iter()
        .map(|c| {
            let route = strategy.route(c);
            assert_eq!(route.decided_by.tier, "flag", "{route:?}");
            (route.enabled, route.percentage)
        })
        .collect()
}

#[tokio::test]
async fn the_migration_moves_each_legacy_share_into_the_rollout_percentage_and_routes_as_before() {
    let database = TestDatabase::new();
    let pool = switchyard::store::connect_and_migrate(&database.url())
        .await
        .unwrap();
    // The legacy routes: critical 100; performance 50; user_activity 0, off; system 100;
    // debug 0, off (Category::ALL order).
    let legacy = vec![
        (true, 100.0),
        (true, 50.0),
        (false, 0.0),
        (true, 100.0),
        (false, 0.0),
    ];
    assert_eq!(routes(&pool).await, legacy);
    let performance = flag_store::get(&pool, PERFORMANCE).await.unwrap().unwrap();
    let production = &performance.definition["environments"]["production"];
    assert_eq!(production["rollout"]["percentage"], 50, "{production:#}");
    assert_eq!(
        performance.definition["variants"]["on"],
        json!({"enabled": true, "adapters": ["websocket"]})
    );

    // Put the seeded (old-form) definitions back and run the migration again: the same
    // routes come out, each rewrite audited as a new version.
    sqlx::query(
        "UPDATE switchyard.flags f SET definition = a.after FROM switchyard.flag_audit a
         WHERE a.flag_key = f.key AND a.version = 1 AND f.key LIKE 'broadcast.category.%'",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert_ne!(
        routes(&pool).await,
        legacy,
        "the old form is read by the new router differently"
    );
    sqlx::raw_sql(include_str!(
        "../../migrations/20261203000010_category_rollout_percentage.sql"
    ))
    .execute(&pool)
    .await
    .unwrap();

    assert_eq!(routes(&pool).await, legacy);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM switchyard.flag_audit WHERE actor = 'migration' AND action = 'update'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 10, "five rewrites per run, two runs");
    pool.close().await;
}

#[tokio::test]
async fn a_dual_write_percentage_variable_pins_the_share_and_refuses_rest_rollouts() {
    let app = spawn_app_with(|config| {
        config.legacy.dual_write_performance_percentage = Some(100.0);
    })
    .await;
    app.set_strategy("dual").await;
    wait::until("the dual strategy", async || {
        let now = app.state.ingest.router().current();
        let strategy = serde_json::to_value(now.strategy).unwrap();
        Look::ready_if(strategy == "dual", strategy)
    })
    .await;

    let path = format!("/v1/flags/{PERFORMANCE}/environments/production/rollout");
    let refused = app
        .as_admin(reqwest::Method::PUT, &path, &json!({"percentage": 10}))
        .await;
    assert_eq!(refused.status().as_u16(), 409);
    let routed = publish_performance(&app, 100).await;

    assert!(
        routed.iter().all(|(_, realtime)| *realtime),
        "the pin says 100%"
    );
    let strategy = expect_json(app.get("/v1/strategy", app.admin()).await, 200).await;
    let route = &strategy["categories"][1];
    assert_eq!(route["decided_by"]["tier"], "env", "{strategy:#}");
    assert_eq!(
        route["decided_by"]["variable"],
        "DUAL_WRITE_PERFORMANCE_PERCENTAGE"
    );
}
