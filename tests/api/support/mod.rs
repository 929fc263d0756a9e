//! Test support: `spawn_app` starts the real switchyard (the same `Application` that `serve`
//! runs) on a free port against a fresh Postgres database, and `TestApp` offers what a test
//! needs to talk to it: an HTTP client, keys of each scope, WebSocket and SSE subscribers.
//!
//! Nothing is mocked: every test talks to real Postgres over real sockets. Each test gets its
//! own migrated database, `switchyard_test_<uuid>`, dropped when the test ends (also when it
//! panics); see `database`.

pub mod browser;
pub mod database;
pub mod nats;
pub mod operator;
/// The TCP fault proxy is a crate of its own (fault-proxy/) so `switchyard-bench failover` can
/// use it too.
pub use ::fault_proxy as proxy;
pub mod sse;
pub mod wait;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Once;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use switchyard::api::AppState;
use switchyard::api::auth::Scope;
use switchyard::store::keys::{self, CreatedKey};
use switchyard::{Application, Config};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub use database::TestDatabase;

/// The local Postgres every test uses (trust auth). Start it with
/// `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`.
pub const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";
/// The address behind [`POSTGRES`], for proxies that stand in front of it.
pub const POSTGRES_ADDR: &str = "127.0.0.1:5432";

/// How long a test waits for something that should happen. Generous, because it is only ever
/// reached when the thing does not happen; tests never wait this long on success.
pub const WAIT: Duration = Duration::from_secs(10);

/// Log lines from the app under test, when `TEST_LOG` is set (they are noise otherwise).
fn init_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
                .with_test_writer()
                .try_init();
        }
    });
}

/// How a request presents its key: the three ways switchyard accepts, or none at all.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    Nothing,
    Bearer(&'a str),
    ApiKeyHeader(&'a str),
    TokenQuery(&'a str),
}

impl Credential<'_> {
    /// `url` with `?token=` added when the key travels in the query.
    pub fn url(&self, url: String) -> String {
        match self {
            Credential::TokenQuery(key) => {
                let sep = if url.contains('?') { '&' } else { '?' };
                let encoded: String =
                    url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
                format!("{url}{sep}token={encoded}")
            }
            _ => url,
        }
    }

    /// The header that carries the key, if it travels in one.
    pub fn header(&self) -> Option<(&'static str, String)> {
        match self {
            Credential::Bearer(key) => Some(("authorization", format!("Bearer {key}"))),
            Credential::ApiKeyHeader(key) => Some(("x-api-key", key.to_string())),
            Credential::Nothing | Credential::TokenQuery(_) => None,
        }
    }

    fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.header() {
            Some((name, value)) => request.header(name, value),
            None => request,
        }
    }
}

/// A running switchyard and the means to talk to it.
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    /// Accepted as an admin key without a database lookup (`SWITCHYARD_ADMIN_KEY`).
    pub admin_key: String,
    /// The app's own state: its pool, hub and authenticator, for checks from the inside.
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    // Last, so the database is dropped after everything that uses it. `None` for an instance
    // started on another one's database (`spawn_app_on`): that one drops it.
    _database: Option<TestDatabase>,
}

/// Starts switchyard with the default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts switchyard on 127.0.0.1:0 against a fresh database, with an admin key set;
/// `configure` may change any setting first (its `database_url` names the fresh database).
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    init_tracing();
    let database = TestDatabase::migrated().await;
    start(database.url(), configure, Some(database)).await
}

/// A switchyard whose Realtime target is a database of its own, reached through a fault
/// proxy (in `Fault::Pass` until a test says otherwise).
pub struct TargetedApp {
    pub app: TestApp,
    pub proxy: proxy::FaultProxy,
    /// Not migrated by the test: switchyard applies the `monitoring` schema itself.
    pub target: TestDatabase,
}

