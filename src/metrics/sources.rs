//! The `source` label of ingested events, bounded: producers choose their source names, so
//! the first [`MAX_SOURCES`] distinct names get their own series and every later one is
//! counted as [`OTHER_SOURCE`]. Without a bound, a producer sending random names would grow
//! the registry (and Prometheus) without limit.

use std::collections::HashSet;
use std::sync::RwLock;

/// Distinct source names given their own series.
pub const MAX_SOURCES: usize = 100;
/// The label of every source past the first [`MAX_SOURCES`].
pub const OTHER_SOURCE: &str = "other";

#[derive(Debug, Default)]
pub(super) struct SourceCap {
    known: RwLock<HashSet<String>>,
}

impl SourceCap {
    /// The label for `source`: itself while there is room (or it already has a series), else
    /// `other`. Known names cost a read lock; a new one, once, a write lock.
    pub fn label(&self, source: &str) -> String {
        {
            let known = self.known.read().unwrap_or_else(|p| p.into_inner());
            if known.contains(source) {
                return source.to_string();
            }
            if known.len() >= MAX_SOURCES {
                return OTHER_SOURCE.to_string();
            }
        }
        let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
        if known.len() < MAX_SOURCES || known.contains(source) {
            known.insert(source.to_string());
            source.to_string()
        } else {
            OTHER_SOURCE.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_hundred_sources_keep_their_names_and_later_ones_are_other() {
        let cap = SourceCap::default();
        for n in 0..MAX_SOURCES {
            assert_eq!(cap.label(&format!("s{n}")), format!("s{n}"));
        }
        assert_eq!(cap.label("one-too-many"), OTHER_SOURCE);
        assert_eq!(cap.label("s7"), "s7", "a known source keeps its series");
    }
}
