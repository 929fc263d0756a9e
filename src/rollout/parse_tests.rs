//! Plans and holds as operators write them, and every bad field named.

use serde_json::json;

use super::*;

fn fields(body: Value) -> Vec<String> {
    match parse_plan(body, |name| name == "realtime") {
        Err(RolloutError::Invalid(errors)) => errors.into_iter().map(|e| e.field).collect(),
        Err(other) => panic!("expected a validation error, got {other}"),
        Ok(plan) => panic!("expected a validation error, got {plan:?}"),
    }
}

#[test]
fn holds_read_like_humans_write_them() {
    assert_eq!(parse_hold("2s"), Ok(Duration::from_secs(2)));
    assert_eq!(parse_hold("10m"), Ok(Duration::from_secs(600)));
    assert_eq!(parse_hold("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(parse_hold("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_hold("250ms"), Ok(Duration::from_millis(250)));
    for bad in [
        "",
        "10",
        "m",
        "10 minutes",
        "-1s",
        "30m1h",
        "1m1m",
        "1.5h",
        "99999999999999999d",
    ] {
        assert!(parse_hold(bad).is_err(), "`{bad}` should be refused");
    }
}

#[test]
fn holds_are_written_back_as_they_read() {
    for text in ["2s", "10m", "1h", "1h30m", "250ms", "1d2h3m4s5ms"] {
        assert_eq!(format_hold(parse_hold(text).unwrap()), text);
    }
}

#[test]
fn a_good_plan_parses_with_its_defaults() {
    let plan = parse_plan(
        json!({"flag": "f", "environment": "production",
               "stages": [{"percentage": 10, "hold": "1s"}, {"percentage": 100}]}),
        |_| true,
    )
    .unwrap();
    assert_eq!(
        plan.stages[0],
        Stage {
            percentage: 10,
            hold_ms: Some(1000)
        }
    );
    assert_eq!(plan.stages[1].hold_ms, None);
    assert_eq!(plan.on_breach, OnBreach::Rollback);
    assert!(plan.guardrails.breaker_closed.is_empty());
}

#[test]
fn every_bad_field_is_named_at_once() {
    let got = fields(json!({"flag": "Bad Key", "environment": "prod",
        "stages": [{"percentage": 50, "hold": "soon"}, {"percentage": 10},
                   {"percentage": 150.5}],
        "guardrails": {"breaker_closed": ["realtime", "nope"], "min_consistency": 120,
                       "max_realtime_p99_ms": 0}}));
    assert_eq!(
        got,
        [
            "flag",
            "stages[0].hold",
            "stages[1].percentage",
            "stages[1].hold",
            "stages[2].percentage",
            "guardrails.breaker_closed[1]",
            "guardrails.min_consistency",
            "guardrails.max_realtime_p99_ms",
        ]
    );
}

#[test]
fn shape_errors_name_the_field() {
    assert_eq!(
        fields(json!({"flag": "f", "environment": "p", "stages": []})),
        ["stages"]
    );
    assert_eq!(
        fields(json!({"flag": "f", "environment": "p", "stages": [], "colour": 1})),
        ["colour"]
    );
    assert_eq!(
        fields(
            json!({"flag": "f", "environment": "p", "stages": [{"percentage": 1}],
                      "on_breach": "panic"})
        ),
        ["on_breach"]
    );
    assert_eq!(fields(json!({"environment": "p", "stages": []})), ["flag"]);
}

#[test]
fn a_hold_over_thirty_days_is_refused_by_name() {
    let got = fields(json!({"flag": "f", "environment": "p",
        "stages": [{"percentage": 10, "hold": "100000000d"}, {"percentage": 20, "hold": "30d1ms"},
                   {"percentage": 30, "hold": "30d"}, {"percentage": 40}]}));
    assert_eq!(got, ["stages[0].hold", "stages[1].hold"]);
}