impl TargetedApp {
    /// Installs a trigger on the target (its schema must exist: publish and wait for a first
    /// row before): rows with `source = 'tamper'` land with other data than was sent, rows
    /// with `source = 'vanish'` never land although the write succeeds.
    pub async fn tamper_with_target(&self) {
        let target = sqlx::PgPool::connect(&self.target.url()).await.unwrap();
        execute_all(
            &target,
            &[
                "CREATE FUNCTION monitoring.tamper() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                     IF NEW.source = 'tamper' THEN NEW.data := '{\"tampered\": true}'::jsonb; END IF;
                     IF NEW.source = 'vanish' THEN RETURN NULL; END IF;
                     RETURN NEW;
                 END $$",
                "CREATE TRIGGER tamper BEFORE INSERT ON monitoring.monitoring_events
                 FOR EACH ROW EXECUTE FUNCTION monitoring.tamper()",
            ],
        )
        .await;
        target.close().await;
    }
}

/// Starts switchyard with `REALTIME_DATABASE_URL` naming a fresh database behind a proxy;
/// `configure` may change any other setting.
pub async fn spawn_app_with_target(configure: impl FnOnce(&mut Config)) -> TargetedApp {
    let target = TestDatabase::new();
    let proxy = proxy::FaultProxy::start(POSTGRES_ADDR.parse().expect("an address"))
        .await
        .expect("a fault proxy");
    // Without TLS, as `TestDatabase::url` says why.
    let url = format!(
        "postgres://postgres@{}/{}?sslmode=disable",
        proxy.address(),
        target.name
    );
    let app = spawn_app_with(|config| {
        config.realtime.database_url = Some(url);
        configure(config);
    })
    .await;
    TargetedApp { app, proxy, target }
}

/// Starts a second switchyard on `other`'s database (two instances sharing one control store,
/// as in production), with default settings and its own admin key. The database stays
/// `other`'s: it is dropped with `other`.
pub async fn spawn_app_on(other: &TestApp) -> TestApp {
    spawn_app_on_with(other, |_| {}).await
}

/// [`spawn_app_on`] with settings changed by `configure`.
pub async fn spawn_app_on_with(other: &TestApp, configure: impl FnOnce(&mut Config)) -> TestApp {
    start(other.state.config.database_url.clone(), configure, None).await
}

async fn start(
    database_url: String,
    configure: impl FnOnce(&mut Config),
    database: Option<TestDatabase>,
) -> TestApp {
    let admin_key = format!("test-admin-{}", Uuid::new_v4().simple());
    let mut config = Config::for_database(database_url);
    config.admin_key = Some(admin_key.clone());
    configure(&mut config);
    let app = Application::build(config).await.unwrap_or_else(|e| {
        panic!("cannot start switchyard (is Postgres running on {POSTGRES_ADDR}?): {e}")
    });
    let address = app.local_addr();
    let state = app.state().clone();
    let (shutdown, stop) = oneshot::channel::<()>();
    // The server stops when the test says so, or when the TestApp is dropped.
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::new(),
        admin_key,
        state,
        shutdown: Some(shutdown),
        server: Some(server),
        _database: database,
    }
}

/// Asserts `status` and returns the JSON body.
pub async fn expect_json(response: reqwest::Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let body = response.text().await.expect("a body");
    assert_eq!(got, status, "unexpected status; body: {body}");
    serde_json::from_str(&body).expect("a JSON body")
}

