//! The admin API: create and flip, roll out, `If-Match` races, the audit log, restore and
//! archive.

use reqwest::Method;
use serde_json::{Value, json};
use switchyard::api::auth::Scope;

use super::{ENV, etag, ok_json};
use crate::support::{Credential, spawn_app};

#[tokio::test]
async fn a_boolean_flag_created_from_key_type_and_description_is_off_until_flipped_on() {
    let app = spawn_app().await;

    let response = app
        .admin_json(
            Method::POST,
            "/v1/flags",
            &json!({"key": "new-ui", "type": "boolean", "description": "the new dashboard"}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(etag(&response), "\"1\"");
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["version"], 1, "{created:#}");
    assert_eq!(created["variants"], json!({"on": true, "off": false}));

    let off = app
        .evaluate("new-ui", json!({"targeting_key": "user-1"}))
        .await;
    assert_eq!(off["value"], false, "{off}");
    assert_eq!(off["reason"], "DISABLED", "{off}");
    assert_eq!(off["variant"], "off", "{off}");

    let response = app.flip("new-ui", true).await;
    assert_eq!(etag(&response), "\"2\"");
    assert_eq!(ok_json(response).await["version"], 2);
    let on = app
        .evaluate("new-ui", json!({"targeting_key": "user-1"}))
        .await;
    assert_eq!(on["value"], true, "{on}");
    assert_eq!(on["reason"], "STATIC", "{on}");
    assert_eq!(on["version"], 2, "{on}");
}

#[tokio::test]
async fn a_25_percent_rollout_lets_some_keys_in_and_keeps_the_others_out_every_time() {
    let app = spawn_app().await;
    app.create_boolean_flag("new-ui").await;
    app.flip_ok("new-ui", true).await;

    let response = app.set_rollout("new-ui", &json!({"percentage": 25})).await;
    assert_eq!(etag(&response), "\"3\"");
    ok_json(response).await;

    let keys: Vec<String> = (0..100).map(|i| format!("dashboard-{i}")).collect();
    let mut first = Vec::new();
    for key in &keys {
        let result = app.evaluate("new-ui", json!({"targeting_key": key})).await;
        match result["reason"].as_str() {
            Some("SPLIT") => assert_eq!(result["value"], true, "{result}"),
            Some("DEFAULT") => assert_eq!(result["value"], false, "{result}"),
            _ => panic!("a rollout answers SPLIT or DEFAULT: {result}"),
        }
        first.push(result["value"].clone());
    }
    let inside = first.iter().filter(|v| **v == true).count();
    assert!(
        (10..=45).contains(&inside),
        "{inside} of 100 keys inside a 25% rollout"
    );
    // Sticky: the same key gets the same answer again.
    for (key, before) in keys.iter().zip(&first) {
        let again = app.evaluate("new-ui", json!({"targeting_key": key})).await;
        assert_eq!(&again["value"], before, "{key} changed sides: {again}");
    }
}

#[tokio::test]
async fn of_two_writers_with_the_same_etag_exactly_one_wins_and_the_other_gets_412() {
    let app = spawn_app().await;
    app.create_boolean_flag("race").await;
    let (etag_before, _) = app.read_flag("race").await;
    let history_before = app.history("race").await.len();

    let conditional = |method: Method, path: String, body: Value| {
        let mut request = app
            .client
            .request(method, app.url(&path))
            .bearer_auth(&app.admin_key)
            .header("if-match", &etag_before);
        if !body.is_null() {
            request = request.json(&body);
        }
        request.send()
    };
    let (flip, rollout) = tokio::join!(
        conditional(
            Method::POST,
            format!("/v1/flags/race/environments/{ENV}/on"),
            Value::Null
        ),
        conditional(
            Method::PUT,
            format!("/v1/flags/race/environments/{ENV}/rollout"),
            json!({"percentage": 50})
        ),
    );
    let mut statuses = [
        flip.unwrap().status().as_u16(),
        rollout.unwrap().status().as_u16(),
    ];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 412]);

    let (etag_after, flag) = app.read_flag("race").await;
    assert_eq!(etag_after, "\"2\"");
    assert_eq!(flag["version"], 2);
    assert_eq!(app.history("race").await.len(), history_before + 1);
}

