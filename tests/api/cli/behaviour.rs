//! What every client command shares: `--json` output that matches the API, no escapes when
//! piped (colours only on a terminal), and one-line failures for a bad key or a server that is
//! down; global options that do not swallow a subcommand's own arguments.

use serde_json::Value;

use super::{assert_failure, assert_success, finish, run, stdout, switchyard};
use crate::support::spawn_app;

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
