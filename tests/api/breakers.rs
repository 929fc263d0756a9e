//! The breakers' operator surface: who may act on a breaker, what an action shows (status,
//! history in the control store, a `breaker_transition` system frame, the SSE stream), and the
//! errors for a bad action or an unknown breaker.

use serde_json::{Value, json};
use switchyard::api::auth::Scope;

use crate::support::sse::{SseClient, SseEvent};
use crate::support::wait::{self, Look};
use crate::support::ws::next_json;
use crate::support::{Credential, TestApp, WAIT, assert_problem, spawn_app};

async fn act(
    app: &TestApp,
    name: &str,
    credential: Credential<'_>,
    body: &Value,
) -> reqwest::Response {
    let request = app.client.post(app.url(&format!("/v1/breakers/{name}")));
    let request = match credential.header() {
        Some((header, value)) => request.header(header, value),
        None => request,
    };
    request
        .json(body)
        .send()
        .await
        .expect("POST /v1/breakers/{name}")
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    let response = app.get(path, app.admin()).await;
    assert_eq!(response.status().as_u16(), 200, "GET {path}");
    response.json().await.expect("JSON")
}

/// The breaker's history as the control store has it, once it holds `rows` rows (the writer
/// runs in the background, off the breaker's path).
async fn transitions(app: &TestApp, rows: usize) -> Vec<Value> {
    wait::until(&format!("{rows} recorded transitions"), async || {
        let history = get_json(app, "/v1/breakers/realtime/transitions").await;
        let history = history.as_array().expect("an array").clone();
        Look::ready_if(history.len() >= rows, history)
    })
    .await
}

/// The next event of the breaker stream that is not a once-a-second sample.
async fn next_unsampled(sse: &mut SseClient) -> SseEvent {
    loop {
        let event = sse.next().await.expect("the stream ended");
        if event.event != "sample" {
            return event;
        }
        assert!(event.json()["breakers"].is_array(), "{event:?}");
    }
}

#[tokio::test]
async fn acting_on_a_breaker_needs_an_admin_key() {
    let app = spawn_app().await;
    let read = app.create_key(Scope::Read).await;
    let publish = app.create_key(Scope::Publish).await;
    let admin = app.create_key(Scope::Admin).await;
    let body = json!({"action": "force_closed"});
    let cases = [
        ("no key", Credential::Nothing, 401),
        ("read key", Credential::Bearer(&read.key), 403),
        ("publish key", Credential::Bearer(&publish.key), 403),
        ("admin key", Credential::Bearer(&admin.key), 200),
        ("SWITCHYARD_ADMIN_KEY", app.admin(), 200),
    ];
    for (who, credential, status) in cases {
        let response = act(&app, "realtime", credential, &body).await;
        if status >= 400 {
            assert_problem(response, status).await;
        } else {
            assert_eq!(response.status().as_u16(), status, "{who}");
        }
    }
    // Reading takes a read key.
    let response = app
        .get("/v1/breakers/realtime", Credential::Bearer(&read.key))
        .await;
    assert_eq!(response.status().as_u16(), 200);
    assert_problem(app.get("/v1/breakers", Credential::Nothing).await, 401).await;
}

