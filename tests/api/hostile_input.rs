//! Input that must not wedge a path or reach a panic: a NUL the Realtime table cannot store
//! (400 at ingest), an event over the size limit (413), a row the target refuses for its
//! content (quarantined while everything around it lands), a rollout hold past the maximum,
//! legacy `/ws` numbers far out of range.

use std::collections::HashSet;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::wait::{self, Look};
use crate::support::ws::{next_json, send_json};
use crate::support::{assert_problem, event, spawn_app, spawn_app_with, spawn_app_with_target};

#[tokio::test]
async fn a_nul_in_any_string_or_key_is_400_naming_field_and_index_and_nothing_is_kept() {
    let app = spawn_app().await;
    app.set_strategy("realtime").await;
    let mut ws = app.subscribe_all().await;
    let head = app.state.hub.head();
    let poisoned = json!({"event_type": "x", "source": "a", "data": {"s": "a\u{0}b"}});
    let batch = json!([event("stats", "ok"), poisoned, {"event_type": "y", "source": "b",
        "metadata": {"k\u{0}": 1}}]);

    let problem = assert_problem(app.publish(&batch).await, 400).await;

    let mut named: Vec<(u64, String)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    named.sort();
    assert_eq!(
        named,
        [
            (1, "data.s".to_string()),
            (2, "metadata.k\\u0000".to_string())
        ],
        "{problem:#}"
    );
    assert_eq!(app.state.hub.head(), head, "nothing was published");
    app.assert_nothing_was_broadcast(&mut ws).await;
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM monitoring.monitoring_events WHERE source IN ('ok', 'a', 'b')",
    )
    .fetch_one(&app.state.pool)
    .await
    .unwrap();
    assert_eq!(
        stored, 0,
        "nothing of the request reached the Realtime table"
    );
}

#[tokio::test]
async fn an_event_over_the_size_limit_is_413_naming_its_index() {
    let app = spawn_app_with(|config| config.limits.max_event_bytes = 1024).await;
    let mut ws = app.subscribe_all().await;
    let big = json!({"event_type": "x", "source": "s", "data": {"blob": "x".repeat(2000)}});
    let batch = json!([event("stats", "s"), big]);

    let problem = assert_problem(app.publish(&batch).await, 413).await;

    assert_eq!(problem["errors"][0]["index"], 1, "{problem:#}");
    assert_eq!(problem["errors"].as_array().unwrap().len(), 1);
    app.assert_nothing_was_broadcast(&mut ws).await;
}

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
async fn a_rollout_hold_past_thirty_days_is_400_naming_the_field() {
    let app = spawn_app().await;
    let plan = json!({"flag": "broadcast.category.debug", "environment": "production",
        "stages": [{"percentage": 10, "hold": "100000000d"}, {"percentage": 50}]});

    let response = app
        .client
        .post(app.url("/v1/rollouts"))
        .bearer_auth(&app.admin_key)
        .json(&plan)
        .send()
        .await
        .unwrap();

    let problem = assert_problem(response, 400).await;
    assert_eq!(
        problem["errors"][0]["field"], "stages[0].hold",
        "{problem:#}"
    );
}

#[tokio::test]
async fn legacy_commands_with_huge_numbers_answer_instead_of_panicking() {
    let app = spawn_app().await;
    app.publish_ok(&event("stats", "s")).await;
    let (mut ws, _) = app.connect_legacy().await;
    for command in [
        json!({"command": "get_historical_data", "hours": 1e300}),
        json!({"command": "get_time_series", "hours": 1e300, "interval_minutes": 1e300}),
        json!({"command": "get_recent_events", "limit": 1e300}),
        json!({"command": "export"}),
    ] {
        send_json(&mut ws, &command).await;
        let answer = next_json(&mut ws).await;
        assert_ne!(answer["type"], "error", "{command} -> {answer}");
        assert!(answer["type"].is_string(), "{command} -> {answer}");
    }
    send_json(
        &mut ws,
        &json!({"command": "get_historical_data", "hours": 1e300}),
    )
    .await;
    let answer = next_json(&mut ws).await;
    assert_eq!(answer["hours"], 24.0 * 366.0, "clamped: {answer}");
    assert_eq!(answer["events"].as_array().unwrap().len(), 1);
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
    for statement in [
        "CREATE FUNCTION monitoring.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.source = 'poison' THEN RAISE EXCEPTION 'poison refused'; END IF;
             RETURN NEW;
         END $$",
        "CREATE TRIGGER refuse BEFORE INSERT ON monitoring.monitoring_events
         FOR EACH ROW EXECUTE FUNCTION monitoring.refuse()",
    ] {
        sqlx::query(statement)
            .execute(&target)
            .await
            .expect(statement);
    }
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
