//! The client commands of the `switchyard` binary (`send`, `breaker`, `strategy`, `flags`), run
//! as an operator runs them against a real server: what they publish and change, what they
//! print for people and for scripts, and how they fail. One module per area; the helpers that
//! run the binary are here.

mod behaviour;
mod breaker;
mod send;
mod tls;

use std::process::{Output, Stdio};

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use uuid::Uuid;

use crate::support::{TestApp, WAIT};

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
