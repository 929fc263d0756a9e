//! Feature flags, the pure half: the definition model, validation, the Unleash-compatible
//! hash and tiered evaluation over an immutable compiled [`Snapshot`]. Nothing here does I/O:
//! the live snapshot and the transactional writes are `flagstore`'s, REST and OFREP `api`'s.
//!
//! Where each concept lives:
//! - `key` / `model`: [`FlagKey`], [`Flag`], [`ValueType`], [`FlagRecord`] (a flag plus the
//!   store's `version`), [`Pin`] (the environment-variable tier);
//! - `environment`: per-environment [`EnvironmentConfig`], [`Rule`], [`Constraint`],
//!   [`Operator`], [`Rollout`], [`VariantWeight`];
//! - `context` / `outcome`: what an evaluation takes ([`EvaluationContext`]) and returns
//!   ([`Evaluation`], [`Reason`], [`Tier`], [`ErrorCode`]);
//! - `validate`: [`validate`], every problem under a dotted field path;
//! - `document`: [`parse_flag`] / [`parse_body`], JSON bodies read with each bad field named
//!   ([`InvalidFields`]);
//! - `pins`: the environment-variable tier resolved from boot-time settings; `keys`: the
//!   flags switchyard itself reads;
//! - `hash`: murmur3 and the Unleash bucket; `semver`: version comparison;
//! - `compiled` / `constraint`: the precomputed form; `eval`: the tiers and [`Snapshot`].

mod compiled;
mod constraint;
mod context;
mod document;
mod environment;
mod eval;
mod gate;
pub mod hash;
mod key;
mod model;
mod outcome;
pub mod semver;
mod validate;

pub use compiled::CompiledFlag;
pub use context::EvaluationContext;
pub use document::{InvalidFields, parse_body, parse_flag};
pub use environment::{
    Constraint, EnvironmentConfig, Operator, Rollout, Rule, TOTAL_VARIANT_WEIGHT, VariantWeight,
};
pub use eval::Snapshot;
pub use gate::PercentageGate;
pub use key::{FlagKey, InvalidFlagKey, MAX_NAME_LEN, is_valid_name};
pub use model::{Flag, FlagDocument, FlagRecord, Pin, ValueType};
pub use outcome::{ErrorCode, Evaluation, Reason, Tier};
pub use validate::{is_valid_environment_name, validate, validate_pin};

pub mod keys;
pub mod pins;
