//! Every setting switchyard reads, typed, with its environment name and default.
//!
//! Nothing else in the crate reads the environment: `clap` parses the command line and the
//! environment together here, so `switchyard serve --help` is the complete list of settings.

use std::net::IpAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};

mod limits;
pub use limits::Limits;

/// Settings of `switchyard serve`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long = "host", env = "MONITORING_HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,

    /// Port to listen on (0 picks a free port).
    #[arg(long = "port", env = "MONITORING_PORT", default_value_t = 8080)]
    pub port: u16,

    /// The control store. The database is created if it does not exist.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/switchyard",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Events kept in the hub's history ring (resume window).
    #[arg(long, env = "SWITCHYARD_HISTORY_SIZE", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub history_size: u32,

    /// Events a subscriber may fall behind before it is told it lagged.
    #[arg(long, env = "SWITCHYARD_SUBSCRIBER_QUEUE", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(16..))]
    pub subscriber_queue: u32,

    /// Window in which a repeated client-chosen event id is acknowledged but not broadcast again.
    #[arg(long, env = "SWITCHYARD_IDEMPOTENCY_WINDOW_S", default_value_t = 300)]
    pub idempotency_window_s: u64,

    /// An admin key accepted without a database lookup (automation, quickstart). Never logged.
    #[arg(long, env = "SWITCHYARD_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,

    /// Let clients subscribe and read without a key (legacy dashboards had none).
    #[arg(long, env = "SWITCHYARD_PUBLIC_READ", default_value_t = false, value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub public_read: bool,

    /// Require a `read` key for `GET /metrics` (open by default, as Prometheus scrapes usually
    /// are; with `SWITCHYARD_PUBLIC_READ=true` a scrape without a key is still let in).
    #[arg(long, env = "SWITCHYARD_METRICS_AUTH", default_value_t = false, value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub metrics_auth: bool,

    /// Longest a request may take to produce its response, in milliseconds.
    #[arg(long, env = "SWITCHYARD_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,

    /// Requests served at once; beyond it requests are shed with 503 and Retry-After.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_CONCURRENT_REQUESTS",
        default_value_t = 1024
    )]
    pub max_concurrent_requests: usize,

    /// Interval of server pings on WebSockets; a client silent for two intervals is dropped.
    #[arg(long, env = "SWITCHYARD_WS_PING_INTERVAL_S", default_value_t = 25)]
    pub ws_ping_interval_s: u64,

    /// Longest a client may take to send a request's headers, in milliseconds; also how long an
    /// idle keep-alive connection waits for its next request (hyper times both from the moment
    /// it starts waiting for a request head). Past it the connection is closed.
    #[arg(long, env = "SWITCHYARD_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_ms: u64,

    /// Client connections open at once; beyond it a new connection is answered 503 and closed.
    #[arg(long, env = "SWITCHYARD_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Event streams (`/v1/ws`, `/v1/stream`, `/ws`, `/events`) open at once per API key
    /// (anonymous readers: per client IP address); beyond it 429 with Retry-After.
    #[arg(long, env = "SWITCHYARD_MAX_STREAMS_PER_KEY", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams_per_key: u32,

    /// Longest a write to a client may wait, in milliseconds: a WebSocket or SSE client (or any
    /// HTTP client) that stops reading for this long is disconnected.
    #[arg(long, env = "SWITCHYARD_SEND_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub send_timeout_ms: u64,

    /// Kernel send buffer asked for each client socket (SO_SNDBUF), in bytes; 0 leaves the
    /// kernel's auto-tuning (up to `net.ipv4.tcp_wmem`'s maximum, 4 MiB on Debian). A client
    /// that stops reading is cut only once its buffer is full and a write then waits out the
    /// send timeout: with 4 MiB that took about a minute at 200 events/s, during which every
    /// event was still copied to it. 128 KiB (the kernel doubles it) is 0.5 s of events at
    /// 800/s and ~5 MB/s per connection at 50 ms round trip: plenty for a dashboard.
    #[arg(long, env = "SWITCHYARD_SOCKET_SEND_BUFFER_BYTES", default_value_t = 128 * 1024)]
    pub socket_send_buffer_bytes: u32,

    /// Entries a subscription filter may list per part (event types, categories, sources).
    #[arg(long, env = "SWITCHYARD_MAX_FILTER_VALUES", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_filter_values: u32,

    /// Origins (comma-separated, e.g. `https://dash.example.com,http://localhost:3000`) allowed
    /// to open WebSockets (`/v1/ws`, `/ws`, `/events`); others get 403. Unset: any origin
    /// (the legacy dashboard page is served from another origin).
    #[arg(long, env = "SWITCHYARD_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,

    /// How long shutdown waits for open connections to finish, in seconds.
    #[arg(long, env = "SWITCHYARD_SHUTDOWN_GRACE_S", default_value_t = 10)]
    pub shutdown_grace_s: u64,

    /// Longest a request waits for the control store (a connection, then its statements), in
    /// milliseconds; past it the answer is 503 with Retry-After.
    #[arg(long, env = "SWITCHYARD_STORE_TIMEOUT_MS", default_value_t = 3_000)]
    pub store_timeout_ms: u64,

    /// Longest the whole shutdown may take, in seconds (requests finished, the Realtime path
    /// flushed or spooled); past it the exit is forced, logging what was not persisted.
    #[arg(long, env = "SWITCHYARD_SHUTDOWN_DEADLINE_S", default_value_t = 30)]
    pub shutdown_deadline_s: u64,

    /// A local directory where the Realtime events still held at shutdown are written when
    /// the control store cannot keep them (it is the target, or unreachable); the next start
    /// replays it. Unset: `switchyard-spool` in the working directory.
    #[arg(long, env = "SWITCHYARD_SPOOL_DIR", default_value = "switchyard-spool")]
    pub spool_dir: std::path::PathBuf,

    /// Log format.
    #[arg(long, env = "SWITCHYARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter (tracing's EnvFilter syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log: String,

    /// The environment flags are evaluated in when a context names none.
    #[arg(long, env = "SWITCHYARD_ENVIRONMENT", default_value = "production")]
    pub environment: String,

    /// Seconds between full flag resyncs (covers a missed NOTIFY).
    #[arg(long, env = "SWITCHYARD_FLAGS_RESYNC_S", default_value_t = 30)]
    pub flag_resync_s: u64,

    /// Days of flag audit history to keep (0 keeps everything).
    #[arg(long, env = "SWITCHYARD_AUDIT_RETENTION_DAYS", default_value_t = 0)]
    pub audit_retention_days: u32,

    /// Milliseconds between the rollout driver's looks at running plans and due scheduled
    /// changes (it also wakes at once on any breaker transition).
    #[arg(long, env = "SWITCHYARD_ROLLOUT_TICK_MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..))]
    pub rollout_tick_ms: u64,

    /// When the Realtime breaker trips: an integer >= 1 is a number of consecutive failures,
    /// a number in (0, 1) a failure rate over 60 s with at least 10 calls (legacy; default 5).
    #[arg(long, env = "CIRCUIT_BREAKER_FAILURE_THRESHOLD")]
    pub circuit_breaker_failure_threshold: Option<String>,

    /// The longest the Realtime breaker stays open before probing, in seconds (legacy; default
    /// 60). The open period starts at 1 s and doubles up to it.
    #[arg(long, env = "CIRCUIT_BREAKER_RECOVERY_TIME_S")]
    pub circuit_breaker_recovery_time_s: Option<u64>,

    /// The Realtime breaker's stall rule: a write that times out opens the breaker at once when
    /// nothing succeeded since it started (a blackholed target opens it one call timeout after
    /// it stopped answering, not threshold x timeout). false leaves timeouts to the failure
    /// policy alone.
    #[arg(long, env = "SWITCHYARD_BREAKER_STALL_TRIP", default_value_t = true, value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub breaker_stall_trip: bool,

    /// The Realtime path: its target, queue, backlog, replay rate and retention.
    #[command(flatten)]
    pub realtime: RealtimeConfig,

    /// The consistency validator: its windows, capacity and report retention.
    #[command(flatten)]
    pub validation: ValidationConfig,

    /// Scale-out on NATS JetStream (off unless `SWITCHYARD_NATS_URL` is set).
    #[command(flatten)]
    pub nats: NatsConfig,
    /// Byte budgets and caps: the largest event, history and backlog bytes, legacy answers.
    #[command(flatten)]
    pub limits: Limits,

    /// The legacy boot-time variables, which pin the flags they map to.
    #[command(flatten)]
    pub legacy: LegacyEnv,

    /// `SWITCHYARD_FLAG_<KEY>` pins (dots and dashes in the key become underscores), read
    /// from the environment at boot by [`flag_pins_from_env`].
    #[arg(skip)]
    pub flag_env: std::collections::BTreeMap<String, String>,
}

