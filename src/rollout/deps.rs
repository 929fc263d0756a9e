//! What rollout plans and scheduled changes need, and nothing more: the control store, the
//! live flags they write, the hub they announce moves on, and the sources their guardrails
//! read. Built once when the application starts (`app`), shared by the HTTP handlers and
//! the driver.

use sqlx::PgPool;

use crate::breaker::Registry;
use crate::flagstore::LiveFlags;
use crate::hub::Hub;
use crate::realtime::RealtimePath;
use crate::validator::Validator;

#[derive(Clone)]
pub struct RolloutDeps {
    pub pool: PgPool,
    pub flags: LiveFlags,
    /// Where `rollout_changed` system frames go.
    pub hub: Hub,
    pub guardrails: GuardrailSources,
}

/// What guardrails read: breaker states, the Realtime path's write latency, and the
/// validator's dual-path consistency.
#[derive(Clone)]
pub struct GuardrailSources {
    pub breakers: Registry,
    pub realtime: RealtimePath,
    pub validator: Validator,
}
