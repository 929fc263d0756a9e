//! The breakers of this instance, by name, for the API and the background tasks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::Breaker;

#[derive(Clone, Default)]
pub struct Registry {
    breakers: Arc<RwLock<BTreeMap<String, Breaker>>>,
    unrecorded: Arc<AtomicU64>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a breaker under its name (replacing one of the same name). Register breakers before
    /// the background tasks start: they and the streams follow the breakers present then.
    pub fn register(&self, breaker: Breaker) {
        self.write().insert(breaker.name().to_string(), breaker);
    }

    pub fn get(&self, name: &str) -> Option<Breaker> {
        self.read().get(name).cloned()
    }

    /// Every breaker, by name.
    pub fn all(&self) -> Vec<Breaker> {
        self.read().values().cloned().collect()
    }

    /// Transitions that could not be written to the control store (down, slow, or fallen
    /// behind); each is still logged and announced.
    pub fn unrecorded_transitions(&self) -> u64 {
        self.unrecorded.load(Ordering::Relaxed)
    }

    pub(crate) fn count_unrecorded(&self, n: u64) {
        self.unrecorded.fetch_add(n, Ordering::Relaxed);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Breaker>> {
        self.breakers.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Breaker>> {
        self.breakers.write().unwrap_or_else(|p| p.into_inner())
    }
}