/// Settings of the Realtime path (`crate::realtime`).
#[derive(Debug, Clone, Args)]
pub struct RealtimeConfig {
    /// The Realtime target: the Postgres Supabase Realtime reads (default: DATABASE_URL). When
    /// it names another database, its `monitoring` schema is applied there (created if allowed).
    #[arg(
        id = "realtime_database_url",
        long = "realtime-database-url",
        value_name = "URL",
        env = "REALTIME_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Events waiting in front of the Realtime batcher; when full, events go straight to the backlog.
    #[arg(long = "realtime-queue", env = "SWITCHYARD_REALTIME_QUEUE", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub queue: u32,

    /// Events held in memory while the Realtime target fails; overflow goes to the dead letter
    /// (another target database) or is dropped and counted (target = control store).
    #[arg(long = "realtime-backlog", env = "SWITCHYARD_REALTIME_BACKLOG", default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub backlog: u32,

    /// Events per second the backlog is replayed at once the target recovers, on top of the
    /// events that keep arriving behind it meanwhile (so the backlog drains at this rate even
    /// while arrivals outpace it).
    #[arg(long = "realtime-replay-rate", env = "SWITCHYARD_REALTIME_REPLAY_RATE", default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub replay_rate: u32,

    /// Days Realtime rows are kept before retention deletes them (0 keeps everything).
    #[arg(
        long = "realtime-retention-days",
        env = "SWITCHYARD_REALTIME_RETENTION_DAYS",
        default_value_t = 7
    )]
    pub retention_days: u32,

    /// The most events one Realtime write carries: every batch class may grow to it under a
    /// burst (a sparse class still flushes at its linger). Larger: fewer commits per burst,
    /// longer statements.
    #[arg(long = "realtime-largest-batch", env = "SWITCHYARD_REALTIME_LARGEST_BATCH", default_value_t = crate::realtime::DEFAULT_LARGEST_BATCH as u32, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub largest_batch: u32,

    /// Connections a Realtime batch of 256 events or more is written over at once (1 or 2;
    /// two halves, committed in order).
    #[arg(long = "realtime-writers", env = "SWITCHYARD_REALTIME_WRITERS", default_value_t = crate::realtime::DEFAULT_WRITERS as u32, value_parser = clap::value_parser!(u32).range(1..=2))]
    pub writers: u32,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            database_url: None,
            queue: 10_000,
            backlog: 100_000,
            replay_rate: 5_000,
            retention_days: 7,
            largest_batch: crate::realtime::DEFAULT_LARGEST_BATCH as u32,
            writers: crate::realtime::DEFAULT_WRITERS as u32,
        }
    }
}

