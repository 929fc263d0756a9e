//! `switchyard send`: from a file, stdin or arguments; batches; a refused batch named by its
//! input line; malformed input; a shed batch sent again.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::{TempFile, assert_failure, assert_success, finish, ndjson, run, stdout, switchyard};
use crate::support::wait::{self, Look};
use crate::support::{WAIT, spawn_app, spawn_app_with};

#[tokio::test]
async fn send_publishes_every_event_of_a_large_ndjson_file_in_order() {
    let app = spawn_app().await;
    let file = TempFile::with(&ndjson(2_500));

    let output = run(&app, &["send", file.path()]).await;

    assert_success(&output);
    assert!(
        stdout(&output).contains("accepted 2500 events in 3 requests"),
        "{}",
        stdout(&output)
    );
    assert_eq!(app.state.hub.head(), 2_500);
    let last = app.state.hub.recent(1);
    assert_eq!(last[0].event.event_type, "cli-2499");
}

#[tokio::test]
async fn send_reads_ndjson_from_stdin() {
    let app = spawn_app().await;

    let output = finish(
        switchyard(&app, &["send"], &[]),
        Some(ndjson(1_200).into_bytes()),
    )
    .await;

    assert_success(&output);
    assert_eq!(app.state.hub.head(), 1_200);
}

#[tokio::test]
async fn send_from_arguments_publishes_one_event_with_its_data() {
    let app = spawn_app().await;

    let output = run(
        &app,
        &[
            "send",
            "--type",
            "cache_metrics",
            "--source",
            "api",
            "--data",
            r#"{"hit_rate":0.9}"#,
            "--json",
        ],
    )
    .await;

    assert_success(&output);
    let receipt: Value = serde_json::from_str(&stdout(&output)).expect("JSON receipts");
    assert_eq!(receipt["accepted"], 1);
    let published = app.state.hub.recent(1);
    assert_eq!(published[0].event.data["hit_rate"], 0.9);
}

#[tokio::test]
async fn a_bad_event_exits_non_zero_naming_its_line_and_nothing_of_its_batch_is_broadcast() {
    let app = spawn_app().await;
    let mut lines: Vec<String> = ndjson(1_500).lines().map(String::from).collect();
    // Line 1,203 is in the second batch (lines 1,001 to 1,500).
    lines[1_202] = json!({"event_type": "", "source": "cli-test"}).to_string();
    let file = TempFile::with(&(lines.join("\n") + "\n"));

    let output = run(&app, &["send", file.path()]).await;

    let err = assert_failure(&output);
    assert!(err.contains("400 Bad Request"), "{err}");
    assert!(err.contains("line 1203: event_type:"), "{err}");
    assert!(
        err.contains("the 1000 events before it were published"),
        "{err}"
    );
    assert_eq!(
        app.state.hub.head(),
        1_000,
        "the refused batch was broadcast"
    );
}

#[tokio::test]
async fn malformed_json_in_the_input_publishes_nothing() {
    let app = spawn_app().await;
    let file = TempFile::with(&(ndjson(3) + "{not json}\n"));

    let output = run(&app, &["send", file.path()]).await;

    let err = assert_failure(&output);
    assert!(err.contains("line 4"), "{err}");
    assert_eq!(app.state.hub.head(), 0);
}

#[tokio::test]
async fn send_tries_a_shed_batch_again_and_publishes_it_once() {
    let app = spawn_app_with(|config| config.max_concurrent_requests = 1).await;
    // Hold the one request slot: a publish whose body never ends until we say so.
    let (body, held) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let request = app
        .client
        .post(app.url("/v1/events"))
        .bearer_auth(&app.admin_key)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(
            tokio_stream::wrappers::ReceiverStream::new(held),
        ))
        .send();
    let holder = tokio::spawn(request);
    body.send(Ok(b"[".to_vec()))
        .await
        .expect("send the first byte");
    wait::until("the held request to take the one slot", async || {
        let status = app.get("/health/live", app.admin()).await.status();
        Look::ready_if(status == 503, status)
    })
    .await;

    let mut command = switchyard(&app, &["send"], &[]);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut send = command.spawn().expect("run send");
    let mut stdin = send.stdin.take().expect("stdin");
    stdin
        .write_all(ndjson(10).as_bytes())
        .await
        .expect("write stdin");
    drop(stdin);
    let mut errors = BufReader::new(send.stderr.take().expect("stderr")).lines();
    let busy = tokio::time::timeout(WAIT, errors.next_line())
        .await
        .expect("no retry notice in time")
        .expect("read stderr")
        .expect("stderr ended");
    assert!(busy.contains("the server is busy (503)"), "{busy}");

    drop(body); // The held request ends (refused: its body is not JSON), freeing the slot.
    let _ = holder.await;
    let output = tokio::time::timeout(WAIT, send.wait_with_output())
        .await
        .expect("send did not finish in time")
        .expect("send ran");
    assert_success(&output);
    assert_eq!(
        app.state.hub.head(),
        10,
        "the batch was not published exactly once"
    );
}
