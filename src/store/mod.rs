//! The control store: every SQL statement switchyard runs lives under this module. Functions
//! take an executor, so the caller decides the transaction.

pub mod breakers;
pub mod dead_letter;
pub mod flags;
pub mod keys;
pub mod listen;
pub mod pool;
pub mod quarantine;
pub mod redact;
pub mod rollouts;
pub mod schedules;
pub mod validation;

pub use pool::{StartupError, connect_and_migrate};
pub use redact::mask_url;
