//! The fault proxy the resilience tests rely on, checked against an echo server, so a
//! resilience test that passes does so because of switchyard, not because the proxy lied.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::WAIT;
use crate::support::proxy::{Fault, FaultProxy};

/// A server that echoes every connection back to itself.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = socket.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    address
}

async fn proxied_echo() -> FaultProxy {
    FaultProxy::start(echo_server().await).await.unwrap()
}

/// Sends `message` and reads the echo, failing after `WAIT`.
async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> Vec<u8> {
    stream.write_all(message).await.unwrap();
    let mut echoed = vec![0u8; message.len()];
    tokio::time::timeout(WAIT, stream.read_exact(&mut echoed))
        .await
        .expect("no echo in time")
        .expect("the echo failed");
    echoed
}

/// Whether anything arrives within a short window (used to show that nothing does).
async fn arrives_within(stream: &mut TcpStream, window: Duration) -> bool {
    let mut byte = [0u8; 1];
    tokio::time::timeout(window, stream.read(&mut byte))
        .await
        .is_ok()
}

#[tokio::test]
async fn fault_proxy_passes_traffic_both_ways() {
    let proxy = proxied_echo().await;
    let mut stream = TcpStream::connect(proxy.address()).await.unwrap();

    assert_eq!(round_trip(&mut stream, b"hello").await, b"hello");
    assert_eq!(proxy.fault(), Fault::Pass);
}

#[tokio::test]
async fn fault_proxy_blackhole_holds_traffic_until_restored() {
    let proxy = proxied_echo().await;
    let mut open = TcpStream::connect(proxy.address()).await.unwrap();
    assert_eq!(round_trip(&mut open, b"before").await, b"before");

    proxy.set(Fault::Blackhole);
    open.write_all(b"held").await.unwrap();
    let mut new = TcpStream::connect(proxy.address()).await.unwrap();
    new.write_all(b"queued").await.unwrap();
    assert!(!arrives_within(&mut open, Duration::from_millis(200)).await);
    assert!(!arrives_within(&mut new, Duration::from_millis(50)).await);

    proxy.restore();
    let mut held = [0u8; 4];
    tokio::time::timeout(WAIT, open.read_exact(&mut held))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&held, b"held");
    let mut queued = [0u8; 6];
    tokio::time::timeout(WAIT, new.read_exact(&mut queued))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&queued, b"queued");
}

#[tokio::test]
async fn fault_proxy_reset_closes_connections_and_refuses_new_ones_until_restored() {
    let proxy = proxied_echo().await;
    let mut open = TcpStream::connect(proxy.address()).await.unwrap();
    assert_eq!(round_trip(&mut open, b"before").await, b"before");

    proxy.set(Fault::Reset);
    let mut buffer = [0u8; 8];
    let ended = tokio::time::timeout(WAIT, open.read(&mut buffer))
        .await
        .expect("the open connection was not closed");
    assert!(matches!(ended, Ok(0) | Err(_)), "{ended:?}");
    let mut refused = TcpStream::connect(proxy.address()).await.unwrap();
    let refusal = tokio::time::timeout(WAIT, refused.read(&mut buffer))
        .await
        .expect("the new connection was not refused");
    assert!(matches!(refusal, Ok(0) | Err(_)), "{refusal:?}");

    proxy.restore();
    let mut after = TcpStream::connect(proxy.address()).await.unwrap();
    assert_eq!(round_trip(&mut after, b"after").await, b"after");
}

#[tokio::test]
async fn fault_proxy_latency_delays_each_chunk() {
    let proxy = proxied_echo().await;
    let mut stream = TcpStream::connect(proxy.address()).await.unwrap();
    let delay = Duration::from_millis(100);

    proxy.set(Fault::Latency(delay));
    let started = tokio::time::Instant::now();
    assert_eq!(round_trip(&mut stream, b"slow").await, b"slow");

    // A lower bound only: the chunk is delayed on the way in and on the way back.
    assert!(started.elapsed() >= delay * 2, "{:?}", started.elapsed());
}