#[tokio::test]
async fn a_stale_if_match_is_refused_with_412_and_changes_nothing() {
    let app = spawn_app().await;
    app.create_boolean_flag("careful").await;
    app.flip_ok("careful", true).await;
    let (_, before) = app.read_flag("careful").await;
    let history_before = app.history("careful").await;

    let response = app
        .client
        .post(app.url(&format!("/v1/flags/careful/environments/{ENV}/off")))
        .bearer_auth(&app.admin_key)
        .header("if-match", "\"1\"")
        .send()
        .await
        .unwrap();

    let problem = crate::support::assert_problem(response, 412).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("version 2"),
        "{problem}"
    );
    let (etag_after, after) = app.read_flag("careful").await;
    assert_eq!(etag_after, "\"2\"");
    assert_eq!(after, before);
    assert_eq!(app.history("careful").await, history_before);
}

#[tokio::test]
async fn every_write_is_audited_with_the_keys_name_the_reason_and_before_and_after() {
    let app = spawn_app().await;
    let operator = app.create_key(Scope::Admin).await;
    let as_operator = Credential::Bearer(&operator.key);
    let created = app
        .send_json(
            Method::POST,
            "/v1/flags?reason=ticket-42",
            as_operator,
            &json!({"key": "audited", "type": "boolean", "description": "d"}),
        )
        .await;
    assert_eq!(created.status().as_u16(), 201);
    let path = format!("/v1/flags/audited/environments/{ENV}/on?reason=launch%20day");
    let flipped = app
        .send_json(Method::POST, &path, as_operator, &Value::Null)
        .await;
    ok_json(flipped).await;

    let history = app.history("audited").await;
    let [flip, create] = history.as_slice() else {
        panic!("expected two audit rows: {history:#?}");
    };
    for row in [flip, create] {
        assert_eq!(row["actor"], operator.record.name.as_str(), "{row}");
    }
    assert_eq!(create["action"], "create");
    assert_eq!(create["reason"], "ticket-42");
    assert_eq!(create["before"], Value::Null);
    assert_eq!(create["after"]["key"], "audited");
    assert_eq!(
        (create["version"].as_i64(), flip["version"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(flip["action"], "flip_on");
    assert_eq!(flip["reason"], "launch day");
    assert_eq!(flip["before"], create["after"]);
    assert_eq!(
        flip["after"]["environments"][ENV]["enabled"], true,
        "{flip}"
    );
}

#[tokio::test]
async fn restoring_version_1_stores_its_definition_as_a_new_version() {
    let app = spawn_app().await;
    app.create_boolean_flag("restorable").await;
    app.flip_ok("restorable", true).await;
    ok_json(
        app.set_rollout("restorable", &json!({"percentage": 10}))
            .await,
    )
    .await;

    let response = app
        .admin_json(
            Method::POST,
            "/v1/flags/restorable/restore",
            &json!({"version": 1}),
        )
        .await;

    assert_eq!(etag(&response), "\"4\"");
    let restored = ok_json(response).await;
    let history = app.history("restorable").await;
    let version_1 = history.iter().find(|row| row["version"] == 1).unwrap();
    for field in ["key", "type", "description", "variants", "environments"] {
        assert_eq!(restored[field], version_1["after"][field], "{field}");
    }
    assert_eq!(history[0]["action"], "restore");
    assert_eq!(history[0]["version"], 4);
    let result = app
        .evaluate("restorable", json!({"targeting_key": "u"}))
        .await;
    assert_eq!(result["reason"], "DISABLED", "{result}");
}

#[tokio::test]
async fn an_archived_flag_no_longer_evaluates_and_ofrep_answers_404_flag_not_found() {
    let app = spawn_app().await;
    app.create_boolean_flag("retired").await;
    app.flip_ok("retired", true).await;

    let response = app
        .admin_json(Method::DELETE, "/v1/flags/retired", &Value::Null)
        .await;
    assert_eq!(ok_json(response).await["archived"], true);

    let result = app.evaluate("retired", json!({"targeting_key": "u"})).await;
    assert_eq!(result["error_code"], "FLAG_NOT_FOUND", "{result}");
    let response = app
        .send_json(
            Method::POST,
            "/ofrep/v1/evaluate/flags/retired",
            app.admin(),
            &json!({"context": {"targetingKey": "u"}}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"key": "retired", "errorCode": "FLAG_NOT_FOUND",
                            "errorDetails": "flag `retired` does not exist"})
    );
    // Its history is kept.
    assert_eq!(app.history("retired").await[0]["action"], "archive");
}