#[tokio::test]
async fn force_open_shows_in_the_status_the_history_and_a_system_frame() {
    let app = spawn_app().await;
    let before = get_json(&app, "/v1/breakers").await;
    assert_eq!(before[0]["name"], "realtime");
    assert_eq!(before[0]["state"], "closed");
    let mut ws = app.subscribe_all().await;

    let body = json!({"action": "force_open", "reason": "maintenance"});
    let response = act(&app, "realtime", app.admin(), &body).await;
    assert_eq!(response.status().as_u16(), 200);
    let status: Value = response.json().await.unwrap();
    assert_eq!(
        (status["state"].as_str(), status["mode"].as_str()),
        (Some("forced_open"), Some("force_open"))
    );

    let shown = get_json(&app, "/v1/breakers/realtime").await;
    assert_eq!(shown["state"], "forced_open");
    assert!(
        shown["since"].is_string() && shown["calls"]["rejected"].is_u64(),
        "{shown}"
    );

    let frame = next_json(&mut ws).await;
    assert_eq!(frame["op"], "system", "{frame}");
    assert_eq!(frame["kind"], "breaker_transition");
    assert_eq!(
        (
            frame["breaker"].as_str(),
            frame["from"].as_str(),
            frame["to"].as_str()
        ),
        (Some("realtime"), Some("closed"), Some("forced_open"))
    );
    assert_eq!(frame["reason"], "mode force_open: maintenance");
    assert!(frame["at"].is_string());

    let history = transitions(&app, 1).await;
    assert_eq!(history[0]["from"], "closed");
    assert_eq!(history[0]["to"], "forced_open");
    assert_eq!(history[0]["actor"], "SWITCHYARD_ADMIN_KEY");
    assert_eq!(history[0]["reason"], "mode force_open: maintenance");

    // Back to the policy; the history lists the newest first.
    let response = act(&app, "realtime", app.admin(), &json!({"action": "auto"})).await;
    assert_eq!(response.status().as_u16(), 200);
    let history = transitions(&app, 2).await;
    assert_eq!(
        (history[0]["from"].as_str(), history[0]["to"].as_str()),
        (Some("forced_open"), Some("closed"))
    );
    let limited = get_json(&app, "/v1/breakers/realtime/transitions?limit=1").await;
    assert_eq!(limited.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_invalid_action_is_a_400_naming_action() {
    let app = spawn_app().await;
    for body in [
        json!({"action": "explode"}),
        json!({}),
        json!({"action": 3}),
    ] {
        let problem = assert_problem(act(&app, "realtime", app.admin(), &body).await, 400).await;
        assert_eq!(problem["errors"][0]["field"], "action", "{problem:#}");
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("force_open")
        );
    }
    let problem = assert_problem(
        act(
            &app,
            "realtime",
            app.admin(),
            &json!({"action": "reset", "extra": 1}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "extra", "{problem:#}");
    // Nothing changed.
    assert_eq!(
        get_json(&app, "/v1/breakers/realtime").await["state"],
        "closed"
    );
}

#[tokio::test]
async fn an_unknown_breaker_is_404() {
    let app = spawn_app().await;
    assert_problem(app.get("/v1/breakers/nope", app.admin()).await, 404).await;
    assert_problem(
        app.get("/v1/breakers/nope/transitions", app.admin()).await,
        404,
    )
    .await;
    let response = act(&app, "nope", app.admin(), &json!({"action": "reset"})).await;
    assert_problem(response, 404).await;
}

#[tokio::test]
async fn the_stream_sends_the_current_state_first_then_each_transition() {
    let app = spawn_app().await;
    let response = app.get("/v1/breakers/stream", app.admin()).await;
    assert_eq!(response.status().as_u16(), 200);
    let mut sse = SseClient::new(response);
    let first = next_unsampled(&mut sse).await;
    assert_eq!(first.event, "state", "{first:?}");
    assert_eq!(first.json()["name"], "realtime");
    assert_eq!(first.json()["state"], "closed");

    let response = act(&app, "realtime", app.admin(), &json!({"action": "disable"})).await;
    assert_eq!(response.status().as_u16(), 200);
    let transition = next_unsampled(&mut sse).await;
    assert_eq!(transition.event, "transition", "{transition:?}");
    let transition = transition.json();
    assert_eq!(
        (transition["from"].as_str(), transition["to"].as_str()),
        (Some("closed"), Some("disabled"))
    );
    assert_eq!(transition["actor"], "SWITCHYARD_ADMIN_KEY");

    // A sample of every breaker follows within a second or so.
    let sample = loop {
        let event = sse.next().await.expect("the stream ended");
        if event.event == "sample" {
            break event.json();
        }
    };
    assert_eq!(sample["breakers"][0]["state"], "disabled");
}

#[tokio::test]
async fn serve_refuses_a_bad_breaker_setting_with_a_message_naming_it() {
    for (variable, value) in [
        ("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "1.5"),
        ("CIRCUIT_BREAKER_RECOVERY_TIME_S", "0"),
    ] {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
        command
            .arg("serve")
            .env_clear()
            .env(variable, value)
            .env("MONITORING_HOST", "127.0.0.1")
            .env("MONITORING_PORT", "0")
            .kill_on_drop(true);
        let output = tokio::time::timeout(WAIT, command.output())
            .await
            .expect("switchyard did not exit in time")
            .expect("run switchyard");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{variable}={value} was accepted");
        assert!(stderr.contains(variable), "{variable}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[tokio::test]
async fn every_action_is_audited_with_actor_reason_and_the_states_before_and_after() {
    let app = spawn_app().await;
    for (action, reason) in [("force_open", Some("maintenance")), ("reset", None)] {
        let body = json!({"action": action, "reason": reason});
        let response = act(&app, "realtime", app.admin(), &body).await;
        assert_eq!(response.status().as_u16(), 200, "{action}");
    }
    let actions = get_json(&app, "/v1/breakers/realtime/actions").await;
    let actions = actions.as_array().expect("an array");
    assert_eq!(actions.len(), 2, "{actions:#?}");
    let pick = |row: &Value| {
        (
            row["action"].as_str().map(str::to_owned),
            row["actor"].as_str().map(str::to_owned),
            row["reason"].as_str().map(str::to_owned),
            row["before_state"].as_str().map(str::to_owned),
            row["after_state"].as_str().map(str::to_owned),
        )
    };
    let owned = |s: &str| Some(s.to_owned());
    assert_eq!(
        pick(&actions[0]),
        (
            owned("reset"),
            owned("SWITCHYARD_ADMIN_KEY"),
            None,
            owned("forced_open"),
            owned("closed")
        )
    );
    assert_eq!(
        pick(&actions[1]),
        (
            owned("force_open"),
            owned("SWITCHYARD_ADMIN_KEY"),
            owned("maintenance"),
            owned("closed"),
            owned("forced_open")
        )
    );
    assert_problem(app.get("/v1/breakers/nope/actions", app.admin()).await, 404).await;
    assert_problem(
        app.get("/v1/breakers/realtime/actions", Credential::Nothing)
            .await,
        401,
    )
    .await;
}

#[tokio::test]
async fn with_the_control_store_gone_an_action_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let mut ws = app.subscribe_all().await;
    app.state.pool.close().await;

    let response = act(
        &app,
        "realtime",
        app.admin(),
        &json!({"action": "force_open"}),
    )
    .await;
    // No action without its audit row.
    assert_problem(response, 503).await;
    let breaker = app
        .state
        .breakers
        .get("realtime")
        .expect("the realtime breaker");
    assert_eq!(breaker.state(), switchyard::breaker::BreakerState::Closed);
    app.assert_nothing_was_broadcast(&mut ws).await;

    // A transition the store cannot take (here: from inside) is counted, not lost silently.
    breaker.set_mode(switchyard::breaker::BreakerMode::ForceOpen, "test", None);
    let frame = next_json(&mut ws).await;
    assert_eq!(
        (frame["kind"].as_str(), frame["to"].as_str()),
        (Some("breaker_transition"), Some("forced_open"))
    );
    wait::until("the failed write to be counted", async || {
        let unrecorded = app.state.breakers.unrecorded_transitions();
        Look::ready_if(unrecorded >= 1, unrecorded)
    })
    .await;
}
