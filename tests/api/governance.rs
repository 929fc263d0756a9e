//! Where the breaker and the flags meet: while the Realtime breaker is not closed,
//! `dashboard.transport` answers `websocket` for every dashboard and dashboards are told to
//! move; the `realtime.breaker.mode` flag drives the breaker.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::wait::{Look, Patience};
use crate::support::ws::next_json;
use crate::support::{TestApp, spawn_app};

async fn post(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(&app.admin_key)
        .json(body)
        .send()
        .await
        .expect("POST")
}

async fn transport_for(app: &TestApp, dashboard: &str) -> Value {
    let body = json!({"context": {"targeting_key": dashboard}, "flags": ["dashboard.transport"]});
    let response = post(app, "/v1/evaluate", &body).await;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("JSON");
    body["results"][0].clone()
}

/// The next system frame of `kind`, skipping others.
async fn next_system(ws: &mut crate::support::ws::Ws, kind: &str) -> Value {
    Patience::DEFAULT
        .every(Duration::ZERO)
        .until(&format!("a {kind} system frame"), async || {
            let frame = next_json(ws).await;
            Look::ready_if(frame["op"] == "system" && frame["kind"] == kind, frame)
        })
        .await
}

#[tokio::test]
async fn an_open_breaker_sends_every_dashboard_to_websocket_and_tells_them() {
    let app = spawn_app().await;
    // Roll Realtime out to every dashboard.
    app.roll_out_variant("dashboard.transport", "realtime")
        .await;
    assert_eq!(transport_for(&app, "dash-1").await["value"], "realtime");

    let (mut ws, _) = app.subscribe_v1(json!({"op": "subscribe"})).await;
    let forced = post(
        &app,
        "/v1/breakers/realtime",
        &json!({"action": "force_open"}),
    )
    .await;
    assert_eq!(forced.status().as_u16(), 200);

    let frame = next_system(&mut ws, "transport_changed").await;
    assert_eq!(frame["transport"], "websocket");
    assert_eq!(frame["breaker"], "realtime");
    let overridden = transport_for(&app, "dash-1").await;
    assert_eq!(overridden["value"], "websocket");
    assert_eq!(overridden["reason"], "DISABLED");
    assert_eq!(
        overridden["overridden"]["overridden_by"],
        "breaker:realtime"
    );

    let ofrep = post(
        &app,
        "/ofrep/v1/evaluate/flags/dashboard.transport",
        &json!({"context": {"targetingKey": "dash-1"}}),
    )
    .await;
    let ofrep: Value = ofrep.json().await.expect("JSON");
    assert_eq!(ofrep["value"], "websocket");
    assert_eq!(ofrep["metadata"]["overridden_by"], "breaker:realtime");

    let reset = post(&app, "/v1/breakers/realtime", &json!({"action": "reset"})).await;
    assert_eq!(reset.status().as_u16(), 200);
    let frame = next_system(&mut ws, "transport_changed").await;
    assert_eq!(frame["transport"], "flag");
    assert_eq!(
        transport_for(&app, "dash-1").await["value"],
        "realtime",
        "the rollout applies again"
    );
}

#[tokio::test]
async fn the_breaker_mode_flag_forces_the_breaker() {
    let app = spawn_app().await;
    let (mut ws, _) = app.subscribe_v1(json!({"op": "subscribe"})).await;
    app.roll_out_variant("realtime.breaker.mode", "force_open")
        .await;
    let transition = next_system(&mut ws, "breaker_transition").await;
    assert_eq!(transition["to"], "forced_open");
    let status: Value = app
        .get("/v1/breakers/realtime", app.admin())
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(status["state"], "forced_open");
}
