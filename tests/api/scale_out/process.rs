//! A switchyard run as a real process of the built binary (`switchyard serve`), so a test can
//! kill it with SIGKILL: no shutdown, no flush, no acknowledgement, its sockets reset by the
//! kernel, as when a machine or a container dies.
//!
//! It listens on a port of its own choosing (`MONITORING_PORT=0`) and says which in its
//! `switchyard listening` log line (JSON logs on stdout); the rest of its output is drained
//! so a full pipe never blocks it.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

use crate::support::nats::TestStream;
use crate::support::ws::{Ws, next_json, send_json};
use crate::support::{TestApp, spawn_until_listening};

pub struct Process {
    pub address: SocketAddr,
    pub admin_key: String,
    pub client: reqwest::Client,
    child: Child,
    spool: PathBuf,
}

impl Process {
    /// Starts `switchyard serve` on `other`'s control store and `stream`, with the settings
    /// [`TestStream::configure`] gives an in-process instance; returns once it listens.
    pub async fn start_on(other: &TestApp, stream: &TestStream) -> Self {
        let admin_key = format!("test-admin-{}", Uuid::new_v4().simple());
        let spool =
            std::env::temp_dir().join(format!("switchyard-spool-{}", Uuid::new_v4().simple()));
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        command
            .arg("serve")
            .env_clear()
            .env("DATABASE_URL", &other.state.config.database_url)
            .env("MONITORING_HOST", "127.0.0.1")
            .env("MONITORING_PORT", "0")
            .env("SWITCHYARD_ADMIN_KEY", &admin_key)
            .env("SWITCHYARD_SPOOL_DIR", &spool)
            .env("SWITCHYARD_NATS_URL", &stream.url)
            .env("SWITCHYARD_NATS_STREAM", &stream.name)
            .env("SWITCHYARD_NATS_MAX_AGE_S", "600")
            .env("SWITCHYARD_NATS_ACK_WAIT_S", "2")
            .env("SWITCHYARD_LOG_FORMAT", "json")
            .env("RUST_LOG", "info");
        let (child, listening) = spawn_until_listening(&mut command).await;
        let address = listening["addr"]
            .as_str()
            .expect("an addr field")
            .parse::<SocketAddr>()
            .expect("a socket address");
        Self {
            address,
            admin_key,
            client: reqwest::Client::new(),
            child,
            spool,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// SIGKILL, and waits until the process is gone.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("SIGKILL");
        let status = self.child.wait().await.expect("wait for the process");
        assert!(!status.success(), "killed, not exited: {status}");
    }

    /// `/v1/ws` as admin, subscribed with `subscribe`; returns the socket and the
    /// `subscribed` frame.
    pub async fn subscribe_v1(&self, subscribe: &Value) -> (Ws, Value) {
        let mut request = format!("ws://{}/v1/ws", self.address)
            .into_client_request()
            .expect("a WebSocket request");
        let bearer = format!("Bearer {}", self.admin_key);
        request
            .headers_mut()
            .insert("authorization", bearer.parse().expect("a header value"));
        let stream = TcpStream::connect(self.address).await.expect("connect");
        let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
            .await
            .expect("WebSocket handshake");
        send_json(&mut ws, subscribe).await;
        let subscribed = next_json(&mut ws).await;
        assert_eq!(subscribed["op"], "subscribed", "{subscribed}");
        (ws, subscribed)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.spool);
    }
}
