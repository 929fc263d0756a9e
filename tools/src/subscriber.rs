//! Bench subscribers: open a WebSocket, subscribe to everything, then count each event frame
//! and record its latency, arrival time minus the intended send time the publisher stamped in
//! `data.sent_at_ns`.
//!
//! Frames are not parsed as JSON: a subscriber only looks for the `op` prefix and the
//! `"sent_at_ns":` field, so the load tool stays cheap next to the server it measures.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::sync::LazyLock;

use anyhow::Context;
use hdrhistogram::Histogram;
use memchr::memmem;
use tokio::net::TcpSocket;
use tokio_util::sync::CancellationToken;

use super::feed::{Feed, Frame};
use super::{BenchClock, Window};

/// A subscribed connection, read with the bench's lean client (`feed`).
pub type Socket = Feed;

/// The field the publisher stamps in every event's data, as it appears in compact JSON.
pub const SENT_AT_KEY: &str = r#""sent_at_ns":"#;
/// How both switchyard and the peer open an event frame; other frames (and events from a
/// server that orders keys differently) are parsed to find their `op`.
const EVENT_PREFIX: &str = r#"{"op":"event""#;
/// Loopback connections per source address before the next 127.0.0.x is used: one address
/// has about 28,000 ephemeral ports towards one server address.
const CONNECTIONS_PER_SOURCE: usize = 20_000;
const CONNECT_ATTEMPTS: u32 = 8;
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Latencies are recorded in microseconds, up to a minute, to two significant digits (within
/// 1%): a subscriber's histogram stays under 9 KiB, so tens of thousands of them fit.
pub const LATENCY_MAX_US: u64 = 60_000_000;
pub const LATENCY_SIGNIFICANT_DIGITS: u8 = 2;

/// Where subscribers connect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub ws_url: String,
    pub addr: SocketAddr,
    pub key: Option<String>,
    /// `SO_RCVBUF` for the sockets, set before connecting (which also stops the kernel from
    /// growing it): small for subscribers that never read, so the server's writes block soon.
    pub recv_buffer: Option<u32>,
}

impl Endpoint {
    pub async fn resolve(base_url: &str, key: Option<String>) -> anyhow::Result<Self> {
        let ws_url = switchyard::client::ws_url(base_url, "/v1/ws")?;
        let parsed = url::Url::parse(&ws_url)?;
        anyhow::ensure!(
            parsed.scheme() == "ws",
            "the bench speaks plain ws:// only (got `{base_url}`)"
        );
        let host = parsed.host_str().context("--url has no host")?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let addr = tokio::net::lookup_host((host, port))
            .await?
            .next()
            .with_context(|| format!("cannot resolve {host}"))?;
        Ok(Self {
            ws_url,
            addr,
            key,
            recv_buffer: None,
        })
    }

    /// The local address subscriber `index` of `total` binds to: none (the kernel picks) unless
    /// there are more connections than one loopback source address can carry.
    pub fn source_for(&self, index: usize, total: usize) -> Option<IpAddr> {
        let sources = total.div_ceil(CONNECTIONS_PER_SOURCE);
        if sources <= 1 || !self.addr.ip().is_loopback() || !self.addr.is_ipv4() {
            return None;
        }
        let host = 1 + (index % sources.min(254)) as u8;
        Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)))
    }

    /// Connects and subscribes to everything, retrying with backoff: a server that sheds load
    /// (503) or whose accept queue is full refuses some of a burst of connections.
    pub async fn subscribe(&self, source: Option<IpAddr>) -> anyhow::Result<Socket> {
        let mut backoff = Duration::from_millis(50);
        let mut attempt = 1;
        loop {
            match self.try_subscribe(source).await {
                Ok(socket) => return Ok(socket),
                Err(e) if attempt >= CONNECT_ATTEMPTS => {
                    return Err(e.context(format!("{attempt} attempts")));
                }
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    attempt += 1;
                }
            }
        }
    }

    async fn try_subscribe(&self, source: Option<IpAddr>) -> anyhow::Result<Socket> {
        let tcp = match self.addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if let Some(ip) = source {
            tcp.bind(SocketAddr::new(ip, 0))?;
        }
        if let Some(bytes) = self.recv_buffer {
            tcp.set_recv_buffer_size(bytes)?;
        }
        let stream = tcp.connect(self.addr).await?;
        stream.set_nodelay(true)?;
        let url = url::Url::parse(&self.ws_url)?;
        let host = format!("{}:{}", self.addr.ip(), self.addr.port());
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        let bearer = self.key.as_ref().map(|key| format!("Bearer {key}"));
        let headers: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|value| ("authorization", value))
            .into_iter()
            .collect();
        let mut socket = Feed::handshake(stream, &host, &path, &headers).await?;
        socket.send_text(r#"{"op":"subscribe"}"#).await?;
        tokio::time::timeout(SUBSCRIBE_TIMEOUT, async {
            loop {
                match socket.next().await? {
                    Some(Frame::Text(text)) => match op(text).as_deref() {
                        Some("subscribed") => return Ok(()),
                        Some("error") => {
                            anyhow::bail!("subscribe refused: {}", String::from_utf8_lossy(text))
                        }
                        _ => {}
                    },
                    Some(Frame::Close(code, reason)) => {
                        anyhow::bail!("closed before `subscribed`: {code:?} {reason}")
                    }
                    Some(Frame::Other) => {}
                    None => anyhow::bail!("connection closed before `subscribed`"),
                }
            }
        })
        .await
        .context("no `subscribed` frame")??;
        Ok(socket)
    }
}

