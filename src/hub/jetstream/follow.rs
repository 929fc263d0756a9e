//! Reading the stream: the follower that feeds this instance's hub (ring, subscribers, every
//! protocol) with what every instance published, and the read-back of a range of sequences for
//! a client resuming from a position the local ring no longer holds.
//!
//! Both use ordered consumers (ephemeral, flow-controlled, recreated from the last sequence on a
//! gap), so the hub receives the stream's messages once each and in sequence order; a
//! follower that loses NATS starts again after the last sequence it delivered.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, push};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{JetStream, decode};
use crate::event::Event;
use crate::hub::{Hub, Published};

/// Longest a resume waits for the stream to hand back the range it asked for.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause before the follower tries the stream again after losing it.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Told of each event the stream routed to Realtime, before the hub sends it (the validator:
/// every instance's validator sees the whole stream, see `validator`).
pub type OnRealtime = Arc<dyn Fn(&Event) + Send + Sync>;

/// Feeds `hub` from the stream, starting after the hub's head, until `shutdown`.
pub fn spawn_follower(
    engine: JetStream,
    hub: Hub,
    on_realtime: OnRealtime,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let rt_subject = engine.subject(true);
        loop {
            let from = hub.head() + 1;
            let mut messages = match ordered(&engine, from).await {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::warn!(error = %e, from, "cannot follow the NATS stream; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(RETRY_AFTER) => continue,
                    }
                }
            };
            loop {
                let message = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    message = messages.next() => message,
                };
                let message = match message {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "the NATS stream's consumer failed; following again from the last event");
                        break;
                    }
                    None => break,
                };
                let Ok(info) = message.info() else { continue };
                let sequence = info.stream_sequence;
                match decode(&message.payload) {
                    Ok(event) => {
                        if message.subject.as_str() == rt_subject {
                            on_realtime(&event);
                        }
                        hub.publish_at(sequence, event);
                    }
                    Err(e) => {
                        tracing::error!(sequence, error = %e, "a stream message is not an event; skipped")
                    }
                }
            }
        }
    })
}

/// The events at sequences `from..=to`, all of them or none: `None` when the stream no longer
/// holds the first (retention), when the range is longer than the replay limit, or when NATS
/// does not hand it back in time.
pub(crate) async fn read_range(
    engine: &JetStream,
    from: u64,
    to: u64,
) -> Option<Vec<Arc<Published>>> {
    if to < from {
        return Some(Vec::new());
    }
    if to - from + 1 > engine.settings().max_replay {
        return None;
    }
    let read = async {
        let mut messages = ordered(engine, from).await.ok()?;
        let mut events = Vec::with_capacity((to - from + 1) as usize);
        let mut expected = from;
        while let Some(Ok(message)) = messages.next().await {
            let sequence = message.info().ok()?.stream_sequence;
            if sequence != expected {
                // Retention removed the start (or a message was deleted): no partial replay.
                return None;
            }
            let event = decode(&message.payload).ok()?;
            events.push(Arc::new(Published::encode(sequence, event)));
            if sequence == to {
                return Some(events);
            }
            expected += 1;
        }
        None
    };
    tokio::time::timeout(REPLAY_TIMEOUT, read)
        .await
        .ok()
        .flatten()
}

async fn ordered(
    engine: &JetStream,
    from: u64,
) -> Result<push::Ordered, Box<dyn std::error::Error + Send + Sync>> {
    let consumer = engine
        .stream()
        .create_consumer(push::OrderedConfig {
            deliver_subject: engine.client().new_inbox(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..Default::default()
        })
        .await?;
    Ok(consumer.messages().await?)
}
