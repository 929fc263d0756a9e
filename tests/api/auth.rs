//! The auth matrix: for publishing (`POST /v1/events`) and subscribing (`GET /v1/ws`,
//! `GET /v1/stream`, legacy `/ws`), no key is 401, a key of the wrong scope 403, a key of the
//! right scope (or admin) gets in; revoked and unknown keys are 401; keys travel three ways.

use serde_json::json;
use switchyard::api::auth::Scope;
use switchyard::store::keys::CreatedKey;

use crate::support::wait::{self, Look};
use crate::support::ws::{next_json, refused_status, send_json};
use crate::support::{Credential, TestApp, assert_problem, event, spawn_app, spawn_app_with};

async fn publish_status(app: &TestApp, credential: Credential<'_>) -> u16 {
    let response = app.publish_as(credential, &event("stats", "s")).await;
    let status = response.status().as_u16();
    if status >= 400 {
        assert_problem(response, status).await;
    }
    status
}

/// 101 when the upgrade succeeds, else the refusal's status.
async fn ws_status(app: &TestApp, path: &str, credential: Credential<'_>) -> u16 {
    match app.connect_ws(path, credential).await {
        Ok(_) => 101,
        refused => refused_status(refused),
    }
}

async fn stream_status(app: &TestApp, credential: Credential<'_>) -> u16 {
    let response = app.open_stream("", credential, None).await;
    let status = response.status().as_u16();
    if status >= 400 {
        assert_problem(response, status).await;
    }
    status
}

/// The callers of the matrix: no key, a key of each scope, and `SWITCHYARD_ADMIN_KEY`.
struct Callers {
    publish: CreatedKey,
    read: CreatedKey,
    admin: CreatedKey,
}

impl Callers {
    async fn new(app: &TestApp) -> Self {
        Self {
            publish: app.create_key(Scope::Publish).await,
            read: app.create_key(Scope::Read).await,
            admin: app.create_key(Scope::Admin).await,
        }
    }

    /// Each caller with the status expected for it, given in the order: no key, publish key,
    /// read key, admin key, configured admin key.
    fn expecting<'a>(
        &'a self,
        app: &'a TestApp,
        expected: [u16; 5],
    ) -> Vec<(&'static str, Credential<'a>, u16)> {
        let callers = [
            ("no key", Credential::Nothing),
            ("publish key", Credential::Bearer(&self.publish.key)),
            ("read key", Credential::Bearer(&self.read.key)),
            ("admin key", Credential::Bearer(&self.admin.key)),
            ("SWITCHYARD_ADMIN_KEY", app.admin()),
        ];
        callers
            .into_iter()
            .zip(expected)
            .map(|((who, credential), status)| (who, credential, status))
            .collect()
    }
}

#[tokio::test]
async fn publishing_needs_a_publish_or_admin_key() {
    let app = spawn_app().await;
    let callers = Callers::new(&app).await;

    for (who, credential, expected) in callers.expecting(&app, [401, 202, 403, 202, 202]) {
        assert_eq!(publish_status(&app, credential).await, expected, "{who}");
    }
}

#[tokio::test]
async fn subscribing_over_websocket_needs_a_read_or_admin_key() {
    let app = spawn_app().await;
    let callers = Callers::new(&app).await;

    for path in ["/v1/ws", "/ws"] {
        for (who, credential, expected) in callers.expecting(&app, [401, 403, 101, 101, 101]) {
            let status = ws_status(&app, path, credential).await;
            assert_eq!(status, expected, "{path} with {who}");
        }
    }
}

#[tokio::test]
async fn the_ingest_websocket_needs_a_publish_or_admin_key() {
    let app = spawn_app().await;
    let callers = Callers::new(&app).await;

    for (who, credential, expected) in callers.expecting(&app, [401, 101, 403, 101, 101]) {
        let status = ws_status(&app, "/events", credential).await;
        assert_eq!(status, expected, "{who}");
    }
}

#[tokio::test]
async fn subscribing_over_sse_needs_a_read_or_admin_key() {
    let app = spawn_app().await;
    let callers = Callers::new(&app).await;

    for (who, credential, expected) in callers.expecting(&app, [401, 403, 200, 200, 200]) {
        assert_eq!(stream_status(&app, credential).await, expected, "{who}");
    }
}

