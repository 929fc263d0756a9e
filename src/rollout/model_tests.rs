//! The stepping rule, stage by stage.

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;

use super::*;

fn plan(on_breach: OnBreach) -> Plan {
    let at = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
    Plan {
        id: Uuid::nil(),
        flag: "f".into(),
        environment: "production".into(),
        stages: vec![
            Stage {
                percentage: 10,
                hold_ms: Some(60_000),
            },
            Stage {
                percentage: 50,
                hold_ms: Some(60_000),
            },
            Stage {
                percentage: 100,
                hold_ms: None,
            },
        ],
        guardrails: Guardrails::default(),
        on_breach,
        status: Status::Running,
        stage: Some(0),
        percentage: 10,
        initial_percentage: 5,
        stage_since: at,
        flag_version: 2,
        reason: "created".into(),
        created_by: "admin".into(),
        created_at: at,
        updated_at: at,
    }
}

fn reading(health: Health) -> GuardrailReading {
    GuardrailReading {
        guardrail: "breaker_closed:realtime".into(),
        limit: json!("closed"),
        reading: Some(json!("forced_open")),
        health,
    }
}

#[test]
fn a_plan_holds_its_stage_until_the_hold_has_passed() {
    let plan = plan(OnBreach::Rollback);
    let now = plan.stage_since + Duration::seconds(59);
    assert_eq!(next_step(&plan, &[reading(Health::Ok)], now), Step::Wait);
    let later = plan.stage_since + Duration::seconds(60);
    assert_eq!(
        next_step(&plan, &[reading(Health::Ok)], later),
        Step::Advance {
            stage: 1,
            completes: false
        }
    );
}

#[test]
fn reaching_a_last_stage_without_a_hold_completes_the_plan() {
    let mut plan = plan(OnBreach::Rollback);
    plan.stage = Some(1);
    let later = plan.stage_since + Duration::minutes(2);
    assert_eq!(
        next_step(&plan, &[], later),
        Step::Advance {
            stage: 2,
            completes: true
        }
    );
    plan.stages[2].hold_ms = Some(1000);
    assert_eq!(
        next_step(&plan, &[], later),
        Step::Advance {
            stage: 2,
            completes: false
        }
    );
    plan.stage = Some(2);
    plan.stage_since = later;
    assert_eq!(next_step(&plan, &[], later), Step::Wait);
    assert_eq!(
        next_step(&plan, &[], later + Duration::seconds(1)),
        Step::Complete
    );
}

#[test]
fn missing_readings_neither_breach_nor_block() {
    let plan = plan(OnBreach::Rollback);
    let later = plan.stage_since + Duration::minutes(1);
    assert_eq!(
        next_step(&plan, &[reading(Health::NoData)], later),
        Step::Advance {
            stage: 1,
            completes: false
        }
    );
}

#[test]
fn a_breach_steps_back_one_stage_at_once_and_says_why() {
    let mut plan = plan(OnBreach::Rollback);
    plan.stage = Some(1);
    let Step::Breach {
        stage,
        percentage,
        status,
        reason,
    } = next_step(&plan, &[reading(Health::Breached)], plan.stage_since)
    else {
        panic!("expected a breach");
    };
    assert_eq!(
        (stage, percentage, status),
        (Some(0), 10, Status::RolledBack)
    );
    assert!(reason.contains("breaker_closed:realtime"), "{reason}");
    assert!(reason.contains("forced_open"), "{reason}");
}

#[test]
fn a_breach_in_the_first_stage_goes_back_to_the_percentage_before_the_plan() {
    let plan = plan(OnBreach::Rollback);
    let step = next_step(&plan, &[reading(Health::Breached)], plan.stage_since);
    assert!(matches!(
        step,
        Step::Breach {
            stage: None,
            percentage: 5,
            status: Status::RolledBack,
            ..
        }
    ));
}

#[test]
fn a_breach_with_abort_goes_to_zero() {
    let mut plan = plan(OnBreach::Abort);
    plan.stage = Some(1);
    let step = next_step(&plan, &[reading(Health::Breached)], plan.stage_since);
    assert!(matches!(
        step,
        Step::Breach {
            stage: None,
            percentage: 0,
            status: Status::Aborted,
            ..
        }
    ));
}

#[test]
fn only_a_running_plan_moves() {
    for status in [
        Status::Paused,
        Status::Completed,
        Status::RolledBack,
        Status::Aborted,
    ] {
        let mut plan = plan(OnBreach::Rollback);
        plan.status = status;
        let later = plan.stage_since + Duration::hours(1);
        assert_eq!(
            next_step(&plan, &[reading(Health::Breached)], later),
            Step::Wait
        );
        assert_eq!(plan.next_step_at(), None);
    }
}
