//! switchyard: a feature-flag and circuit-breaker control plane for live monitoring events.
//!
//! Data walks one way: `api` -> `ingest` -> `hub` (and, in later layers, the router and the
//! Realtime sink). See docs/architecture.md for the architecture and its invariants.

pub mod api;
pub mod app;
pub mod auth;
pub mod breaker;
pub mod cli;
pub mod client;
pub mod config;
pub mod event;
pub mod flags;
pub mod flagstore;
pub mod governance;
pub mod hub;
pub mod ingest;
pub mod metrics;
pub mod realtime;
pub mod rollout;
pub mod router;
pub mod runtime;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod validator;

pub use app::Application;
pub use config::Config;
