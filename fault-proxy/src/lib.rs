//! A TCP fault proxy: listens on 127.0.0.1 and forwards every connection to a target, with a
//! fault that can be switched at run time and restored. The service's integration tests and
//! `switchyard-bench failover` put it between switchyard and a Postgres (the control store or
//! the Realtime target) to make that Postgres fail the ways networks fail, without touching the
//! server. A crate of its own, with no dependency on switchyard, so both can use it.
//!
//! Faults:
//! - [`Fault::Pass`]: bytes flow both ways untouched;
//! - [`Fault::Blackhole`]: connections are accepted and never answered; established ones stop
//!   forwarding (what they send is held, not lost, and flows again once restored);
//! - [`Fault::Reset`]: every connection is reset at once and new ones are reset on accept;
//! - [`Fault::Latency`]: each chunk is delayed by this long before it is forwarded.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Pass,
    Blackhole,
    Reset,
    Latency(Duration),
}

/// A running proxy. Dropping it stops it and closes every connection through it.
pub struct FaultProxy {
    address: SocketAddr,
    fault: watch::Sender<Fault>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port, forwarding to `target`, in [`Fault::Pass`].
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (fault, _) = watch::channel(Fault::Pass);
        let accept = tokio::spawn(accept_loop(listener, target, fault.clone()));
        Ok(Self {
            address,
            fault,
            accept,
        })
    }

    /// Where clients connect instead of the target.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Switches the fault; it applies at once to every connection, open or new.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// Back to [`Fault::Pass`].
    pub fn restore(&self) {
        self.set(Fault::Pass);
    }

    pub fn fault(&self) -> Fault {
        *self.fault.borrow()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The accept loop owns the connection tasks; aborting it drops them all.
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, fault: watch::Sender<Fault>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(connection(client, target, fault.subscribe()));
    }
}

async fn connection(mut client: TcpStream, target: SocketAddr, mut fault: watch::Receiver<Fault>) {
    // A new connection waits out a blackhole unanswered, and is reset in Reset.
    loop {
        let current = *fault.borrow_and_update();
        match current {
            Fault::Reset => return reset(client),
            Fault::Blackhole => {
                if fault.changed().await.is_err() {
                    return;
                }
            }
            Fault::Pass | Fault::Latency(_) => break,
        }
    }
    let Ok(mut upstream) = TcpStream::connect(target).await else {
        return reset(client);
    };
    {
        let (client_read, client_write) = client.split();
        let (upstream_read, upstream_write) = upstream.split();
        let outbound = pump(client_read, upstream_write, fault.clone());
        let inbound = pump(upstream_read, client_write, fault.clone());
        tokio::select! {
            _ = async { tokio::join!(outbound, inbound) } => {}
            _ = fault.wait_for(|f| *f == Fault::Reset) => {}
        }
    }
    if *fault.borrow() == Fault::Reset {
        reset(upstream);
        reset(client);
    }
}

/// Copies one direction until EOF, applying the current fault to each chunk.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut fault: watch::Receiver<Fault>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        loop {
            let current = *fault.borrow_and_update();
            match current {
                Fault::Pass => break,
                Fault::Latency(delay) => {
                    tokio::time::sleep(delay).await;
                    break;
                }
                // Hold the chunk until the fault changes.
                Fault::Blackhole => {
                    if fault.changed().await.is_err() {
                        return;
                    }
                }
                Fault::Reset => return,
            }
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Closes with RST rather than FIN, as a crashed peer or a dropped route looks.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}
