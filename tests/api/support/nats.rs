//! NATS for the scale-out tests: a JetStream stream of its own per test on the shared
//! nats-server (127.0.0.1:4222, started like Postgres before a session; `.ci/run` starts one
//! when none runs), deleted when the test ends (also when it panics); and a nats-server of the
//! test's own on a free port, for stopping and restarting NATS under a running switchyard.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use switchyard::Config;
use uuid::Uuid;

use super::wait::{self, Look};

/// The NATS every scale-out test shares (each on a stream of its own).
pub const NATS_URL: &str = "nats://127.0.0.1:4222";

/// A stream named for one test, deleted on drop.
pub struct TestStream {
    pub name: String,
    pub url: String,
}

impl TestStream {
    pub fn new() -> Self {
        Self::on(NATS_URL)
    }

    pub fn on(url: &str) -> Self {
        Self {
            name: format!("test_{}", &Uuid::new_v4().simple().to_string()[..16]),
            url: url.to_string(),
        }
    }

    /// Puts `config` on this stream, with a short ack wait so a dead instance's share of the
    /// Realtime queue comes back within a test's patience.
    pub fn configure(&self, config: &mut Config) {
        config.nats.url = Some(self.url.clone());
        config.nats.stream = self.name.clone();
        config.nats.max_age_s = 600;
        config.nats.ack_wait_s = 2;
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Its own thread and runtime: drop may run inside the test's runtime, or after a panic.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let connect = async_nats::ConnectOptions::new()
                    .connection_timeout(Duration::from_secs(2))
                    .connect(url.as_str());
                if let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(3), connect).await
                {
                    let _ = async_nats::jetstream::new(client)
                        .delete_stream(&name)
                        .await;
                }
            });
        })
        .join();
    }
}

/// A nats-server with JetStream that the test owns: stopped and started again on the same
/// port and store directory, so what the stream held before is there after.
pub struct OwnNats {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl OwnNats {
    pub async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("switchyard-nats-{}", Uuid::new_v4().simple()));
        let mut nats = Self {
            port,
            dir,
            child: None,
        };
        nats.restart().await;
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: NATS simply vanishes).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) and waits until it accepts connections.
    pub async fn restart(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server on PATH");
        self.child = Some(child);
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        wait::until("the test's nats-server to listen", async || {
            let up = TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok();
            Look::ready_if(up, address)
        })
        .await;
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