/// Settings of the NATS JetStream engine (`crate::hub::jetstream`). Unset URL: the in-process
/// hub, one instance. Set: every instance on the same stream shares events, positions, the
/// Realtime work queue and de-duplication (README "Scale-out").
#[derive(Debug, Clone, Args)]
pub struct NatsConfig {
    /// NATS server with JetStream (e.g. nats://127.0.0.1:4222). Unset: the in-process hub.
    #[arg(long = "nats-url", env = "SWITCHYARD_NATS_URL", hide_env_values = true)]
    pub url: Option<String>,

    /// The JetStream stream every instance shares (created with the settings below if missing).
    #[arg(
        long = "nats-stream",
        env = "SWITCHYARD_NATS_STREAM",
        default_value = "switchyard"
    )]
    pub stream: String,

    /// Seconds the stream keeps an event (how far back any instance can resume a client).
    #[arg(long = "nats-max-age-s", env = "SWITCHYARD_NATS_MAX_AGE_S", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_age_s: u64,

    /// Bytes the stream keeps before dropping its oldest events.
    #[arg(long = "nats-max-bytes", env = "SWITCHYARD_NATS_MAX_BYTES", default_value_t = 1 << 30, value_parser = clap::value_parser!(i64).range(1..))]
    pub max_bytes: i64,

    /// Seconds in which a repeated event id is one event across every instance (JetStream's
    /// duplicate window; `Nats-Msg-Id`).
    #[arg(long = "nats-duplicate-window-s", env = "SWITCHYARD_NATS_DUPLICATE_WINDOW_S", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub duplicate_window_s: u64,

    /// Most events one resume reads back from the stream when the local ring lacks them.
    #[arg(long = "nats-max-replay", env = "SWITCHYARD_NATS_MAX_REPLAY", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_replay: u64,

    /// Seconds the shared Realtime work queue waits for an instance's ack before another
    /// instance gets the event.
    #[arg(long = "nats-ack-wait-s", env = "SWITCHYARD_NATS_ACK_WAIT_S", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub ack_wait_s: u64,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: None,
            stream: "switchyard".into(),
            max_age_s: 86_400,
            max_bytes: 1 << 30,
            duplicate_window_s: 300,
            max_replay: 100_000,
            ack_wait_s: 30,
        }
    }
}

