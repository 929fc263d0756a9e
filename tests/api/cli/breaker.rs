//! `switchyard breaker`: actions, status for people and scripts, an unknown name, and `watch`
//! following transitions and ending when its reader goes away.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{assert_failure, assert_success, run, stderr, stdout, switchyard};
use crate::support::wait::{Look, Patience};
use crate::support::{WAIT, spawn_app};

#[tokio::test]
async fn breaker_force_open_then_status_json_shows_it_forced_open() {
    let app = spawn_app().await;

    let forced = run(
        &app,
        &[
            "breaker",
            "force-open",
            "realtime",
            "--reason",
            "maintenance",
        ],
    )
    .await;
    assert_success(&forced);
    assert!(
        stdout(&forced).contains("forced_open"),
        "{}",
        stdout(&forced)
    );

    let status = run(&app, &["breaker", "status", "realtime", "--json"]).await;
    assert_success(&status);
    let status: Value = serde_json::from_str(&stdout(&status)).expect("JSON status");
    assert_eq!(status["state"], "forced_open");
    assert_eq!(status["mode"], "force_open");

    // The one-breaker view shows its recent history too (written in the background).
    // Each look runs the CLI, which takes its own time: no pause between looks.
    let view = Patience::DEFAULT
        .every(Duration::ZERO)
        .until("the history in the one-breaker view", async || {
            let view = stdout(&run(&app, &["breaker", "status", "realtime"]).await);
            if view.contains("maintenance") {
                Look::Ready(view)
            } else {
                Look::NotYet(view)
            }
        })
        .await;
    assert!(view.contains("closed  forced_open"), "{view}");

    let auto = run(&app, &["breaker", "auto", "realtime", "--json"]).await;
    assert_success(&auto);
    let all = run(&app, &["breaker", "status", "--json"]).await;
    let all: Value = serde_json::from_str(&stdout(&all)).expect("JSON statuses");
    assert_eq!(all[0]["state"], "closed", "{all:#}");
}

#[tokio::test]
async fn breaker_watch_prints_the_state_then_a_line_for_each_transition_as_it_happens() {
    let app = spawn_app().await;
    let mut command = switchyard(&app, &["breaker", "watch", "realtime", "--json"], &[]);
    let mut watch = command.stdout(Stdio::piped()).spawn().expect("run watch");
    let mut lines = BufReader::new(watch.stdout.take().expect("stdout")).lines();
    let mut next = async || -> Value {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("watch printed nothing in time")
            .expect("read watch output")
            .expect("watch ended");
        serde_json::from_str(&line).expect("a JSON line")
    };

    // The current state comes first: once it is printed, the watch is following.
    let first = next().await;
    assert_eq!(first["event"], "state", "{first}");
    assert_eq!(first["data"]["state"], "closed", "{first}");
    assert_success(&run(&app, &["breaker", "force-open", "realtime"]).await);

    let transition = loop {
        let line = next().await;
        if line["event"] == "transition" {
            break line;
        }
        assert_eq!(line["event"], "sample", "{line}");
    };
    assert_eq!(transition["data"]["breaker"], "realtime");
    assert_eq!(transition["data"]["to"], "forced_open");
    watch.kill().await.expect("stop watch");
}

#[tokio::test]
async fn an_unknown_breaker_exits_non_zero_naming_the_known_ones() {
    let app = spawn_app().await;
    let output = run(&app, &["breaker", "force-open", "nope"]).await;
    let err = assert_failure(&output);
    assert!(err.contains("404 Not Found: no breaker `nope`"), "{err}");
    assert!(err.contains("known breakers: realtime"), "{err}");
}

#[tokio::test]
async fn watch_ends_quietly_when_its_reader_goes_away() {
    let app = spawn_app().await;
    let mut command = switchyard(&app, &["breaker", "watch"], &[]);
    let mut watch = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run watch");
    let mut lines = BufReader::new(watch.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("a first line in time");
    assert!(
        first
            .expect("read")
            .is_some_and(|line| line.contains("realtime"))
    );

    // As `| head -1` does: the reader closes the pipe; the next line (a sample) cannot go out.
    drop(lines);
    let output = tokio::time::timeout(WAIT, watch.wait_with_output())
        .await
        .expect("watch did not end after its reader went away")
        .expect("watch ran");
    let err = stderr(&output);
    assert!(output.status.success(), "{:?}: {err}", output.status);
    assert!(!err.contains("panicked"), "{err}");
}
