//! The breaker's states and modes, the transition record, and the packed state word that the
//! call path reads with one atomic load.
//!
//! The word holds the state, the number of half-open trial calls in flight and a generation
//! that grows on every transition. A call remembers the generation it was admitted under, so
//! an outcome that arrives after the breaker moved on (a slow call from before a trip, a trial
//! from an earlier half-open period) is counted but never drives a decision it was not part of.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where the breaker is. `Closed`, `Open` and `HalfOpen` follow the failure policy; the others
/// are set by an operator (or the `realtime.breaker.mode` flag) and stay until changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls pass; outcomes feed the failure policy.
    Closed,
    /// Calls are rejected until the backoff elapses and the timer moves it to half-open.
    Open,
    /// A limited number of trial calls pass; enough successes close it, a failure reopens it.
    HalfOpen,
    /// Forced by an operator: every call is rejected.
    ForcedOpen,
    /// Forced by an operator: every call passes, outcomes are recorded, nothing trips.
    ForcedClosed,
    /// Every call passes and nothing is recorded.
    Disabled,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::ForcedOpen => "forced_open",
            BreakerState::ForcedClosed => "forced_closed",
            BreakerState::Disabled => "disabled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == raw)
    }

    pub const ALL: [BreakerState; 6] = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
        BreakerState::ForcedOpen,
        BreakerState::ForcedClosed,
        BreakerState::Disabled,
    ];

    /// The mode that leads to this state: the three policy states belong to `Auto`.
    pub fn mode(self) -> BreakerMode {
        match self {
            BreakerState::Closed | BreakerState::Open | BreakerState::HalfOpen => BreakerMode::Auto,
            BreakerState::ForcedOpen => BreakerMode::ForceOpen,
            BreakerState::ForcedClosed => BreakerMode::ForceClosed,
            BreakerState::Disabled => BreakerMode::Disabled,
        }
    }

    fn code(self) -> u64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
            BreakerState::ForcedOpen => 3,
            BreakerState::ForcedClosed => 4,
            BreakerState::Disabled => 5,
        }
    }

    fn from_code(code: u64) -> Self {
        match code {
            0 => BreakerState::Closed,
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            3 => BreakerState::ForcedOpen,
            4 => BreakerState::ForcedClosed,
            _ => BreakerState::Disabled,
        }
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who decides the state: the failure policy (`Auto`) or a standing operator decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerMode {
    Auto,
    ForceOpen,
    ForceClosed,
    Disabled,
}

impl BreakerMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerMode::Auto => "auto",
            BreakerMode::ForceOpen => "force_open",
            BreakerMode::ForceClosed => "force_closed",
            BreakerMode::Disabled => "disabled",
        }
    }

    /// The value of the `realtime.breaker.mode` flag, or `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        [
            BreakerMode::Auto,
            BreakerMode::ForceOpen,
            BreakerMode::ForceClosed,
            BreakerMode::Disabled,
        ]
        .into_iter()
        .find(|mode| mode.as_str() == raw)
    }
}

impl std::fmt::Display for BreakerMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change of state, as subscribers, the history table and system frames see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Transition {
    pub breaker: String,
    pub from: BreakerState,
    pub to: BreakerState,
    pub at: DateTime<Utc>,
    /// Why, in words: the policy's verdict, the probe, or the operator's action and reason.
    pub reason: String,
    /// The operator (API key name) for forced changes and resets; `None` for the policy's own.
    pub actor: Option<String>,
}

/// The packed state word: bits 0-7 the state, 8-31 trial calls in flight, 32-63 the generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(pub(crate) u64);

/// One trial call in flight, as an increment of the word.
pub(crate) const ONE_TRIAL: u64 = 1 << 8;
const TRIALS_MASK: u64 = 0x00ff_ffff;

impl Word {
    pub(crate) fn new(state: BreakerState, trials: u32, generation: u32) -> Self {
        Word(state.code() | (u64::from(trials) & TRIALS_MASK) << 8 | u64::from(generation) << 32)
    }

    pub(crate) fn state(self) -> BreakerState {
        BreakerState::from_code(self.0 & 0xff)
    }

    pub(crate) fn trials(self) -> u32 {
        ((self.0 >> 8) & TRIALS_MASK) as u32
    }

    pub(crate) fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_round_trips_every_state_with_trials_and_generation() {
        for state in BreakerState::ALL {
            let word = Word::new(state, 3, u32::MAX);
            assert_eq!(
                (word.state(), word.trials(), word.generation()),
                (state, 3, u32::MAX)
            );
            assert_eq!(Word(word.0 + ONE_TRIAL).trials(), 4);
            assert_eq!(BreakerState::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn states_and_modes_serialize_in_snake_case() {
        assert_eq!(
            serde_json::to_value(BreakerState::HalfOpen).unwrap(),
            "half_open"
        );
        assert_eq!(
            serde_json::to_value(BreakerMode::ForceClosed).unwrap(),
            "force_closed"
        );
        assert_eq!(
            BreakerMode::parse("force_open"),
            Some(BreakerMode::ForceOpen)
        );
        assert_eq!(BreakerMode::parse("open"), None);
    }
}
