//! Accepting and serving client connections, in place of `axum::serve`: HTTP/1 through
//! hyper with a timer, so a client that sends half a request header (or leaves a keep-alive
//! connection idle) is cut after `SWITCHYARD_HEADER_READ_TIMEOUT_MS`; at most
//! `SWITCHYARD_MAX_CONNECTIONS` connections at once, a new one past it answered 503 and closed
//! at once; every write to a client bounded by `SWITCHYARD_SEND_TIMEOUT_MS` ([`io`]), so a
//! client that stops reading cannot hold a task or its buffers. WebSocket upgrades keep the
//! same socket, so the cap and the write deadline follow them. TCP_NODELAY on every socket, and
//! a bounded kernel send buffer (`SWITCHYARD_SOCKET_SEND_BUFFER_BYTES`).
//! On the shutdown signal it stops accepting, lets each connection finish its request
//! (hyper's graceful shutdown) and returns once they have, or once
//! `SWITCHYARD_SHUTDOWN_DEADLINE_S` has passed: then the connections still open are closed
//! (their requests dropped) and counted in a log line, so a request that never finishes (a
//! body that never comes) cannot hold the exit. Upgraded sockets are the application's to close.

mod io;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::metrics::connections::CutReason;
use io::GuardedStream;

/// The connection limits, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub send_timeout: Duration,
    /// SO_SNDBUF asked for each client socket; 0 leaves the kernel's auto-tuning.
    pub socket_send_buffer: u32,
    pub max_connections: u32,
    /// How long the drain on shutdown waits for requests in flight.
    pub drain_deadline: Duration,
}

impl Limits {
    pub fn from_config(config: &Config) -> Self {
        Self {
            header_read_timeout: config.header_read_timeout(),
            send_timeout: config.send_timeout(),
            socket_send_buffer: config.socket_send_buffer_bytes,
            max_connections: config.max_connections,
            drain_deadline: Duration::from_secs(config.shutdown_deadline_s),
        }
    }
}

/// What a request knows of the connection it came on (a request extension): the client's
/// address, and whether a write to it has timed out (the SSE stream reads this to tell a
/// stalled client from one that left).
#[derive(Debug, Clone)]
pub struct ClientConnection {
    pub peer: SocketAddr,
    stalled: Arc<AtomicBool>,
}

impl ClientConnection {
    /// True once a write to this client waited past the send timeout.
    pub fn stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }
}

/// The answer to a connection past the cap, written without waiting (the socket is new, so
/// its send buffer is empty) and followed by a close.
static REFUSAL: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    let body = serde_json::json!({
        "type": "https://switchyard.dev/problems/unavailable",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "too many connections are open (SWITCHYARD_MAX_CONNECTIONS); retry shortly",
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
});

/// Serves `router` on `listener` until `signal` resolves, then shuts down gracefully.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: Limits,
    metrics: Metrics,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections as usize));
    let (stop, force) = (CancellationToken::new(), CancellationToken::new());
    let tasks = TaskTracker::new();
    tokio::pin!(signal);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            _ = &mut signal => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            let _ = tcp.try_write(&REFUSAL);
            metrics
                .connections()
                .refused(CutReason::MaxConnections, limits.max_connections);
            continue;
        };
        // As Node's `ws` does: event frames are small and must not wait for Nagle (p99 at
        // 1,000 subscribers x 100 events/s: 52-123 ms -> 41 ms, docs/benchmarks.md).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        // A bounded kernel buffer, so a client that stops reading is cut within seconds of its
        // buffer filling rather than after megabytes (`Config::socket_send_buffer_bytes`).
        if limits.socket_send_buffer > 0
            && let Err(e) = socket2::SockRef::from(&tcp)
                .set_send_buffer_size(limits.socket_send_buffer as usize)
        {
            tracing::debug!(error = %e, "cannot set SO_SNDBUF");
        }
        let stream = GuardedStream::new(tcp, limits.send_timeout, metrics.clone(), permit);
        tasks.spawn(connection(
            stream,
            peer,
            router.clone(),
            limits,
            metrics.clone(),
            (stop.clone(), force.clone()),
        ));
    }
    drop(listener);
    stop.cancel();
    tasks.close();
    if tokio::time::timeout(limits.drain_deadline, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = tasks.len(),
            deadline_s = limits.drain_deadline.as_secs(),
            "shutdown deadline passed with requests in flight: closing their connections"
        );
        force.cancel();
        tasks.wait().await;
    }
    Ok(())
}

/// Serves one connection until it ends, is upgraded, or shutdown lets its request finish;
/// `force` (the drain's deadline) closes it wherever it is.
async fn connection(
    stream: GuardedStream<TcpStream>,
    peer: SocketAddr,
    router: axum::Router,
    limits: Limits,
    metrics: Metrics,
    (stop, force): (CancellationToken, CancellationToken),
) {
    let client = ClientConnection {
        peer,
        stalled: stream.stalled_flag(),
    };
    let stalled = client.stalled.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(client.clone());
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(request.map(axum::body::Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let served = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        _ = stop.cancelled() => {
            served.as_mut().graceful_shutdown();
            tokio::select! {
                result = served.as_mut() => result,
                _ = force.cancelled() => return,
            }
        }
    };
    let Err(error) = result else { return };
    if error.is_timeout() {
        metrics.connections().closed(CutReason::HeaderTimeout);
        tracing::debug!(%peer, timeout_ms = limits.header_read_timeout.as_millis() as u64, "closed a connection: no request headers in time");
    } else if stalled.load(Ordering::Relaxed) {
        // Counted by the stream when its write deadline passed.
        tracing::info!(%peer, timeout_ms = limits.send_timeout.as_millis() as u64, "closed a connection: the client stopped reading");
    } else {
        tracing::debug!(%peer, error = %error, "connection ended with an error");
    }
}

/// An accept that failed. A connection the client dropped before it was accepted is nothing;
/// anything else (out of file descriptors, most often) is logged, and accepting pauses a
/// moment so as not to spin on it.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %error, "cannot accept connections; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