impl NatsConfig {
    /// The engine's settings, when an URL is set.
    pub fn settings(&self) -> Option<crate::hub::jetstream::StreamSettings> {
        Some(crate::hub::jetstream::StreamSettings {
            url: self.url.clone()?,
            stream: self.stream.clone(),
            max_age: Duration::from_secs(self.max_age_s),
            max_bytes: self.max_bytes,
            duplicate_window: Duration::from_secs(self.duplicate_window_s),
            max_replay: self.max_replay,
            ack_wait: Duration::from_secs(self.ack_wait_s),
        })
    }
}

/// Settings of the consistency validator (`crate::validator`); whether it runs is the
/// `validation.enabled` flag (or the legacy `MONITORING_ENABLE_VALIDATION` pin).
#[derive(Debug, Clone, Args)]
pub struct ValidationConfig {
    /// Seconds in the validator's sliding window, and in each stored report.
    #[arg(long = "validation-window-s", env = "SWITCHYARD_VALIDATION_WINDOW_S", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub window_s: u64,
    /// Seconds after ingest within which an event is in order; later is `late`, and a path
    /// that has not shown the event by then has lost it.
    #[arg(long = "validation-order-window-s", env = "SWITCHYARD_VALIDATION_ORDER_WINDOW_S", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub order_window_s: u64,
    /// Events the validator tracks at once at most; beyond that they are counted unchecked.
    #[arg(long = "validation-capacity", env = "SWITCHYARD_VALIDATION_CAPACITY", default_value_t = 200_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub capacity: u32,
    /// Days stored validation reports are kept (0 keeps everything).
    #[arg(
        long = "validation-report-retention-days",
        env = "SWITCHYARD_VALIDATION_REPORT_RETENTION_DAYS",
        default_value_t = 30
    )]
    pub report_retention_days: u32,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            window_s: 300,
            order_window_s: 30,
            capacity: 200_000,
            report_retention_days: 30,
        }
    }
}

/// The legacy system's boot-time variables (REFERENCE.md section 1). Each one set pins the
/// flag it maps to; the README has the mapping.
#[derive(Debug, Clone, Default, Args)]
pub struct LegacyEnv {
    /// Legacy: route through the adapter layer (false pins `broadcast.strategy` to websocket).
    #[arg(long, env = "MONITORING_USE_ADAPTER", value_parser = parse_bool)]
    pub use_adapter: Option<bool>,
    /// Legacy: websocket | realtime | dual, pins `broadcast.strategy`.
    #[arg(long, env = "MONITORING_ADAPTER_TYPE")]
    pub adapter_type: Option<String>,
    /// Legacy: true pins `broadcast.strategy` to dual.
    #[arg(long, env = "MONITORING_DUAL_MODE", value_parser = parse_bool)]
    pub dual_mode: Option<bool>,
    /// Legacy: true pins `broadcast.strategy` to realtime.
    #[arg(long, env = "MONITORING_USE_REALTIME", value_parser = parse_bool)]
    pub use_realtime: Option<bool>,
    /// Legacy: pins `validation.enabled`.
    #[arg(long, env = "MONITORING_ENABLE_VALIDATION", value_parser = parse_bool)]
    pub enable_validation: Option<bool>,
    /// Legacy: strict validation (reported by /health/flags).
    #[arg(long, env = "MONITORING_VALIDATION_STRICT", value_parser = parse_bool)]
    pub validation_strict: Option<bool>,
    /// Legacy: metrics flush interval in seconds (default 300).
    #[arg(long, env = "MONITORING_METRICS_FLUSH_INTERVAL")]
    pub metrics_flush_interval: Option<String>,
    /// Legacy: persist metrics.
    #[arg(long, env = "MONITORING_METRICS_PERSISTENCE", value_parser = parse_bool)]
    pub metrics_persistence: Option<bool>,
    /// Legacy: Realtime batch size (default 100).
    #[arg(long, env = "MONITORING_BATCH_SIZE")]
    pub batch_size: Option<u32>,
    /// Legacy: timeout of a Realtime write in ms (default 5000).
    #[arg(long, env = "MONITORING_TIMEOUT_MS")]
    pub timeout_ms: Option<u64>,
    /// Legacy: pins `broadcast.category.critical`'s percentage.
    #[arg(long, env = "DUAL_WRITE_CRITICAL_PERCENTAGE")]
    pub dual_write_critical_percentage: Option<f64>,
    /// Legacy: pins `broadcast.category.performance`'s percentage.
    #[arg(long, env = "DUAL_WRITE_PERFORMANCE_PERCENTAGE")]
    pub dual_write_performance_percentage: Option<f64>,
    /// Legacy: pins `broadcast.category.user_activity`'s percentage.
    #[arg(long, env = "DUAL_WRITE_USER_ACTIVITY_PERCENTAGE")]
    pub dual_write_user_activity_percentage: Option<f64>,
    /// Legacy: pins `broadcast.category.system`'s percentage.
    #[arg(long, env = "DUAL_WRITE_SYSTEM_PERCENTAGE")]
    pub dual_write_system_percentage: Option<f64>,
    /// Legacy: pins `broadcast.category.debug`'s percentage.
    #[arg(long, env = "DUAL_WRITE_DEBUG_PERCENTAGE")]
    pub dual_write_debug_percentage: Option<f64>,
    /// Legacy: websocket_only | realtime_only, pins `broadcast.strategy` (wins over the other legacy names).
    #[arg(long, env = "DUAL_WRITE_GLOBAL_OVERRIDE")]
    pub global_override: Option<String>,
    /// Legacy: false pins `realtime.breaker.mode` to disabled.
    #[arg(long, env = "CIRCUIT_BREAKER_ENABLED", value_parser = parse_bool)]
    pub circuit_breaker_enabled: Option<bool>,
}

