//! Rows the Realtime target refuses for their content (a CHECK, a trigger's `raise
//! exception`): the batch is split, everything else lands, the refused row is set aside in
//! the control store's quarantine with its error, and the breaker stays closed.

use std::collections::HashSet;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::wait::{self, Look};
use crate::support::{self, event, spawn_app, spawn_app_with_target};

#[tokio::test]
async fn a_row_the_target_refuses_is_quarantined_and_the_other_999_land() {
    let app = spawn_app().await;
    // The default target is the control store's database: a CHECK there refuses one source.
    sqlx::query(
        "ALTER TABLE monitoring.monitoring_events
         ADD CONSTRAINT no_poison CHECK (source <> 'poison')",
    )
    .execute(&app.state.pool)
    .await
    .unwrap();
    app.set_strategy("realtime").await;
    let batch: Vec<Value> = (0..1000)
        .map(|i| event("stats", if i == 437 { "poison" } else { "fine" }))
        .collect();

    let receipt = app.publish_ok(&Value::Array(batch)).await;

    let ids: Vec<Uuid> = receipt["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        receipt["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["realtime"] == true)
    );
    let poison = ids[437];
    let quarantined: (Uuid, Option<String>, String) =
        wait::until("the poison row quarantined", async || {
            let row = sqlx::query_as(
                "SELECT event_id, sqlstate, error FROM switchyard.realtime_quarantine",
            )
            .fetch_optional(&app.state.pool)
            .await
            .unwrap();
            match row {
                Some(row) => Look::Ready(row),
                None => Look::NotYet("no quarantined row yet".into()),
            }
        })
        .await;
    assert_eq!(quarantined.0, poison);
    assert_eq!(quarantined.1.as_deref(), Some("23514"), "a check violation");
    assert!(quarantined.2.contains("no_poison"), "{}", quarantined.2);
    let landed = rows_of(&app, &ids).await;
    assert_eq!(landed.len(), 999);
    assert!(!landed.contains(&poison));

    let status = app
        .get("/v1/realtime", app.admin())
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(status["quarantined"], 1, "{status:#}");
    assert_eq!(status["dropped"], 0);
    let breaker = app
        .get("/v1/breakers/realtime", app.admin())
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        breaker["state"], "closed",
        "a content refusal is no breaker failure: {breaker:#}"
    );
    let metrics = app.get("/metrics", app.admin()).await.text().await.unwrap();
    assert!(
        metrics.contains(
            r#"switchyard_broadcast_events_total{path="realtime",outcome="quarantined"} 1"#
        ),
        "{metrics}"
    );

    // Later events keep landing.
    let later = app
        .publish_ok(&json!([event("stats", "after"), event("stats", "after")]))
        .await;
    let later: Vec<Uuid> = later["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(rows_of(&app, &later).await.len(), 2);
}

/// Waits until every one of `ids` that will land has: returns the ids the table holds.
async fn rows_of(app: &crate::support::TestApp, ids: &[Uuid]) -> HashSet<Uuid> {
    let want = ids.len();
    wait::until("the Realtime rows", async || {
        let held: Vec<Uuid> =
            sqlx::query_scalar("SELECT id FROM monitoring.monitoring_events WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(&app.state.pool)
                .await
                .unwrap();
        let quarantined: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM switchyard.realtime_quarantine WHERE event_id = ANY($1)",
        )
        .bind(ids)
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
        let accounted = held.len() + quarantined as usize;
        Look::ready_if(accounted == want, held.into_iter().collect())
    })
    .await
}

#[tokio::test]
async fn a_trigger_refusal_on_a_separate_target_is_quarantined_in_the_control_store() {
    let targeted = spawn_app_with_target(|_| {}).await;
    let app = &targeted.app;
    app.set_strategy("realtime").await;
    // A first row makes switchyard apply the schema on the target.
    let first = app.publish_ok(&event("stats", "first")).await;
    let first: Uuid = first["events"][0]["id"].as_str().unwrap().parse().unwrap();
    targeted
        .target
        .realtime_ids_holding(&HashSet::from([first]))
        .await
        .expect("the first row on the target");
    let target = sqlx::PgPool::connect(&targeted.target.url()).await.unwrap();
    support::execute_all(
        &target,
        &[
            "CREATE FUNCTION monitoring.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.source = 'poison' THEN RAISE EXCEPTION 'poison refused'; END IF;
                 RETURN NEW;
             END $$",
            "CREATE TRIGGER refuse BEFORE INSERT ON monitoring.monitoring_events
             FOR EACH ROW EXECUTE FUNCTION monitoring.refuse()",
        ],
    )
    .await;
    target.close().await;
    let batch: Vec<Value> = (0..50)
        .map(|i| event("stats", if i == 3 { "poison" } else { "fine" }))
        .collect();

    let receipt = app.publish_ok(&Value::Array(batch)).await;

    let ids: Vec<Uuid> = receipt["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    let rest: HashSet<Uuid> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, id)| *id)
        .collect();
    let landed = targeted
        .target
        .realtime_ids_holding(&rest)
        .await
        .expect("49 rows");
    assert!(!landed.contains(&ids[3]));
    // The quarantine is written once the batch's other parts are: wait for it.
    let (event_id, sqlstate): (Uuid, Option<String>) =
        wait::until("the refused row quarantined", async || {
            let row =
                sqlx::query_as("SELECT event_id, sqlstate FROM switchyard.realtime_quarantine")
                    .fetch_optional(&app.state.pool)
                    .await
                    .unwrap();
            match row {
                Some(row) => Look::Ready(row),
                None => Look::NotYet("no quarantined row yet".into()),
            }
        })
        .await;
    assert_eq!((event_id, sqlstate.as_deref()), (ids[3], Some("P0001")));
    let breaker = app
        .get("/v1/breakers/realtime", app.admin())
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(breaker["state"], "closed", "{breaker:#}");
}
