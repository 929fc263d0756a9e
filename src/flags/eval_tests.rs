//! Tier precedence, case by case, and the special cases of evaluation.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::{Value, json};

use super::Snapshot;
use crate::flags::hash::in_rollout;
use crate::flags::{ErrorCode, EvaluationContext, Flag, FlagRecord, Pin, Reason, Tier, ValueType};

const ENV: &str = "production";

fn record(definition: Value, version: i64) -> FlagRecord {
    let flag: Flag = serde_json::from_value(definition).expect("flag parses");
    FlagRecord {
        flag,
        version,
        updated_at: Utc::now(),
    }
}

/// A string flag with one variant per tier, so the variant says which tier decided.
fn checkout(enabled: bool, percentage: u32) -> FlagRecord {
    record(
        json!({
            "key": "checkout",
            "type": "string",
            "variants": {"disabled": "d", "targeted": "t", "rolled": "r", "fallback": "f"},
            "environments": {ENV: {
                "enabled": enabled,
                "off_variant": "disabled",
                "default_variant": "fallback",
                "rules": [
                    {"targeting_keys": ["vip"], "variant": "targeted"},
                    {"constraints": [{"attribute": "app_version", "operator": "semver_gte",
                                      "values": ["2.0.0"]}], "variant": "targeted"}
                ],
                "rollout": {"percentage": percentage, "variant": "rolled"}
            }}
        }),
        7,
    )
}

/// The first `user-N` inside (or outside) `percentage` for group `checkout`.
fn key_where(inside: bool, percentage: u32) -> String {
    (0..)
        .map(|i| format!("user-{i}"))
        .find(|key| in_rollout("checkout", key, percentage) == inside)
        .expect("some key")
}

fn pins(pinned: bool) -> BTreeMap<String, Pin> {
    let mut pins = BTreeMap::new();
    if pinned {
        pins.insert(
            "checkout".into(),
            Pin::new("SWITCHYARD_FLAG_CHECKOUT", json!("t")),
        );
    }
    pins
}

#[test]
fn each_tier_beats_the_ones_below_it() {
    let inside = key_where(true, 50);
    let outside = key_where(false, 50);
    struct Case<'a> {
        name: &'a str,
        pinned: bool,
        enabled: bool,
        key: &'a str,
        variant: &'a str,
        reason: Reason,
        tier: Tier,
    }
    #[rustfmt::skip]
    let cases = [
        Case { name: "pin beats kill switch", pinned: true, enabled: false, key: "vip",
               variant: "targeted", reason: Reason::Static, tier: Tier::Env },
        Case { name: "pin beats rules and rollout", pinned: true, enabled: true, key: &outside,
               variant: "targeted", reason: Reason::Static, tier: Tier::Env },
        Case { name: "kill switch beats rules", pinned: false, enabled: false, key: "vip",
               variant: "disabled", reason: Reason::Disabled, tier: Tier::KillSwitch },
        Case { name: "kill switch beats rollout", pinned: false, enabled: false, key: &inside,
               variant: "disabled", reason: Reason::Disabled, tier: Tier::KillSwitch },
        Case { name: "rules beat rollout", pinned: false, enabled: true, key: "vip",
               variant: "targeted", reason: Reason::TargetingMatch, tier: Tier::Rules },
        Case { name: "rollout beats default", pinned: false, enabled: true, key: &inside,
               variant: "rolled", reason: Reason::Split, tier: Tier::Rollout },
        Case { name: "default when nothing else decides", pinned: false, enabled: true,
               key: &outside, variant: "fallback", reason: Reason::Default, tier: Tier::Default },
    ];
    for case in cases {
        let snapshot = Snapshot::compile(1, [&checkout(case.enabled, 50)], &pins(case.pinned));
        let result = snapshot.evaluate("checkout", &EvaluationContext::for_key(case.key), ENV);
        assert_eq!(
            result.variant.as_deref(),
            Some(case.variant),
            "{}",
            case.name
        );
        assert_eq!(result.reason, case.reason, "{}", case.name);
        assert_eq!(result.tier, case.tier, "{}", case.name);
        assert_eq!(result.version, 7, "{}", case.name);
        assert_eq!(result.error_code, None, "{}", case.name);
    }
}

