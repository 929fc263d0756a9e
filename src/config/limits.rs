//! The byte and size limits that keep hostile or careless producers from growing memory or
//! wedging a path: the largest event, the history ring's and the Realtime backlog's byte
//! budgets, and the bounds on what the legacy `/ws` protocol aggregates and answers.

use clap::Args;

use crate::hub::HubLimits;

/// Byte budgets and caps (flattened into [`super::Config`]).
#[derive(Debug, Clone, Args)]
pub struct Limits {
    /// Largest event accepted, in bytes of compact JSON; a larger one is refused with 413
    /// naming its index (the 1 MiB body limit still bounds a request).
    #[arg(long, env = "SWITCHYARD_MAX_EVENT_BYTES", default_value_t = 64 * 1024, value_parser = clap::value_parser!(u32).range(256..))]
    pub max_event_bytes: u32,

    /// Bytes the hub's history ring may hold (besides SWITCHYARD_HISTORY_SIZE events); the
    /// oldest events leave first, shortening the resume window.
    #[arg(long, env = "SWITCHYARD_HISTORY_BYTES", default_value_t = 64 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..))]
    pub history_bytes: u64,

    /// Bytes the Realtime backlog may hold in memory (besides SWITCHYARD_REALTIME_BACKLOG
    /// events); past it the backlog overflows exactly as when its count is reached.
    #[arg(long, env = "SWITCHYARD_REALTIME_BACKLOG_BYTES", default_value_t = 256 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..))]
    pub realtime_backlog_bytes: u64,

    /// Distinct `connection_type`s the legacy stats keep apart; later ones add up under `other`.
    #[arg(long, env = "SWITCHYARD_LEGACY_CONNECTION_TYPES", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub legacy_connection_types: u32,

    /// The most events one legacy `/ws` answer (`export`, `get_recent_events`,
    /// `get_historical_data`) carries; the newest are kept and the answer says `truncated`.
    #[arg(long, env = "SWITCHYARD_LEGACY_ANSWER_EVENTS", default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub legacy_answer_events: u32,

    /// The most bytes of events one legacy `/ws` answer carries.
    #[arg(long, env = "SWITCHYARD_LEGACY_ANSWER_BYTES", default_value_t = 4 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..))]
    pub legacy_answer_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_event_bytes: 64 * 1024,
            history_bytes: 64 * 1024 * 1024,
            realtime_backlog_bytes: 256 * 1024 * 1024,
            legacy_connection_types: 64,
            legacy_answer_events: 1_000,
            legacy_answer_bytes: 4 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// The hub's limits, with `history_events` (SWITCHYARD_HISTORY_SIZE).
    pub fn hub(&self, history_events: u32) -> HubLimits {
        HubLimits {
            history_events: history_events as usize,
            history_bytes: usize::try_from(self.history_bytes).unwrap_or(usize::MAX),
            legacy_connection_types: self.legacy_connection_types as usize,
            legacy_answer_events: self.legacy_answer_events as usize,
            legacy_answer_bytes: usize::try_from(self.legacy_answer_bytes).unwrap_or(usize::MAX),
        }
    }
}
