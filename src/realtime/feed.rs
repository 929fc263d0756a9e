//! Feeding the Realtime worker from the shared NATS work queue (`SWITCHYARD_NATS_URL` set):
//! instead of ingest submitting what this instance accepted, each instance pulls routed events
//! from one durable consumer that all instances share, so each event is written by one of them,
//! whichever instance took it. A message is acknowledged only once the worker announces its
//! commit (`subscribe_committed`); one that is never acknowledged (the instance died, or it
//! was dropped) comes back to some instance after the ack wait, and the table's
//! `ON CONFLICT (id) DO NOTHING` absorbs a second write.
//!
//! While this instance's breaker refuses calls, or its backlog holds events, it stops pulling:
//! the stream is the backlog, and it survives the instance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{AckKind, Message};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{CommitKind, RealtimePath};
use crate::breaker::Breaker;
use crate::hub::Published;
use crate::hub::jetstream::{JetStream, PullConsumer, WORK_QUEUE_IN_FLIGHT, decode};

/// Most messages asked for at once.
const PULL_BATCH: usize = 500;
/// How long one pull waits for messages before asking again.
const PULL_EXPIRES: Duration = Duration::from_secs(1);
/// Pause while the breaker refuses, the backlog holds events, or NATS is unreachable.
const PAUSE: Duration = Duration::from_millis(250);
/// How often the queue's ack floor is read for the validator
/// ([`RealtimePath::work_queue_floor`]).
const FLOOR_EVERY: Duration = Duration::from_secs(1);

type Waiting = Arc<Mutex<HashMap<Uuid, Message>>>;

/// Pulls routed events into `realtime` until `shutdown`; see the module comment.
pub fn spawn_feed(
    engine: JetStream,
    realtime: RealtimePath,
    breaker: Breaker,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let waiting: Waiting = Arc::default();
    let acker = spawn_acker(realtime.clone(), waiting.clone(), shutdown.clone());
    tokio::spawn(async move {
        let mut consumer: Option<PullConsumer> = None;
        let mut floor_read: Option<tokio::time::Instant> = None;
        while !shutdown.is_cancelled() {
            if consumer.is_none() {
                match engine.work_queue().await {
                    Ok(c) => consumer = Some(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot open the Realtime work queue on NATS; retrying");
                        pause(&shutdown).await;
                        continue;
                    }
                }
            }
            if floor_read.is_none_or(|at| at.elapsed() >= FLOOR_EVERY)
                && let Some(queue) = consumer.as_mut()
            {
                floor_read = Some(tokio::time::Instant::now());
                match queue.info().await {
                    Ok(info) => realtime.read_work_queue(
                        info.num_pending,
                        info.num_ack_pending as u64,
                        info.ack_floor.stream_sequence,
                    ),
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot read the Realtime work queue's ack floor")
                    }
                }
            }
            let busy = lock(&waiting).len() >= WORK_QUEUE_IN_FLIGHT;
            if busy || !breaker.permits_calls() || realtime.holds_backlog() {
                pause(&shutdown).await;
                continue;
            }
            let Some(queue) = consumer.as_ref() else {
                continue;
            };
            let batch = queue
                .fetch()
                .max_messages(PULL_BATCH)
                .expires(PULL_EXPIRES)
                .messages()
                .await;
            let mut messages = match batch {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot pull from the Realtime work queue; retrying");
                    consumer = None;
                    pause(&shutdown).await;
                    continue;
                }
            };
            loop {
                let message = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    message = messages.next() => message,
                };
                match message {
                    Some(Ok(message)) => take(message, &realtime, &waiting).await,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "a pull from the Realtime work queue ended");
                        break;
                    }
                    None => break,
                }
            }
        }
        // Unacknowledged messages go back to the queue after the ack wait, for another instance.
        let _ = acker.await;
    })
}

async fn take(message: Message, realtime: &RealtimePath, waiting: &Waiting) {
    let Ok(sequence) = message.info().map(|info| info.stream_sequence) else {
        return;
    };
    match decode(&message.payload) {
        Ok(event) => {
            let published = Arc::new(Published::encode(sequence, event));
            // A redelivery replaces the earlier copy: only the newest can still be acknowledged.
            lock(waiting).insert(published.event.id, message);
            realtime.submit(published);
        }
        Err(e) => {
            tracing::error!(sequence, error = %e, "a routed stream message is not an event; terminated");
            let _ = message.ack_with(AckKind::Term).await;
        }
    }
}

/// Acknowledges what the worker committed; a dropped event is handed back at once (`Nak`).
fn spawn_acker(
    realtime: RealtimePath,
    waiting: Waiting,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let mut committed = realtime.subscribe_committed();
    tokio::spawn(async move {
        loop {
            let batch = tokio::select! {
                _ = shutdown.cancelled() => return,
                batch = committed.recv() => batch,
            };
            let batch = match batch {
                Ok(batch) => batch,
                // Missed announcements: those messages are redelivered after the ack wait and
                // written again harmlessly.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let messages: Vec<Message> = {
                let mut waiting = lock(&waiting);
                batch
                    .ids
                    .iter()
                    .filter_map(|id| waiting.remove(id))
                    .collect()
            };
            let kind = match batch.kind {
                CommitKind::Dropped => AckKind::Nak(None),
                _ => AckKind::Ack,
            };
            for message in messages {
                if let Err(e) = message.ack_with(kind).await {
                    tracing::debug!(error = %e, "cannot acknowledge a Realtime message; it will be redelivered");
                }
            }
        }
    })
}

async fn pause(shutdown: &CancellationToken) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(PAUSE) => {}
    }
}

fn lock(waiting: &Waiting) -> std::sync::MutexGuard<'_, HashMap<Uuid, Message>> {
    waiting
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
