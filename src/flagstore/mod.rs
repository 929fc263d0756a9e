//! Flags held live from the control store, and changed through it. This module does I/O: it
//! loads the stored flags into the compiled snapshot the pure `flags` module evaluates, keeps
//! that snapshot current (Postgres `NOTIFY` through `store::listen`, and a periodic resync),
//! and writes every flag change in one audited transaction.
//!
//! - `live`: [`LiveFlags`], the snapshot in an `ArcSwap`, and the changes it announces;
//! - `writes`: [`write`](writes::write) and its parts, refusing with a [`WriteError`].

pub mod live;
pub mod writes;

pub use live::{FlagChange, LiveFlags, PinSources, record_from_store};
pub use writes::WriteError;
