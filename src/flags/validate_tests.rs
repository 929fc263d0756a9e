//! Validation errors, each naming its field; and the parse-time shape checks.

use serde_json::{Value, json};

use super::{validate, validate_pin};
use crate::flags::{Flag, Pin};

fn flag(definition: Value) -> Flag {
    serde_json::from_value(definition).expect("flag parses")
}

fn fields(definition: Value) -> Vec<String> {
    match validate(&flag(definition)) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.into_iter().map(|e| e.field).collect(),
    }
}

#[test]
fn a_minimal_boolean_flag_is_valid_with_on_and_off_variants() {
    let flag = flag(json!({"key": "dashboard.transport", "type": "boolean", "description": "x"}));
    assert_eq!(validate(&flag), Ok(()));
    assert_eq!(flag.variants.get("on"), Some(&json!(true)));
    assert_eq!(flag.variants.get("off"), Some(&json!(false)));
    assert!(flag.environments.is_empty());
}

#[test]
fn each_invalid_definition_names_its_field() {
    let env =
        |config: Value| json!({"key": "f", "type": "boolean", "environments": {"prod": config}});
    let rule =
        |constraint: Value| env(json!({"rules": [{"variant": "on", "constraints": [constraint]}]}));
    #[rustfmt::skip]
    let cases: Vec<(Value, &str)> = vec![
        (json!({"key": "Bad Key", "type": "boolean"}), "key"),
        (json!({"key": "", "type": "boolean"}), "key"),
        (json!({"key": "-x", "type": "boolean"}), "key"),
        (json!({"key": "k".repeat(129), "type": "boolean"}), "key"),
        (json!({"key": "f", "type": "string"}), "variants"),
        (json!({"key": "f", "type": "boolean", "variants": {"on": "yes", "off": false}}), "variants.on"),
        (json!({"key": "f", "type": "number", "variants": {"one": "1"}}), "variants.one"),
        (json!({"key": "f", "type": "string", "variants": {"bad name": "x"}}), "variants.bad name"),
        (json!({"key": "f", "type": "boolean", "environments": {"Prod": {}}}), "environments.Prod"),
        (env(json!({"rollout": {"percentage": 150}})), "environments.prod.rollout.percentage"),
        (env(json!({"rollout": {"percentage": -1}})), "environments.prod.rollout.percentage"),
        (env(json!({"rollout": {"percentage": 12.5}})), "environments.prod.rollout.percentage"),
        (env(json!({"rollout": {"variant": "maybe"}})), "environments.prod.rollout.variant"),
        (env(json!({"rollout": {"group_id": ""}})), "environments.prod.rollout.group_id"),
        (env(json!({"rollout": {"variant_weights": [{"variant": "on", "weight": 500},
                                                    {"variant": "off", "weight": 400}]}})),
         "environments.prod.rollout.variant_weights"),
        (env(json!({"rollout": {"variant_weights": [{"variant": "on", "weight": 500},
                                                    {"variant": "nope", "weight": 500}]}})),
         "environments.prod.rollout.variant_weights[1].variant"),
        (env(json!({"rollout": {"variant_weights": [{"variant": "on", "weight": 500},
                                                    {"variant": "on", "weight": 500}]}})),
         "environments.prod.rollout.variant_weights[1].variant"),
        (env(json!({"off_variant": "nope"})), "environments.prod.off_variant"),
        (env(json!({"default_variant": "nope"})), "environments.prod.default_variant"),
        (env(json!({"rules": [{"variant": "nope"}]})), "environments.prod.rules[0].variant"),
        (env(json!({"rules": [{"variant": "on", "targeting_keys": [""]}]})),
         "environments.prod.rules[0].targeting_keys[0]"),
        (rule(json!({"attribute": "a", "operator": "in", "values": []})),
         "environments.prod.rules[0].constraints[0].values"),
        (rule(json!({"attribute": "", "operator": "in", "values": ["x"]})),
         "environments.prod.rules[0].constraints[0].attribute"),
        (rule(json!({"attribute": "a", "operator": "num_gt", "values": ["1", "2"]})),
         "environments.prod.rules[0].constraints[0].values"),
        (rule(json!({"attribute": "a", "operator": "num_lt", "values": ["ten"]})),
         "environments.prod.rules[0].constraints[0].values[0]"),
        (rule(json!({"attribute": "a", "operator": "semver_gte", "values": ["1.2"]})),
         "environments.prod.rules[0].constraints[0].values[0]"),
    ];
    for (definition, field) in cases {
        let found = fields(definition.clone());
        assert!(
            found.iter().any(|f| f == field),
            "expected `{field}` in {found:?} for {definition}"
        );
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let found = fields(json!({
        "key": "BAD", "type": "boolean",
        "environments": {"prod": {"off_variant": "x", "rollout": {"percentage": 101}}}
    }));
    assert_eq!(
        found,
        [
            "key",
            "environments.prod.off_variant",
            "environments.prod.rollout.percentage"
        ]
    );
}

#[test]
fn a_full_definition_with_every_operator_is_valid() {
    let definition = json!({
        "key": "broadcast.strategy", "type": "string", "description": "which path",
        "variants": {"websocket": "websocket", "realtime": "realtime", "dual": "dual"},
        "environments": {"production": {
            "enabled": true, "off_variant": "websocket", "default_variant": "websocket",
            "rules": [{"description": "ops", "targeting_keys": ["ops-1"], "variant": "dual",
                       "constraints": [
                           {"attribute": "region", "operator": "not_in", "values": ["eu"]},
                           {"attribute": "build", "operator": "num_gte", "values": ["10"]},
                           {"attribute": "app", "operator": "semver_lt", "values": ["v2.0.0-rc.1"]}
                       ]}],
            "rollout": {"percentage": 25, "variant": "realtime", "group_id": "transport",
                        "variant_weights": [{"variant": "realtime", "weight": 900},
                                            {"variant": "dual", "weight": 100}]}
        }}
    });
    assert_eq!(validate(&flag(definition.clone())), Ok(()));
    // And it survives a round trip unchanged (percentage written back as an integer).
    let written = serde_json::to_value(flag(definition.clone())).expect("serializes");
    assert_eq!(
        written["environments"]["production"]["rollout"]["percentage"],
        json!(25)
    );
    assert_eq!(flag(written), flag(definition));
}

#[test]
fn unknown_fields_and_value_types_are_refused_at_parse_time() {
    for bad in [
        json!({"key": "f", "type": "float"}),
        json!({"key": "f", "type": "boolean", "colour": "red"}),
        json!({"key": "f", "type": "boolean", "environments": {"p": {"enabeld": true}}}),
        json!({"key": "f", "type": "boolean", "environments": {"p": {"rollout": {"pct": 5}}}}),
        json!({"key": "f", "type": "boolean", "environments": {"p": {"rules": [
            {"variant": "on", "constraints": [{"attribute": "a", "operator": "like", "values": []}]}
        ]}}}),
    ] {
        assert!(
            serde_json::from_value::<Flag>(bad.clone()).is_err(),
            "{bad} parsed"
        );
    }
}

#[test]
fn a_pin_must_suit_the_flag_type() {
    let flag = flag(json!({"key": "validation.enabled", "type": "boolean"}));
    assert!(
        validate_pin(
            &flag,
            &Pin::new("MONITORING_ENABLE_VALIDATION", json!(true))
        )
        .is_ok()
    );
    let error = validate_pin(
        &flag,
        &Pin::new("MONITORING_ENABLE_VALIDATION", json!("yes")),
    )
    .expect_err("a string is not a boolean");
    assert_eq!(error.field, "value");
    assert!(error.message.contains("MONITORING_ENABLE_VALIDATION"));
}
