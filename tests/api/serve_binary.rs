//! The `switchyard` binary itself: what an operator sees when it cannot start.

use std::process::Output;

use tokio::process::Command;

use crate::support::WAIT;

async fn run_switchyard(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command
        .args(args)
        .env_clear()
        .env("RUST_BACKTRACE", "1")
        .envs(env.iter().copied())
        .kill_on_drop(true);
    tokio::time::timeout(WAIT, command.output())
        .await
        .expect("switchyard did not exit in time")
        .expect("run switchyard")
}

#[tokio::test]
async fn serve_exits_non_zero_naming_the_masked_url_when_postgres_is_unreachable() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://switchyard:s3cret@127.0.0.1:{port}/switchyard");

    let output = run_switchyard(
        &["serve"],
        &[
            ("DATABASE_URL", url.as_str()),
            ("MONITORING_HOST", "127.0.0.1"),
            ("MONITORING_PORT", "0"),
        ],
    )
    .await;

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let everything = format!("{stdout}{stderr}");
    assert!(!output.status.success(), "exited 0: {everything}");
    assert!(
        stderr.contains(&format!(
            "postgres://switchyard:****@127.0.0.1:{port}/switchyard"
        )),
        "the message does not name the URL: {stderr}"
    );
    assert!(
        stderr.contains("DATABASE_URL"),
        "the message does not say how to point elsewhere: {stderr}"
    );
    assert!(
        !everything.contains("s3cret"),
        "the password leaked: {everything}"
    );
    assert!(!everything.contains("panicked"), "{everything}");
    assert!(
        !everything.to_lowercase().contains("backtrace"),
        "{everything}"
    );
}

#[tokio::test]
async fn serve_help_lists_settings_with_their_environment_names() {
    let output = run_switchyard(&["serve", "--help"], &[]).await;

    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for name in [
        "MONITORING_HOST",
        "MONITORING_PORT",
        "DATABASE_URL",
        "SWITCHYARD_ADMIN_KEY",
        "SWITCHYARD_PUBLIC_READ",
        "SWITCHYARD_HISTORY_SIZE",
        "SWITCHYARD_SUBSCRIBER_QUEUE",
    ] {
        assert!(help.contains(name), "`serve --help` does not list {name}");
    }
}

#[tokio::test]
async fn an_unknown_runtime_is_refused_by_name() {
    let output = run_switchyard(&["serve"], &[("SWITCHYARD_RUNTIME", "threads")]).await;

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "exited 0: {stderr}");
    assert!(
        stderr.contains(r#"SWITCHYARD_RUNTIME="threads""#)
            && stderr.contains("auto, current_thread or multi_thread"),
        "the message does not name the setting and its choices: {stderr}"
    );
}

/// On one CPU `serve` runs on the current-thread runtime (`src/runtime.rs`). Machines that run
/// the tests have more, so this forces it: on that runtime too the service says which it runs
/// on, takes a subscriber, delivers a published event to it, and stops cleanly on SIGTERM.
#[tokio::test]
async fn serve_delivers_and_stops_cleanly_on_the_current_thread_runtime() {
    use serde_json::json;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    use crate::support::ws::{next_json, send_json};
    use crate::support::{TestDatabase, spawn_until_listening};

    switchyard::client::install_default_provider();
    let database = TestDatabase::migrated().await;
    let key = format!("runtime-admin-{}", uuid::Uuid::new_v4().simple());
    let spool = std::env::temp_dir().join(format!("switchyard-spool-{}", uuid::Uuid::new_v4()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command
        .arg("serve")
        .env_clear()
        .env("DATABASE_URL", database.url())
        .env("MONITORING_HOST", "127.0.0.1")
        .env("MONITORING_PORT", "0")
        .env("SWITCHYARD_ADMIN_KEY", &key)
        .env("SWITCHYARD_SPOOL_DIR", &spool)
        .env("SWITCHYARD_RUNTIME", "current_thread")
        .env("SWITCHYARD_LOG_FORMAT", "json")
        .env("RUST_LOG", "info");
    let (mut child, listening) = spawn_until_listening(&mut command).await;
    assert_eq!(listening["runtime"], "CurrentThread", "{listening}");
    assert_eq!(listening["workers"], 1, "{listening}");
    let address: std::net::SocketAddr = listening["addr"].as_str().unwrap().parse().unwrap();

    let mut request = format!("ws://{address}/v1/ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("WebSocket handshake");
    send_json(&mut ws, &json!({"op": "subscribe"})).await;
    assert_eq!(next_json(&mut ws).await["op"], "subscribed");
    let published = reqwest::Client::new()
        .post(format!("http://{address}/v1/events"))
        .bearer_auth(&key)
        .json(&json!({"event_type": "runtime_check", "source": "current-thread", "data": {"n": 1}}))
        .send()
        .await
        .expect("POST /v1/events");
    assert_eq!(published.status(), reqwest::StatusCode::ACCEPTED);
    let event = tokio::time::timeout(WAIT, async {
        loop {
            let frame = next_json(&mut ws).await;
            if frame["op"] == "event" {
                return frame;
            }
        }
    })
    .await
    .expect("no event frame");
    assert_eq!(event["event"]["source"], "current-thread", "{event}");

    let pid = child.id().expect("running").to_string();
    let signalled = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("run kill");
    assert!(signalled.success());
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("switchyard did not stop in time after SIGTERM")
        .expect("wait for switchyard");
    assert!(status.success(), "exited with {status}");
    let _ = std::fs::remove_dir_all(&spool);
}
