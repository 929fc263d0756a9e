//! Every invalid definition is refused whole, as problem+json naming the bad field, and
//! nothing is stored: the flag keeps its version and its history gains no row.

use reqwest::Method;
use serde_json::{Value, json};

use super::ENV;
use crate::support::{TestApp, assert_problem, spawn_app};

/// One invalid request: what it is, where it goes, and the field the refusal must name.
struct Case {
    what: &'static str,
    method: Method,
    path: String,
    body: Value,
    field: String,
}

fn case(
    what: &'static str,
    method: Method,
    path: &str,
    body: Value,
    field: impl Into<String>,
) -> Case {
    Case {
        what,
        method,
        path: path.to_string(),
        body,
        field: field.into(),
    }
}

/// Sends the case; asserts 400 or 422 problem+json with an `errors[].field` equal to the
/// expected field.
async fn assert_refused(app: &TestApp, case: &Case) {
    let response = app
        .admin_json(case.method.clone(), &case.path, &case.body)
        .await;
    let status = response.status().as_u16();
    assert!(
        status == 400 || status == 422,
        "{}: expected 400 or 422, got {status}",
        case.what
    );
    let problem = assert_problem(response, status).await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        fields.contains(&case.field.as_str()),
        "{}: the problem does not name `{}`: {problem:#}",
        case.what,
        case.field
    );
}

#[tokio::test]
async fn an_invalid_new_flag_is_refused_naming_the_field_and_nothing_is_created() {
    let app = spawn_app().await;
    let count = async || {
        let list = app.get("/v1/flags?archived=true", app.admin()).await;
        super::ok_json(list).await["flags"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = count().await;
    let create = |what, body, field| case(what, Method::POST, "/v1/flags", body, field);
    let cases = [
        create(
            "a bad key",
            json!({"key": "Bad Key!", "type": "boolean"}),
            "key",
        ),
        create(
            "an unknown value type",
            json!({"key": "f", "type": "float"}),
            "type",
        ),
        create(
            "an unknown field",
            json!({"key": "f", "type": "boolean", "colour": "red"}),
            "colour",
        ),
        create(
            "a variant of the wrong type",
            json!({"key": "f", "type": "number", "variants": {"one": "1"}}),
            "variants.one",
        ),
    ];
    for case in &cases {
        assert_refused(&app, case).await;
    }
    assert_eq!(count().await, before, "an invalid flag was stored");
}

#[tokio::test]
async fn an_invalid_change_is_refused_naming_the_field_and_the_flag_keeps_its_version() {
    let app = spawn_app().await;
    app.create_boolean_flag("steady").await;
    let (etag, flag) = app.read_flag("steady").await;
    let history = app.history("steady").await;
    let rollout = format!("/v1/flags/steady/environments/{ENV}/rollout");
    let rules = format!("/v1/flags/steady/environments/{ENV}/rules");
    let one_rule =
        |constraint: Value| json!({"rules": [{"constraints": [constraint], "variant": "on"}]});
    let at = |rest: &str| format!("environments.{ENV}.{rest}");
    let cases = [
        case(
            "a percentage over 100",
            Method::PUT,
            &rollout,
            json!({"percentage": 150}),
            at("rollout.percentage"),
        ),
        case(
            "a negative percentage",
            Method::PUT,
            &rollout,
            json!({"percentage": -1}),
            at("rollout.percentage"),
        ),
        case(
            "weights that do not add up to 1000",
            Method::PUT,
            &rollout,
            json!({"percentage": 50, "variant_weights": [
                {"variant": "on", "weight": 300}, {"variant": "off", "weight": 300}]}),
            at("rollout.variant_weights"),
        ),
        case(
            "an unknown operator",
            Method::PUT,
            &rules,
            one_rule(json!({"attribute": "region", "operator": "greater", "values": ["1"]})),
            "rules[0].constraints[0].operator",
        ),
        case(
            "a semver value that does not parse",
            Method::PUT,
            &rules,
            one_rule(json!({"attribute": "app", "operator": "semver_gte", "values": ["2.x"]})),
            at("rules[0].constraints[0].values[0]"),
        ),
        case(
            "a numeric value that does not parse",
            Method::PUT,
            &rules,
            one_rule(json!({"attribute": "load", "operator": "num_gt", "values": ["high"]})),
            at("rules[0].constraints[0].values[0]"),
        ),
        case(
            "a rule naming an unknown variant",
            Method::PUT,
            &rules,
            json!({"rules": [{"targeting_keys": ["ops-1"], "variant": "maybe"}]}),
            at("rules[0].variant"),
        ),
        case(
            "a replacement with an unknown field",
            Method::PUT,
            "/v1/flags/steady",
            json!({"key": "steady", "type": "boolean",
                   "environments": {ENV: {"enabled": true, "enabeld": false}}}),
            at("enabeld"),
        ),
        case(
            "a replacement with an unknown value type",
            Method::PUT,
            "/v1/flags/steady",
            json!({"key": "steady", "type": "bool"}),
            "type",
        ),
    ];
    for case in &cases {
        assert_refused(&app, case).await;
        let (etag_now, flag_now) = app.read_flag("steady").await;
        assert_eq!(
            (&etag_now, &flag_now),
            (&etag, &flag),
            "{} changed the flag",
            case.what
        );
    }
    assert_eq!(
        app.history("steady").await,
        history,
        "an audit row was added"
    );
}
