//! The client commands of the `switchyard` binary (`send`, `breaker`, `strategy`, `flags`), run
//! as an operator runs them against a real server: what they publish and change, what they
//! print for people and for scripts, and how they fail.

use std::process::{Output, Stdio};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use uuid::Uuid;

use crate::support::{TestApp, WAIT, spawn_app, spawn_app_with};

/// The binary with the app's URL and admin key in its environment, and nothing else from the
/// test's (no inherited `NO_COLOR` or `CLICOLOR_FORCE`).
fn switchyard(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command
        .args(args)
        .env_clear()
        .env("SWITCHYARD_URL", app.url(""))
        .env("SWITCHYARD_KEY", &app.admin_key)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

async fn finish(mut command: Command, stdin: Option<Vec<u8>>) -> Output {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().expect("run switchyard");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(&input).await.expect("write stdin");
        drop(pipe);
    }
    tokio::time::timeout(WAIT * 3, child.wait_with_output())
        .await
        .expect("switchyard did not exit in time")
        .expect("switchyard ran")
}

async fn run(app: &TestApp, args: &[&str]) -> Output {
    finish(switchyard(app, args, &[]), None).await
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exited {:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

/// Asserts a non-zero exit with a message and no panic; returns stderr.
fn assert_failure(output: &Output) -> String {
    let err = stderr(output);
    assert!(
        !output.status.success(),
        "exited 0; stdout: {}",
        stdout(output)
    );
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// `count` NDJSON events, `cli-0` .. `cli-{count-1}` (event types are at most 50 characters).
fn ndjson(count: usize) -> String {
    (0..count)
        .map(|i| {
            json!({"event_type": format!("cli-{i}"), "source": "cli-test", "data": {"i": i}})
                .to_string()
                + "\n"
        })
        .collect()
}

/// A file that is removed when the test ends.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn with(contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!("switchyard-cli-{}.ndjson", Uuid::new_v4()));
        std::fs::write(&path, contents).expect("write the input file");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

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
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let view = stdout(&run(&app, &["breaker", "status", "realtime"]).await);
        if view.contains("maintenance") {
            assert!(view.contains("closed  forced_open"), "{view}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no history in {view}"
        );
    }

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
async fn strategy_json_matches_get_v1_strategy() {
    let app = spawn_app().await;

    let output = run(&app, &["strategy", "--json"]).await;

    assert_success(&output);
    let printed: Value = serde_json::from_str(&stdout(&output)).expect("JSON strategy");
    let served: Value = app
        .get("/v1/strategy", app.admin())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(printed, served);
    let table = stdout(&run(&app, &["strategy"]).await);
    for category in [
        "critical",
        "performance",
        "user_activity",
        "system",
        "debug",
    ] {
        assert!(table.contains(category), "{table}");
    }
}

#[tokio::test]
async fn piped_output_has_no_ansi_escapes_and_a_forced_terminal_has_colours() {
    let app = spawn_app().await;
    for args in [
        &["breaker", "status"][..],
        &["strategy"],
        &["flags", "list"],
    ] {
        let output = run(&app, args).await;
        assert_success(&output);
        assert!(
            !stdout(&output).contains('\x1b'),
            "{args:?}: {:?}",
            stdout(&output)
        );
    }

    let forced = finish(
        switchyard(&app, &["breaker", "status"], &[("CLICOLOR_FORCE", "1")]),
        None,
    )
    .await;
    assert!(
        stdout(&forced).contains("\x1b[32mclosed"),
        "{:?}",
        stdout(&forced)
    );
    let no_color = [("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")];
    let plain = finish(switchyard(&app, &["breaker", "status"], &no_color), None).await;
    assert!(
        !stdout(&plain).contains('\x1b'),
        "NO_COLOR: {:?}",
        stdout(&plain)
    );
}

#[tokio::test]
async fn a_wrong_key_exits_non_zero_explaining_the_401() {
    let app = spawn_app().await;
    let output = run(&app, &["breaker", "status", "--key", "sy_not-a-key"]).await;
    let err = assert_failure(&output);
    assert!(err.contains("401 Unauthorized"), "{err}");
    assert!(err.contains("check --key or SWITCHYARD_KEY"), "{err}");

    let mut no_key = switchyard(&app, &["strategy"], &[]);
    no_key.env_remove("SWITCHYARD_KEY");
    let err = assert_failure(&finish(no_key, None).await);
    assert!(
        err.contains("no key was given: pass --key or set SWITCHYARD_KEY"),
        "{err}"
    );
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
async fn a_server_that_is_down_is_one_clear_line() {
    let app = spawn_app().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");

    let output = run(&app, &["strategy", "--url", &url]).await;

    let err = assert_failure(&output);
    assert!(
        err.contains(&format!("cannot reach switchyard at {url}")),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
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

#[tokio::test]
async fn flags_commands_take_a_flag_key_next_to_the_global_key_option() {
    let app = spawn_app().await;

    let off = run(
        &app,
        &["flags", "off", "broadcast.strategy", "--reason", "cli test"],
    )
    .await;
    assert_success(&off);
    let history = run(&app, &["flags", "history", "broadcast.strategy", "--json"]).await;

    assert_success(&history);
    let rows: Value = serde_json::from_str(&stdout(&history)).expect("JSON history");
    assert_eq!(rows[0]["reason"], "cli test", "{rows:#}");
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
    let deadline = tokio::time::Instant::now() + WAIT;
    while app.get("/health/live", app.admin()).await.status() != 503 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was never taken"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

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