/// What all subscribers of a run saw, recorded in one place. One histogram stays in the
/// cache; a histogram per subscriber (about 9 KiB each) cost the bench a tenth of its core in
/// cache misses at 800,000 frames a second (perf, docs/benchmarks.md session 6).
pub struct Tally {
    /// Measured events delivered, over every subscriber: the run watches it to know when
    /// everything expected has arrived.
    pub delivered: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

impl Tally {
    pub fn new() -> Self {
        Self {
            delivered: AtomicU64::new(0),
            latency_us: Mutex::new(
                Histogram::new_with_bounds(1, LATENCY_MAX_US, LATENCY_SIGNIFICANT_DIGITS)
                    .expect("valid bounds"),
            ),
        }
    }

    /// Every latency recorded so far.
    pub fn latencies(&self) -> Histogram<u64> {
        self.latency_us
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// What one subscriber saw of the measured window (its latencies go to the run's [`Tally`]).
pub struct Delivery {
    pub delivered: u64,
    pub lagged_notices: u64,
    /// Arrival of the last measured event, in `BenchClock` nanoseconds.
    pub last_arrival_ns: u64,
    /// Why the connection ended before the run did, if it did.
    pub ended_early: Option<String>,
}

impl Delivery {
    pub fn new() -> Self {
        Self {
            delivered: 0,
            lagged_notices: 0,
            last_arrival_ns: 0,
            ended_early: None,
        }
    }

    /// Counts one text frame that arrived at `now_ns`, recording its latency in `tally`.
    pub fn observe(&mut self, text: &[u8], now_ns: u64, window: &Window, tally: &Tally) {
        if !text.starts_with(EVENT_PREFIX.as_bytes()) {
            match op(text).as_deref() {
                Some("event") => {}
                Some("lagged") => {
                    self.lagged_notices += 1;
                    return;
                }
                _ => return,
            }
        }
        let Some(intended_ns) = intended_ns(text) else {
            return;
        };
        if !window.contains(intended_ns) {
            return;
        }
        self.delivered += 1;
        self.last_arrival_ns = self.last_arrival_ns.max(now_ns);
        tally
            .latency_us
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .saturating_record(now_ns.saturating_sub(intended_ns) / 1_000);
        tally.delivered.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads frames until `stop`, then closes the connection.
pub async fn receive(
    mut socket: Socket,
    clock: BenchClock,
    window: Window,
    tally: Arc<Tally>,
    stop: CancellationToken,
) -> Delivery {
    let mut delivery = Delivery::new();
    // Made once: a fresh `cancelled()` per frame would register with the token every time.
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    loop {
        let frame = tokio::select! {
            biased;
            _ = &mut stopped => break,
            frame = socket.next() => frame,
        };
        match frame {
            Ok(Some(Frame::Text(text))) => delivery.observe(text, clock.now_ns(), &window, &tally),
            Ok(Some(Frame::Close(code, reason))) => {
                delivery.ended_early = Some(match code {
                    Some(code) => format!("closed by the server: {code} {reason}"),
                    None => "closed by the server".into(),
                });
                break;
            }
            Ok(Some(Frame::Other)) => {}
            Err(e) => {
                delivery.ended_early = Some(e.to_string());
                break;
            }
            Ok(None) => {
                delivery.ended_early = Some("connection ended".into());
                break;
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close()).await;
    delivery
}

/// The `op` of a frame, parsed in full (for the rare frames that are not events).
fn op(text: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Op {
        op: String,
    }
    serde_json::from_slice::<Op>(text).ok().map(|f| f.op)
}

/// The `sent_at_ns` stamped in an event frame.
fn intended_ns(text: &[u8]) -> Option<u64> {
    static KEY: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(SENT_AT_KEY));
    let start = KEY.find(text)? + SENT_AT_KEY.len();
    let digits = &text[start..];
    let end = digits
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Window = Window {
        start_ns: 1_000,
        end_ns: 10_000_000,
    };

    fn frame(sent_at_ns: u64) -> Vec<u8> {
        format!(
            r#"{{"op":"event","offset":7,"event":{{"id":"x","data":{{"pad":"xx","sent_at_ns":{sent_at_ns},"seq":3}}}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn the_intended_send_time_is_read_without_parsing_the_frame() {
        assert_eq!(intended_ns(&frame(123_456)), Some(123_456));
        assert_eq!(intended_ns(br#"{"op":"event","event":{"data":{}}}"#), None);
    }

    #[test]
    fn only_events_stamped_inside_the_window_are_counted() {
        let shared = Tally::new();
        let mut delivery = Delivery::new();
        delivery.observe(&frame(500), 2_000_000, &WINDOW, &shared); // warm-up
        delivery.observe(&frame(1_000_000), 3_500_000, &WINDOW, &shared);
        delivery.observe(
            br#"{"op":"lagged","missed":3,"offset":9}"#,
            4_000_000,
            &WINDOW,
            &shared,
        );
        delivery.observe(
            br#"{"op":"subscribed","offset":1}"#,
            4_000_000,
            &WINDOW,
            &shared,
        );
        assert_eq!(delivery.delivered, 1);
        assert_eq!(shared.delivered.load(Ordering::Relaxed), 1);
        assert_eq!(delivery.lagged_notices, 1);
        let max = shared.latencies().max();
        assert!((2_490..2_530).contains(&max), "{max}");
        assert_eq!(delivery.last_arrival_ns, 3_500_000);
    }

    #[tokio::test]
    async fn many_connections_are_spread_over_loopback_source_addresses() {
        let endpoint = Endpoint::resolve("http://127.0.0.1:8080", None)
            .await
            .unwrap();
        assert_eq!(endpoint.source_for(5, 1_000), None);
        let sources: Vec<_> = (0..3)
            .map(|i| endpoint.source_for(i, 50_000).unwrap().to_string())
            .collect();
        assert_eq!(sources, ["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
    }
}