#[test]
fn attribute_rules_match_in_order() {
    let snapshot = Snapshot::compile(1, [&checkout(true, 0)], &BTreeMap::new());
    let new_app = EvaluationContext::for_key("anyone").with_attribute("app_version", "2.1.0");
    let old_app = EvaluationContext::for_key("anyone").with_attribute("app_version", "1.9.9");
    let result = snapshot.evaluate("checkout", &new_app, ENV);
    assert_eq!(
        (result.reason, result.value),
        (Reason::TargetingMatch, json!("t"))
    );
    let result = snapshot.evaluate("checkout", &old_app, ENV);
    assert_eq!(
        (result.reason, result.tier),
        (Reason::Default, Tier::Default)
    );
}

#[test]
fn a_full_rollout_without_rules_is_static() {
    let flag = record(
        json!({"key": "b", "type": "boolean",
                              "environments": {ENV: {"enabled": true}}}),
        2,
    );
    let snapshot = Snapshot::compile(1, [&flag], &BTreeMap::new());
    for ctx in [
        EvaluationContext::default(),
        EvaluationContext::for_key("k"),
    ] {
        let result = snapshot.evaluate("b", &ctx, ENV);
        assert_eq!(
            (result.value, result.reason, result.tier),
            (json!(true), Reason::Static, Tier::Rollout)
        );
    }
    // With rules, the same full rollout is a split (a rule could have decided).
    let snapshot = Snapshot::compile(1, [&checkout(true, 100)], &BTreeMap::new());
    let result = snapshot.evaluate("checkout", &EvaluationContext::for_key("someone"), ENV);
    assert_eq!(result.reason, Reason::Split);
}

#[test]
fn a_partial_rollout_without_a_targeting_key_is_an_error_with_the_default_value() {
    let snapshot = Snapshot::compile(1, [&checkout(true, 50)], &BTreeMap::new());
    let result = snapshot.evaluate("checkout", &EvaluationContext::default(), ENV);
    assert_eq!(result.reason, Reason::Error);
    assert_eq!(result.error_code, Some(ErrorCode::TargetingKeyMissing));
    assert_eq!(result.value, json!("f"));
    assert_eq!(result.tier, Tier::Rollout);
}

#[test]
fn zero_percent_falls_through_to_the_default() {
    let snapshot = Snapshot::compile(1, [&checkout(true, 0)], &BTreeMap::new());
    let result = snapshot.evaluate("checkout", &EvaluationContext::default(), ENV);
    assert_eq!((result.reason, result.value), (Reason::Default, json!("f")));
}

#[test]
fn a_new_boolean_flag_is_off_everywhere_and_fully_on_once_flipped() {
    let mut flag = Flag::new(
        crate::flags::FlagKey::parse("dashboard.transport").expect("valid"),
        ValueType::Boolean,
        "",
    );
    let off = FlagRecord {
        flag: flag.clone(),
        version: 1,
        updated_at: Utc::now(),
    };
    let snapshot = Snapshot::compile(1, [&off], &BTreeMap::new());
    for env in [ENV, "staging", "never-configured"] {
        let result = snapshot.evaluate("dashboard.transport", &EvaluationContext::default(), env);
        assert_eq!(
            (result.value, result.reason),
            (json!(false), Reason::Disabled),
            "{env}"
        );
    }
    flag.environment_mut(ENV).enabled = true;
    let on = FlagRecord {
        flag,
        version: 2,
        updated_at: Utc::now(),
    };
    let snapshot = Snapshot::compile(2, [&on], &BTreeMap::new());
    let result = snapshot.evaluate(
        "dashboard.transport",
        &EvaluationContext::for_key("d1"),
        ENV,
    );
    assert_eq!(
        (result.value, result.reason, result.version),
        (json!(true), Reason::Static, 2)
    );
}

