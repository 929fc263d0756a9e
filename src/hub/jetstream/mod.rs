//! The NATS JetStream engine (`SWITCHYARD_NATS_URL` set): every instance publishes each
//! accepted event to one stream and fans out what the stream delivers, so an event sent to
//! any instance reaches the subscribers of all of them, in the stream's order.
//!
//! Positions are the stream's: the offset is the stream sequence and the epoch names the
//! stream (its name and creation time), so a client resumes on any instance, and a stream
//! that was deleted and made again is a new epoch (history lost, `recovered: false`).
//!
//! One stream, two subjects: `<stream>.events.rt` for events the ingesting instance's strategy
//! routed to Realtime, `<stream>.events.ws` for the others (the decision is also the
//! `Switchyard-Realtime` header), so the shared Realtime work queue (`realtime::feed`) filters
//! on the subject. The event id is the `Nats-Msg-Id`: a repeat within the stream's duplicate
//! window is one message, whichever instance took it. `follow.rs` holds the fan-out and the
//! replay of positions older than the local ring.

mod attach;
mod follow;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};

use crate::event::Event;

pub(crate) use follow::read_range;
pub use follow::{OnRealtime, spawn_follower};

/// The shared Realtime consumer, as instances pull from it.
pub type PullConsumer = async_nats::jetstream::consumer::Consumer<pull::Config>;

/// Routed events handed out and not yet acknowledged, across all instances (the consumer's
/// `max_ack_pending`); each instance also stops pulling at this many of its own.
pub const WORK_QUEUE_IN_FLIGHT: usize = 20_000;

/// The header carrying the routing decision, made once by the ingesting instance.
pub const REALTIME_HEADER: &str = "Switchyard-Realtime";

/// How an instance reaches the stream; see `config::NatsConfig` for each setting.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub url: String,
    pub stream: String,
    pub max_age: Duration,
    pub max_bytes: i64,
    pub duplicate_window: Duration,
    /// Most events one resume may read back from the stream.
    pub max_replay: u64,
    /// How long the Realtime work queue waits for an ack before redelivering.
    pub ack_wait: Duration,
}

/// Why the engine could not start. Both name the URL, so the operator knows what to fix.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "cannot reach NATS at {url}: {cause} (start nats-server -js, or unset SWITCHYARD_NATS_URL for the in-process hub)"
    )]
    Connect { url: String, cause: String },
    #[error(
        "cannot open the JetStream stream {stream} on NATS at {url}: {cause} (is JetStream enabled? nats-server -js)"
    )]
    Stream {
        url: String,
        stream: String,
        cause: String,
    },
}

/// Why an event could not be made durable in the stream: the publish is refused (503).
#[derive(Debug, thiserror::Error)]
pub enum PublishFailure {
    #[error("NATS is unreachable; the event was not accepted")]
    Disconnected,
    #[error("the stream did not acknowledge the event: {0}")]
    NotAcknowledged(String),
}

/// What the stream said about one published event.
#[derive(Debug, Clone, Copy)]
pub struct StreamAck {
    pub sequence: u64,
    /// The id was already in the stream (within its duplicate window): `sequence` is the
    /// original's and `realtime` its routing decision.
    pub duplicate: bool,
    pub realtime: bool,
}

/// The engine of one instance. Cheap to clone.
#[derive(Clone)]
pub struct JetStream {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    context: jetstream::Context,
    stream: stream::Stream,
    settings: StreamSettings,
    epoch: String,
    /// The stream's last sequence when this instance started: its fan-out begins after it.
    start_head: u64,
}

