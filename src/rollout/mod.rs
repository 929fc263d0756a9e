//! Guarded rollouts and scheduled flag changes.
//!
//! A rollout plan moves one flag's percentage in one environment through stages by itself,
//! holding each stage for its time while every guardrail stays healthy, and stepping back the
//! moment one breaks. Every step is an ordinary audited flag write (actor `rollout:<id>`, the
//! same `If-Match` rule as REST writes: the plan writes only over the version it last wrote,
//! and pauses when a human changed the flag underneath it), committed with the plan's new
//! state. Plans live in Postgres; one instance at a time (the holder of an advisory lock)
//! drives them. A scheduled change is one flag write at a set time, claimed and applied in
//! one transaction so it happens once.
//!
//! - `deps`: [`RolloutDeps`], exactly what the services below use; `error`: [`RolloutError`];
//! - `model`: the plan and the pure stepping rule;
//! - `parse`: request bodies and hold durations;
//! - `guardrails`: the readings (breakers, Realtime p99, consistency);
//! - `steps`: creating a plan and stepping it (advance, complete, breach, pause on a hand edit);
//! - `operations`: pause, resume, abort;
//! - `schedule`: scheduled changes, their parsing and applying;
//! - `driver`: the background task that moves running plans and applies due changes.

pub mod deps;
pub mod driver;
mod error;
pub mod guardrails;
pub mod model;
pub mod operations;
pub mod parse;
pub mod schedule;
pub mod steps;

pub use deps::{GuardrailSources, RolloutDeps};
pub use error::RolloutError;
pub use model::{Guardrails, OnBreach, Plan, Stage, Status};
