//! The dual-path validator's figures: how often the WebSocket and Realtime paths agree, per
//! category, and what kinds of disagreement it found.
//!
//! The validator (issue 5) calls [`ValidationMetrics::set_consistency`] after each comparison
//! window and [`ValidationMetrics::count_discrepancies`] for what it found. Until it runs the
//! families are listed in `/metrics` (`# HELP`/`# TYPE`) with no samples, so the Grafana
//! validation dashboard can be imported before the validator exists.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::event::Category;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CategoryLabels {
    category: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DiscrepancyLabels {
    category: &'static str,
    kind: &'static str,
}

pub struct ValidationMetrics {
    consistency: Family<CategoryLabels, Gauge<f64, AtomicU64>>,
    discrepancies: Family<DiscrepancyLabels, Counter>,
    compared: Family<CategoryLabels, Counter>,
}

impl ValidationMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let consistency = Family::<CategoryLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "switchyard_validation_consistency_ratio",
            "Share of compared events both paths delivered alike in the validator's last window, 0 to 1, by category (empty until the validator runs)",
            super::listed::Listed(consistency.clone()),
        );
        let discrepancies = Family::<DiscrepancyLabels, Counter>::default();
        registry.register(
            "switchyard_validation_discrepancies",
            "Discrepancies the validator found, by category and kind (missing_realtime, missing_websocket, mismatch, ...; empty until the validator runs)",
            super::listed::Listed(discrepancies.clone()),
        );
        let compared = Family::<CategoryLabels, Counter>::default();
        registry.register(
            "switchyard_validation_compared_events",
            "Events the validator compared across the two paths, by category (empty until the validator runs)",
            super::listed::Listed(compared.clone()),
        );
        Self {
            consistency,
            discrepancies,
            compared,
        }
    }

    /// The consistency of `category` over the last window (0 to 1), and how many events that
    /// window compared.
    pub fn set_consistency(&self, category: Category, ratio: f64, compared: u64) {
        let labels = CategoryLabels {
            category: category.as_str(),
        };
        self.consistency
            .get_or_create(&labels)
            .set(ratio.clamp(0.0, 1.0));
        self.compared.get_or_create(&labels).inc_by(compared);
    }

    /// `n` discrepancies of `kind` (a fixed word of the validator's, never client input).
    pub fn count_discrepancies(&self, category: Category, kind: &'static str, n: u64) {
        let labels = DiscrepancyLabels {
            category: category.as_str(),
            kind,
        };
        self.discrepancies.get_or_create(&labels).inc_by(n);
    }
}