impl JetStream {
    /// Connects and creates the stream if it does not exist (an existing one is used as it is:
    /// its retention is whatever the first instance set).
    pub async fn connect(settings: StreamSettings) -> Result<Self, EngineError> {
        let url = if settings.url.contains('@') {
            crate::config::mask_url(&settings.url)
        } else {
            settings.url.clone()
        };
        let connect_error = |cause: String| EngineError::Connect {
            url: url.clone(),
            cause,
        };
        let options = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .name("switchyard")
            .event_callback(|event| async move {
                // What an operator asks first when publishes start failing with 503.
                match event {
                    async_nats::Event::Disconnected => {
                        tracing::warn!("lost NATS: refusing new events until it is back")
                    }
                    async_nats::Event::Connected => tracing::info!("connected to NATS"),
                    other => tracing::debug!(event = %other, "NATS client event"),
                }
            });
        let client = options
            .connect(settings.url.as_str())
            .await
            .map_err(|e| connect_error(e.to_string()))?;
        let context = jetstream::new(client.clone());
        let stream_error = |cause: String| EngineError::Stream {
            url: url.clone(),
            stream: settings.stream.clone(),
            cause,
        };
        let mut stream = context
            .get_or_create_stream(stream::Config {
                name: settings.stream.clone(),
                subjects: vec![format!("{}.events.>", settings.stream)],
                max_age: settings.max_age,
                max_bytes: settings.max_bytes,
                duplicate_window: settings.duplicate_window,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| stream_error(e.to_string()))?;
        let info = stream
            .info()
            .await
            .map_err(|e| stream_error(e.to_string()))?;
        let epoch = format!(
            "{}-{}",
            settings.stream,
            info.created.unix_timestamp_nanos() / 1_000_000
        );
        let start_head = info.state.last_sequence;
        tracing::info!(url = %url, stream = %settings.stream, epoch = %epoch, head = start_head, "on the NATS JetStream stream");
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                context,
                stream,
                settings,
                epoch,
                start_head,
            }),
        })
    }

    pub fn epoch(&self) -> &str {
        &self.inner.epoch
    }

    pub fn start_head(&self) -> u64 {
        self.inner.start_head
    }

    pub fn settings(&self) -> &StreamSettings {
        &self.inner.settings
    }

    pub fn stream(&self) -> &stream::Stream {
        &self.inner.stream
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    /// Whether the connection to NATS is up right now.
    pub fn connected(&self) -> bool {
        self.inner.client.connection_state() == State::Connected
    }

    /// The core NATS subject (outside the stream) on which instances tell each other what their
    /// Realtime path committed (`realtime::feed`).
    pub fn commits_subject(&self) -> String {
        format!("{}.committed", self.inner.settings.stream)
    }

    /// The subject an event goes to, by its routing decision.
    pub fn subject(&self, realtime: bool) -> String {
        let kind = if realtime { "rt" } else { "ws" };
        format!("{}.events.{kind}", self.inner.settings.stream)
    }

    /// Publishes `event` and waits for the stream's acknowledgement. Refuses at once while
    /// disconnected, rather than let the client library buffer what may never be stored.
    pub async fn publish(
        &self,
        event: &Event,
        realtime: bool,
    ) -> Result<StreamAck, PublishFailure> {
        if !self.connected() {
            return Err(PublishFailure::Disconnected);
        }
        let payload = serde_json::to_vec(event).expect("events serialize");
        let message = PublishMessage::build()
            .payload(payload.into())
            .message_id(event.id.to_string())
            .header(REALTIME_HEADER, if realtime { "1" } else { "0" });
        let failed = |e: &dyn std::fmt::Display| PublishFailure::NotAcknowledged(e.to_string());
        let ack = self
            .inner
            .context
            .send_publish(self.subject(realtime), message)
            .await
            .map_err(|e| failed(&e))?
            .await
            .map_err(|e| failed(&e))?;
        let realtime = if ack.duplicate {
            // The original's decision, not this instance's: one event, one routing.
            self.routed_to_realtime(ack.sequence)
                .await
                .unwrap_or(realtime)
        } else {
            realtime
        };
        Ok(StreamAck {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
            realtime,
        })
    }

    /// The Realtime work queue: one durable pull consumer of the routed subject that every
    /// instance shares, so each routed event goes to one instance at a time and comes back
    /// to another after `ack_wait` if that one dies before acknowledging it.
    pub async fn work_queue(&self) -> Result<PullConsumer, async_nats::Error> {
        let name = format!("{}-realtime", self.inner.settings.stream);
        let consumer = self
            .inner
            .stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: self.subject(true),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: self.inner.settings.ack_wait,
                    max_ack_pending: WORK_QUEUE_IN_FLIGHT as i64,
                    ..Default::default()
                },
            )
            .await?;
        Ok(consumer)
    }

    async fn routed_to_realtime(&self, sequence: u64) -> Option<bool> {
        let message = self.inner.stream.get_raw_message(sequence).await.ok()?;
        Some(message.subject.as_str() == self.subject(true))
    }
}

pub(crate) use wire::decode;
