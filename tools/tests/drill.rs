//! The migration drill, short: 10 dashboards, 200 events/s, 2 s stages, a 2 s outage. It runs
//! the real `switchyard-bench drill` binary against the local Postgres (scratch databases it
//! creates and drops) and reads its `--json` report: the exit status says every promise held,
//! and the report's own figures are checked here too, so a drill that lied about its checks
//! would still fail.

use std::process::Command;

use serde_json::Value;

#[test]
fn a_short_drill_rolls_back_on_the_fault_recovers_and_completes_with_nothing_lost() {
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard-bench"))
        .args(["drill", "--json", "--rate", "200", "--subscribers", "10"])
        .args(["--hold-s", "2", "--outage-s", "2", "--fault-after-s", "0"])
        .output()
        .expect("the drill runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");

    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON report");
    let dashboards = report["dashboards"].as_array().expect("dashboards");
    assert_eq!(dashboards.len(), 10);
    let published = report["published"].as_u64().unwrap();
    assert!(published > 1_000, "{report:#}");
    for dashboard in dashboards {
        assert_eq!(dashboard["delivered"], published, "{dashboard}");
        assert_eq!(
            (
                dashboard["missing"].as_u64(),
                dashboard["duplicated"].as_u64()
            ),
            (Some(0), Some(0))
        );
        assert!(
            dashboard["transport_changes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "websocket"),
            "{dashboard}"
        );
    }
    assert_eq!(
        report["realtime_rows"], report["routed_to_realtime"],
        "{report:#}"
    );
    assert_eq!(report["realtime_missing"], 0);
    assert_eq!(report["dropped"], 0);
    assert!(
        report["replayed"].as_u64().unwrap() > 0,
        "the backlog replayed: {report:#}"
    );
    for plan in report["plans"].as_array().unwrap() {
        assert_eq!(
            (plan["status"].as_str(), plan["percentage"].as_u64()),
            (Some("completed"), Some(100))
        );
    }
    let timeline: Vec<&str> = report["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry[1].as_str().unwrap())
        .collect();
    let at = |what: &str| {
        timeline
            .iter()
            .position(|t| t.contains(what))
            .unwrap_or_else(|| panic!("no `{what}` in {timeline:#?}"))
    };
    assert!(at("closed -> open") < at("rolled_back at 10%"));
    assert!(at("rolled_back at 10%") < at("half_open -> closed"));
    assert!(at("half_open -> closed") < at("completed at 100%"));
}
