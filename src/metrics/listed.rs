//! Families listed in `/metrics` even before their first sample.
//!
//! prometheus-client leaves an empty family out of the exposition entirely. Operators and the
//! dashboards' test want every family's `# HELP` and `# TYPE` from the start (the validator's
//! stay empty until it runs), so every family is registered through [`Listed`].

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;

/// A metric that is never "empty", so its descriptor is always written.
#[derive(Debug)]
pub(super) struct Listed<M>(pub M);

impl<M: EncodeMetric> EncodeMetric for Listed<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }

    fn is_empty(&self) -> bool {
        false
    }
}