#[tokio::test]
async fn a_key_is_accepted_as_bearer_x_api_key_or_token_query() {
    let app = spawn_app().await;
    let publish = app.create_key(Scope::Publish).await;
    let read = app.create_key(Scope::Read).await;

    for (publish_as, read_as) in [
        (
            Credential::Bearer(&publish.key),
            Credential::Bearer(&read.key),
        ),
        (
            Credential::ApiKeyHeader(&publish.key),
            Credential::ApiKeyHeader(&read.key),
        ),
        (
            Credential::TokenQuery(&publish.key),
            Credential::TokenQuery(&read.key),
        ),
    ] {
        assert_eq!(
            publish_status(&app, publish_as).await,
            202,
            "{publish_as:?}"
        );
        assert_eq!(ws_status(&app, "/v1/ws", read_as).await, 101, "{read_as:?}");
        assert_eq!(stream_status(&app, read_as).await, 200, "{read_as:?}");
    }
}

#[tokio::test]
async fn an_unknown_key_is_401() {
    let app = spawn_app().await;
    let unknown = Credential::Bearer("sy_0000000000000000000000000000000000000000000");

    assert_eq!(publish_status(&app, unknown).await, 401);
    assert_eq!(ws_status(&app, "/v1/ws", unknown).await, 401);
    assert_eq!(stream_status(&app, unknown).await, 401);
}

#[tokio::test]
async fn a_revoked_key_is_401_everywhere() {
    let app = spawn_app().await;
    let admin = app.create_key(Scope::Admin).await;
    app.revoke_key(&admin).await;
    let revoked = Credential::Bearer(&admin.key);

    assert_eq!(publish_status(&app, revoked).await, 401);
    assert_eq!(ws_status(&app, "/v1/ws", revoked).await, 401);
    assert_eq!(stream_status(&app, revoked).await, 401);
}

#[tokio::test]
async fn a_key_revoked_after_use_is_401_once_the_instance_forgets_it() {
    let app = spawn_app().await;
    let publish = app.create_key(Scope::Publish).await;
    assert_eq!(
        publish_status(&app, Credential::Bearer(&publish.key)).await,
        202
    );

    app.revoke_key(&publish).await;
    // What a revoke through this instance does; other instances forget within the cache TTL.
    app.state.auth.invalidate_all();

    assert_eq!(
        publish_status(&app, Credential::Bearer(&publish.key)).await,
        401
    );
}

#[tokio::test]
async fn a_key_revoked_on_one_instance_stops_working_on_another_at_once() {
    let a = spawn_app().await;
    let b = crate::support::spawn_app_on(&a).await;
    let publish = a.create_key(Scope::Publish).await;
    // B has looked the key up and cached it.
    assert_eq!(
        publish_status(&b, Credential::Bearer(&publish.key)).await,
        202
    );

    a.revoke_key(&publish).await;
    // Well inside the 30 s cache TTL: the revoke's NOTIFY makes B forget it.
    wait::until("the other instance to refuse the revoked key", async || {
        let status = publish_status(&b, Credential::Bearer(&publish.key)).await;
        Look::ready_if(status == 401, status)
    })
    .await;
}

#[tokio::test]
async fn health_endpoints_and_status_need_no_key() {
    let app = spawn_app().await;

    for path in ["/health/live", "/health/ready", "/status"] {
        let response = app.get(path, Credential::Nothing).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }
}

#[tokio::test]
async fn public_read_lets_clients_subscribe_without_a_key_but_not_publish() {
    let app = spawn_app_with(|config| config.public_read = true).await;
    let read = app.create_key(Scope::Read).await;

    let mut ws = app
        .connect_ws("/v1/ws", Credential::Nothing)
        .await
        .expect("an anonymous subscriber is let in");
    send_json(&mut ws, &json!({"op": "subscribe"})).await;
    assert_eq!(next_json(&mut ws).await["op"], "subscribed");
    assert_eq!(ws_status(&app, "/ws", Credential::Nothing).await, 101);
    assert_eq!(stream_status(&app, Credential::Nothing).await, 200);

    assert_eq!(publish_status(&app, Credential::Nothing).await, 401);
    assert_eq!(
        publish_status(&app, Credential::Bearer(&read.key)).await,
        403
    );
}