impl TestApp {
    /// A request as admin with a JSON body (none for `Value::Null`).
    pub async fn as_admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(&self.admin_key);
        if !body.is_null() {
            request = request.json(body);
        }
        request.send().await.expect("a response")
    }

    /// Sets `broadcast.strategy` through the REST API (a 100% rollout of that variant).
    pub async fn set_strategy(&self, strategy: &str) {
        let response = self
            .client
            .put(self.url("/v1/flags/broadcast.strategy/environments/production/rollout"))
            .bearer_auth(&self.admin_key)
            .json(&serde_json::json!({"percentage": 100, "variant": strategy}))
            .send()
            .await
            .expect("PUT rollout");
        assert_eq!(response.status().as_u16(), 200, "{strategy}");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn admin(&self) -> Credential<'_> {
        Credential::Bearer(&self.admin_key)
    }

    /// A new key with this scope, created the way `switchyard keys create` does.
    pub async fn create_key(&self, scope: Scope) -> CreatedKey {
        let name = format!(
            "{}-{}",
            scope.as_str(),
            &Uuid::new_v4().simple().to_string()[..8]
        );
        keys::create(&self.state.pool, &name, scope)
            .await
            .expect("create a key")
    }

    /// Revokes a key the way `switchyard keys revoke` does.
    pub async fn revoke_key(&self, key: &CreatedKey) {
        keys::revoke(&self.state.pool, &key.record.name)
            .await
            .expect("revoke a key")
            .expect("the key was active");
    }

    /// A GET with the given credential.
    pub async fn get(&self, path: &str, credential: Credential<'_>) -> reqwest::Response {
        credential
            .apply(self.client.get(credential.url(self.url(path))))
            .send()
            .await
            .expect("GET")
    }

    /// POSTs a JSON body to `/v1/events` with the given credential.
    pub async fn publish_as(&self, credential: Credential<'_>, body: &Value) -> reqwest::Response {
        credential
            .apply(self.client.post(credential.url(self.url("/v1/events"))))
            .json(body)
            .send()
            .await
            .expect("POST /v1/events")
    }

    /// POSTs a JSON body to `/v1/events` as admin.
    pub async fn publish(&self, body: &Value) -> reqwest::Response {
        self.publish_as(self.admin(), body).await
    }

    /// POSTs raw bytes to `/v1/events` as admin, with this content type.
    pub async fn publish_raw(&self, content_type: &str, body: Vec<u8>) -> reqwest::Response {
        self.client
            .post(self.url("/v1/events"))
            .bearer_auth(&self.admin_key)
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("POST /v1/events")
    }

    /// Publishes and asserts 202; returns the receipt body.
    pub async fn publish_ok(&self, body: &Value) -> Value {
        let response = self.publish(body).await;
        let status = response.status().as_u16();
        let receipt: Value = response.json().await.expect("a JSON receipt");
        assert_eq!(status, 202, "publish was refused: {receipt:#}");
        receipt
    }

    /// Begins a graceful shutdown, as SIGTERM would.
    pub fn trigger_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Waits for `run_until_stopped` to return, and returns what it returned.
    pub async fn stopped(&mut self) -> std::io::Result<()> {
        let server = self.server.take().expect("the server runs once");
        tokio::time::timeout(WAIT, server)
            .await
            .expect("the server did not stop in time")
            .expect("the server task panicked")
    }
}

/// A minimal valid event.
pub fn event(event_type: &str, source: &str) -> Value {
    json!({"event_type": event_type, "source": source})
}

/// Asserts a problem+json response with this status; returns the problem document.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = response.text().await.expect("a body");
    assert_eq!(got, status, "unexpected status; body: {body}");
    assert_eq!(content_type, "application/problem+json", "body: {body}");
    let problem: Value = serde_json::from_str(&body).expect("a JSON problem document");
    assert_eq!(problem["status"], status, "{problem:#}");
    problem
}

/// Runs `statements` in order on `pool`; a failure fails the test naming the statement.
pub async fn execute_all(pool: &sqlx::PgPool, statements: &[&'static str]) {
    for &statement in statements {
        sqlx::query(statement)
            .execute(pool)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

/// Spawns `command` (a `switchyard serve` with its environment set, JSON logs on stdout) and
/// waits for its `switchyard listening` log line, which it returns with the child. The rest
/// of its output is drained so a full pipe never blocks it; stderr is the test's.
pub async fn spawn_until_listening(
    command: &mut tokio::process::Command,
) -> (tokio::process::Child, serde_json::Value) {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the switchyard binary");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let listening = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.expect("read its stdout") {
            if let Ok(log) = serde_json::from_str::<serde_json::Value>(&line)
                && log["message"] == "switchyard listening"
            {
                return Some(log);
            }
        }
        None
    })
    .await
    .expect("switchyard did not listen in time")
    .expect("switchyard exited before it listened");
    // Keep reading, so its logging never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, listening)
}
