//! `fanout --stalled N`: subscribers that connect, subscribe, and then never read again, beside
//! the readers. Their sockets take a small `SO_RCVBUF`, so the server's writes to them block
//! within a second or so and its send timeout (`SWITCHYARD_SEND_TIMEOUT_MS`) has something to
//! trip on. They are left out of every delivery and latency figure.
//!
//! What the server did with them is read from both ends: its `/metrics` counters of closed
//! connections and streams, by reason, before the run and after it; and each stalled socket,
//! drained at the end, either reaches its end (the server closed it) or stays silent (still
//! open: nothing closed it).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinSet;

use super::fanout::connect_all;
use super::feed::Frame;
use super::rest::Rest;
use super::subscriber::{Endpoint, Socket};

/// `SO_RCVBUF` of a stalled subscriber (the kernel doubles it for its bookkeeping).
const STALLED_RECV_BUFFER: u32 = 4 * 1024;
/// A stalled socket drained at the end that stays silent this long is still open.
const DRAIN_QUIET: Duration = Duration::from_secs(2);
/// The `/metrics` families that count what the server closed, by reason.
const CLOSE_FAMILIES: [&str; 2] = [
    "switchyard_streams_closed_total{",
    "switchyard_connections_closed_total{",
];

/// `/metrics` samples of [`CLOSE_FAMILIES`], by series (`name{labels}`).
pub type CloseCounts = BTreeMap<String, u64>;

pub struct Stalled {
    sockets: Vec<Socket>,
    before: CloseCounts,
}

#[derive(Debug, Serialize)]
pub struct StalledReport {
    pub subscribers: u64,
    /// Stalled sockets that had reached their end when drained after the run.
    pub closed: u64,
    /// Stalled sockets still open after the run (nothing closed them).
    pub still_open: u64,
    /// How the first closed socket ended, as the bench saw it.
    pub first_end: Option<String>,
    /// What the server counted over the run, by series: every close counter that moved,
    /// readers' included (the readers' own disconnects are in `disconnected`).
    pub server_closes: CloseCounts,
}

impl Stalled {
    /// Reads the server's close counters, then connects and subscribes `count` sockets that
    /// will never be read.
    pub async fn open(endpoint: &Endpoint, count: u64, rest: &Rest) -> anyhow::Result<Self> {
        let before = close_counts(rest).await?;
        let mut endpoint = endpoint.clone();
        endpoint.recv_buffer = Some(STALLED_RECV_BUFFER);
        let sockets = connect_all(&endpoint, count).await?;
        Ok(Self { sockets, before })
    }

    /// Drains every stalled socket to see which ones the server closed, and reads the close
    /// counters again.
    pub async fn finish(self, rest: &Rest) -> anyhow::Result<StalledReport> {
        let subscribers = self.sockets.len() as u64;
        let mut draining = JoinSet::new();
        for socket in self.sockets {
            draining.spawn(drain_to_end(socket));
        }
        let (mut closed, mut first_end) = (0, None);
        while let Some(end) = draining.join_next().await {
            if let Some(why) = end? {
                closed += 1;
                first_end.get_or_insert(why);
            }
        }
        let after = close_counts(rest).await?;
        Ok(StalledReport {
            subscribers,
            closed,
            still_open: subscribers - closed,
            first_end,
            server_closes: moved(&self.before, &after),
        })
    }
}

/// Reads what a socket still holds; `Some(how it ended)` if it ended, `None` if it went quiet
/// while still open.
async fn drain_to_end(mut socket: Socket) -> Option<String> {
    loop {
        match tokio::time::timeout(DRAIN_QUIET, socket.next()).await {
            Err(_) => return None,
            Ok(Ok(None)) => return Some("connection ended".into()),
            Ok(Err(e)) => return Some(e.to_string()),
            Ok(Ok(Some(Frame::Close(code, reason)))) => {
                return Some(match code {
                    Some(code) => format!("close frame {code} {reason}"),
                    None => "close frame".into(),
                });
            }
            Ok(Ok(Some(_))) => {}
        }
    }
}

async fn close_counts(rest: &Rest) -> anyhow::Result<CloseCounts> {
    Ok(parse_close_counts(&rest.text("/metrics").await?))
}

fn parse_close_counts(exposition: &str) -> CloseCounts {
    exposition
        .lines()
        .filter(|line| CLOSE_FAMILIES.iter().any(|f| line.starts_with(f)))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_string(), value.parse::<f64>().ok()? as u64))
        })
        .collect()
}

/// The series whose count grew, by how much.
fn moved(before: &CloseCounts, after: &CloseCounts) -> CloseCounts {
    after
        .iter()
        .filter_map(|(series, &count)| {
            let grown = count.saturating_sub(before.get(series).copied().unwrap_or(0));
            (grown > 0).then(|| (series.clone(), grown))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_counters_are_read_by_series_and_compared() {
        let before = parse_close_counts(
            "# HELP switchyard_streams_closed Event streams closed\n\
             switchyard_streams_closed_total{protocol=\"ws\",reason=\"send_timeout\"} 2\n\
             switchyard_connections_closed_total{reason=\"send_timeout\"} 2\n\
             switchyard_connections_closed_total{reason=\"header_timeout\"} 5\n\
             switchyard_connections_open 40\n",
        );
        assert_eq!(before.len(), 3);
        let after = parse_close_counts(
            "switchyard_streams_closed_total{protocol=\"ws\",reason=\"send_timeout\"} 102\n\
             switchyard_streams_closed_total{protocol=\"ws\",reason=\"unresponsive\"} 1\n\
             switchyard_connections_closed_total{reason=\"send_timeout\"} 102\n\
             switchyard_connections_closed_total{reason=\"header_timeout\"} 5\n",
        );
        let moved = moved(&before, &after);
        assert_eq!(
            moved.into_iter().collect::<Vec<_>>(),
            [
                (
                    "switchyard_connections_closed_total{reason=\"send_timeout\"}".to_string(),
                    100
                ),
                (
                    "switchyard_streams_closed_total{protocol=\"ws\",reason=\"send_timeout\"}"
                        .to_string(),
                    100
                ),
                (
                    "switchyard_streams_closed_total{protocol=\"ws\",reason=\"unresponsive\"}"
                        .to_string(),
                    1
                ),
            ]
        );
    }
}