/// The `SWITCHYARD_FLAG_*` variables of an environment.
pub fn flag_pins_from_env(
    vars: impl Iterator<Item = (String, String)>,
) -> std::collections::BTreeMap<String, String> {
    vars.filter(|(name, _)| name.starts_with("SWITCHYARD_FLAG_"))
        .collect()
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

impl Config {
    /// The settings with their defaults, for tests and embedding: listen on a free loopback port.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            database_url: database_url.into(),
            history_size: 10_000,
            subscriber_queue: 4096,
            idempotency_window_s: 300,
            admin_key: None,
            public_read: false,
            metrics_auth: false,
            request_timeout_ms: 30_000,
            max_concurrent_requests: 1024,
            ws_ping_interval_s: 25,
            header_read_timeout_ms: 10_000,
            max_connections: 10_000,
            max_streams_per_key: 100,
            send_timeout_ms: 10_000,
            socket_send_buffer_bytes: 128 * 1024,
            max_filter_values: 100,
            allowed_origins: None,
            shutdown_grace_s: 10,
            store_timeout_ms: 3_000,
            shutdown_deadline_s: 30,
            spool_dir: std::env::temp_dir().join(format!(
                "switchyard-spool-{}",
                uuid::Uuid::new_v4().simple()
            )),
            log_format: LogFormat::Text,
            log: "info".into(),
            environment: "production".into(),
            flag_resync_s: 30,
            audit_retention_days: 0,
            rollout_tick_ms: 500,
            circuit_breaker_failure_threshold: None,
            circuit_breaker_recovery_time_s: None,
            breaker_stall_trip: true,
            realtime: RealtimeConfig::default(),
            validation: ValidationConfig::default(),
            nats: NatsConfig::default(),
            limits: Limits::default(),
            legacy: LegacyEnv::default(),
            flag_env: Default::default(),
        }
    }

    /// The control store's deadline per request (at least 1 ms).
    pub fn store_timeout(&self) -> Duration {
        Duration::from_millis(self.store_timeout_ms.max(1))
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn idempotency_window(&self) -> Duration {
        Duration::from_secs(self.idempotency_window_s)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms.max(1))
    }

    pub fn send_timeout(&self) -> Duration {
        Duration::from_millis(self.send_timeout_ms.max(1))
    }

    pub fn ws_ping_interval(&self) -> Duration {
        Duration::from_secs(self.ws_ping_interval_s.max(1))
    }
}

/// Booleans the legacy way: true/1/yes/on and false/0/no/off, any case.
pub fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        other => Err(format!(
            "`{other}` is not a boolean (true/1/yes/on or false/0/no/off)"
        )),
    }
}

/// Database URLs are shown through this one function (kept here too for existing callers).
pub use crate::store::mask_url;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_booleans_parse() {
        for yes in ["true", "1", "YES", "on"] {
            assert_eq!(parse_bool(yes), Ok(true));
        }
        for no in ["false", "0", "no", "Off"] {
            assert_eq!(parse_bool(no), Ok(false));
        }
        assert!(parse_bool("maybe").is_err());
    }
}
