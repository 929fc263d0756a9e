//! The dual-path validator's figures: how often the WebSocket and Realtime paths agree, per
//! category, and what kinds of disagreement it found.
//!
//! The validator (`crate::validator`) records each resolved event, sets the sliding window's
//! consistency per category every tick, and raises or clears alerts. While validation is off
//! the families are listed in `/metrics` (`# HELP`/`# TYPE`) with no samples.

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
    alerting: Family<CategoryLabels, Gauge>,
    alerts: Family<CategoryLabels, Counter>,
}

impl ValidationMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let consistency = Family::<CategoryLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "switchyard_validation_consistency_ratio",
            "Share of the events resolved in the validator's sliding window that both paths delivered alike, 0 to 1, by category (absent while the window holds none)",
            super::listed::Listed(consistency.clone()),
        );
        let discrepancies = Family::<DiscrepancyLabels, Counter>::default();
        registry.register(
            "switchyard_validation_discrepancies",
            "Discrepancies the validator found, by category and kind (missing_in_realtime, missing_in_websocket, payload_mismatch, duplicate, out_of_order, late, quarantined)",
            super::listed::Listed(discrepancies.clone()),
        );
        let compared = Family::<CategoryLabels, Counter>::default();
        registry.register(
            "switchyard_validation_compared_events",
            "Events the validator resolved (compared across the two paths, or declared missing on one), by category",
            super::listed::Listed(compared.clone()),
        );
        let alerting = Family::<CategoryLabels, Gauge>::default();
        registry.register(
            "switchyard_validation_alerting",
            "1 while a category's mismatch rate is above its threshold (a validation_alert is firing), else 0",
            super::listed::Listed(alerting.clone()),
        );
        let alerts = Family::<CategoryLabels, Counter>::default();
        registry.register(
            "switchyard_validation_alerts",
            "Validation alerts raised (a category crossing its mismatch threshold), by category",
            super::listed::Listed(alerts.clone()),
        );
        Self {
            consistency,
            discrepancies,
            compared,
            alerting,
            alerts,
        }
    }

    /// One resolved event (`expected`: false for an extra sighting) and what was wrong with it.
    pub fn record(&self, category: Category, expected: bool, kinds: &[&'static str]) {
        let label = category.as_str();
        if expected {
            self.compared
                .get_or_create(&CategoryLabels { category: label })
                .inc();
        }
        for kind in kinds {
            self.discrepancies
                .get_or_create(&DiscrepancyLabels {
                    category: label,
                    kind,
                })
                .inc();
        }
    }

    /// The consistency of `category` over the sliding window (0 to 1), when it holds events.
    pub fn set_consistency(&self, category: Category, ratio: f64) {
        let labels = CategoryLabels {
            category: category.as_str(),
        };
        self.consistency
            .get_or_create(&labels)
            .set(ratio.clamp(0.0, 1.0));
    }

    /// Whether `category`'s alert is firing; a change to firing counts one alert.
    pub fn set_alerting(&self, category: Category, firing: bool) {
        let labels = CategoryLabels {
            category: category.as_str(),
        };
        self.alerting.get_or_create(&labels).set(i64::from(firing));
        if firing {
            self.alerts.get_or_create(&labels).inc();
        }
    }
}
