//! The hub's memory bounds: the history ring by events and by bytes, and the legacy `/ws`
//! protocol's aggregates and answers. Set once at start from `crate::config::Limits`.

/// What the hub keeps in memory, set once at start (`SWITCHYARD_HISTORY_*`, `SWITCHYARD_LEGACY_*`).
#[derive(Debug, Clone, Copy)]
pub struct HubLimits {
    /// Events kept in the history ring.
    pub history_events: usize,
    /// Encoded bytes kept in the history ring: the oldest events leave first when a new one
    /// would pass it, so a stream of large events shortens the resume window instead of
    /// growing memory.
    pub history_bytes: usize,
    /// Distinct `connection_type`s the legacy stats keep; the rest add up under `other`.
    pub legacy_connection_types: usize,
    /// The most events one legacy `/ws` command answer (`export`, `get_recent_events`,
    /// `get_historical_data`) carries, newest kept.
    pub legacy_answer_events: usize,
    /// The most encoded bytes of events one legacy command answer carries.
    pub legacy_answer_bytes: usize,
}

impl Default for HubLimits {
    fn default() -> Self {
        Self {
            history_events: 10_000,
            history_bytes: 64 * 1024 * 1024,
            legacy_connection_types: 64,
            legacy_answer_events: 1_000,
            legacy_answer_bytes: 4 * 1024 * 1024,
        }
    }
}