#[test]
fn the_context_environment_overrides_the_default_one() {
    let snapshot = Snapshot::compile(1, [&checkout(false, 100)], &BTreeMap::new());
    let mut ctx = EvaluationContext::for_key("vip");
    assert_eq!(
        snapshot.evaluate("checkout", &ctx, ENV).reason,
        Reason::Disabled
    );
    ctx.environment = Some("staging".into());
    // `staging` is not configured: it behaves as off, with the flag's first variant.
    let result = snapshot.evaluate("checkout", &ctx, ENV);
    assert_eq!(
        (result.reason, result.variant.as_deref()),
        (Reason::Disabled, Some("disabled"))
    );
}

#[test]
fn weighted_variants_split_the_keys_inside_the_rollout() {
    let flag = record(
        json!({
            "key": "experiment", "type": "string",
            "variants": {"a": "A", "b": "B", "off": "none"},
            "environments": {ENV: {"enabled": true, "rollout": {
                "percentage": 100, "variant": "a",
                "variant_weights": [{"variant": "a", "weight": 250}, {"variant": "b", "weight": 750}]
            }}}
        }),
        1,
    );
    let snapshot = Snapshot::compile(1, [&flag], &BTreeMap::new());
    let mut b_count = 0;
    for i in 0..4000 {
        let ctx = EvaluationContext::for_key(format!("k{i}"));
        let result = snapshot.evaluate("experiment", &ctx, ENV);
        assert_eq!((result.reason, result.tier), (Reason::Split, Tier::Rollout));
        // Sticky: the same key gets the same variant every time.
        assert_eq!(
            snapshot.evaluate("experiment", &ctx, ENV).variant,
            result.variant
        );
        b_count += usize::from(result.variant.as_deref() == Some("b"));
    }
    assert!((2700..=3300).contains(&b_count), "b: {b_count} of 4000");
    let missing = snapshot.evaluate("experiment", &EvaluationContext::default(), ENV);
    assert_eq!(missing.error_code, Some(ErrorCode::TargetingKeyMissing));
}

#[test]
fn unknown_and_archived_flags_are_not_found() {
    let mut archived = checkout(true, 100);
    archived.flag.archived = true;
    let snapshot = Snapshot::compile(3, [&archived], &BTreeMap::new());
    for key in ["checkout", "nope"] {
        let result = snapshot.evaluate(key, &EvaluationContext::default(), ENV);
        assert_eq!(result.error_code, Some(ErrorCode::FlagNotFound), "{key}");
        assert_eq!((result.value, result.version), (Value::Null, 0));
    }
    assert!(
        snapshot
            .evaluate_all(&EvaluationContext::default(), ENV)
            .is_empty()
    );
}

#[test]
fn a_pin_answers_even_without_a_stored_flag() {
    let snapshot = Snapshot::compile(0, [], &pins(true));
    let result = snapshot.evaluate("checkout", &EvaluationContext::default(), ENV);
    assert_eq!(
        (result.value, result.reason, result.tier),
        (json!("t"), Reason::Static, Tier::Env)
    );
    assert_eq!((result.variant, result.version), (None, 0));
    assert_eq!(
        snapshot.pin("checkout").map(|p| p.source_variable.as_str()),
        Some("SWITCHYARD_FLAG_CHECKOUT")
    );
}

#[test]
fn an_invalid_stored_definition_answers_a_general_error() {
    let mut broken = checkout(true, 100);
    broken
        .flag
        .environments
        .get_mut(ENV)
        .expect("env")
        .rollout
        .percentage = 150.0;
    let snapshot = Snapshot::compile(1, [&broken], &BTreeMap::new());
    let result = snapshot.evaluate("checkout", &EvaluationContext::for_key("k"), ENV);
    assert_eq!(result.error_code, Some(ErrorCode::General));
    assert!(
        result
            .error_details
            .unwrap_or_default()
            .contains("rollout.percentage")
    );
}

#[test]
fn evaluate_all_answers_every_flag_in_key_order() {
    let a = record(json!({"key": "a.flag", "type": "boolean"}), 1);
    let z = record(json!({"key": "z.flag", "type": "boolean"}), 1);
    let snapshot = Snapshot::compile(4, [&z, &a, &checkout(true, 100)], &BTreeMap::new());
    let keys: Vec<String> = snapshot
        .evaluate_all(&EvaluationContext::for_key("k"), ENV)
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["a.flag", "checkout", "z.flag"]);
    assert_eq!(snapshot.revision(), 4);
}
