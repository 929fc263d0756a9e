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
