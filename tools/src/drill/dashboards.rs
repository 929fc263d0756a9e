//! The drill's dashboards: N `/v1/ws` subscribers, each recording the id of every event it
//! receives and the `transport_changed` frames it is sent, until the sentinel arrives.

use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

/// What one dashboard saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub ids: Vec<Uuid>,
    /// The `transport` of each `transport_changed` frame, in order.
    pub transport_changes: Vec<String>,
    /// Lag notices: the server told this dashboard it fell behind.
    pub lagged: usize,
    /// Events that arrived after the sentinel (read for a quiet second after it): the hub
    /// does not order events accepted by concurrent requests, so a late one is not lost.
    pub after_sentinel: usize,
    /// Text frames this reader could not parse (0, or the drill's own reader is at fault).
    pub unreadable: usize,
}

/// Only the fields the drill reads; serde skips the rest of each frame.
#[derive(Deserialize)]
struct Frame {
    op: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    transport: Option<String>,
    #[serde(default)]
    event: Option<EventHead>,
}

#[derive(Deserialize)]
struct EventHead {
    id: Uuid,
    event_type: String,
}

/// How long a dashboard may wait for its subscription to be acknowledged.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(10);
/// How long a dashboard keeps reading after the sentinel with nothing arriving.
const QUIET_AFTER_SENTINEL: Duration = Duration::from_secs(1);

pub struct Dashboards {
    tasks: Vec<JoinHandle<anyhow::Result<Seen>>>,
}

impl Dashboards {
    /// Opens `n` subscribers to everything; returns once every one is subscribed.
    pub async fn open(base: &str, key: &str, n: usize) -> anyhow::Result<Self> {
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let mut request =
                format!("{}/v1/ws", base.replacen("http", "ws", 1)).into_client_request()?;
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {key}").parse()?);
            let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
            ws.send(Message::text(json!({"op": "subscribe"}).to_string()))
                .await?;
            // Attached only once the server says so: an event published before that goes to
            // the subscribers already attached, not to this one, and would read as lost.
            tokio::time::timeout(SUBSCRIBE_WAIT, async {
                while let Some(message) = ws.next().await {
                    if let Message::Text(text) = message?
                        && serde_json::from_str::<Frame>(text.as_str())
                            .is_ok_and(|frame| frame.op == "subscribed")
                    {
                        return Ok(());
                    }
                }
                anyhow::bail!("the subscription closed before it was acknowledged")
            })
            .await
            .context("no `subscribed` acknowledgement")??;
            tasks.push(tokio::spawn(async move {
                let mut seen = Seen::default();
                let mut ended = false;
                loop {
                    let next = if ended {
                        match tokio::time::timeout(QUIET_AFTER_SENTINEL, ws.next()).await {
                            Ok(next) => next,
                            Err(_) => return Ok(seen),
                        }
                    } else {
                        ws.next().await
                    };
                    let Some(message) = next else { break };
                    let Message::Text(text) = message? else {
                        continue;
                    };
                    let Ok(frame) = serde_json::from_str::<Frame>(text.as_str()) else {
                        seen.unreadable += 1;
                        continue;
                    };
                    match (frame.op.as_str(), frame.kind.as_deref(), frame.event) {
                        ("event", _, Some(event)) if event.event_type == "sentinel" => {
                            ended = true;
                        }
                        ("event", _, Some(event)) => {
                            seen.ids.push(event.id);
                            seen.after_sentinel += usize::from(ended);
                        }
                        ("system", Some("transport_changed"), _) => seen
                            .transport_changes
                            .push(frame.transport.unwrap_or_default()),
                        ("lagged", _, _) => seen.lagged += 1,
                        _ => {}
                    }
                }
                if ended {
                    return Ok(seen);
                }
                anyhow::bail!("the subscription ended before the sentinel")
            }));
        }
        Ok(Self { tasks })
    }

    /// What each dashboard saw, once each has read the sentinel (60 s at most).
    pub async fn finish(self) -> anyhow::Result<Vec<Seen>> {
        let mut all = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            let seen = tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .context("a dashboard never read the sentinel")???;
            all.push(seen);
        }
        Ok(all)
    }
}
