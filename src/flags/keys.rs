//! The flags switchyard itself reads, by key: one place to find which flag steers what, and
//! no literal key to mistype in the code that reads or seeds them.

use crate::event::Category;

/// Which path events take: `websocket`, `realtime` or `dual` (the router's global answer).
pub const BROADCAST_STRATEGY: &str = "broadcast.strategy";
/// Every routing flag starts with this: the strategy and the per-category routes.
pub const BROADCAST_PREFIX: &str = "broadcast.";
/// A category's route is this prefix plus the category name; see [`category_route`].
pub const CATEGORY_PREFIX: &str = "broadcast.category.";
/// Which transport each dashboard listens on (overridden while the Realtime breaker is open).
pub const DASHBOARD_TRANSPORT: &str = "dashboard.transport";
/// The Realtime breaker's mode: auto, force_open, force_closed or disabled.
pub const REALTIME_BREAKER_MODE: &str = "realtime.breaker.mode";
/// Whether the consistency validator compares the two paths.
pub const VALIDATION_ENABLED: &str = "validation.enabled";

/// The key of `category`'s route flag, `broadcast.category.<name>`.
pub fn category_route(category: Category) -> String {
    format!("{CATEGORY_PREFIX}{}", category.as_str())
}
