//! The guarded rollouts' figures: whether this instance drives the plans, and each running
//! plan's current percentage. Set by the rollout driver on every tick (only the leading
//! instance steps plans, so only it reports them; the others show `leader 0`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::rollout::model::Plan;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PlanLabels {
    flag: String,
    environment: String,
}

pub struct RolloutMetrics {
    leader: Gauge,
    running: Gauge,
    percentage: Family<PlanLabels, Gauge>,
}

impl RolloutMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let leader = Gauge::default();
        registry.register(
            "switchyard_rollout_leader",
            "1 while this instance holds the lock that drives the rollout plans, else 0",
            leader.clone(),
        );
        let running = Gauge::default();
        registry.register(
            "switchyard_rollouts_running",
            "Rollout plans running now (as the leading instance last read them)",
            running.clone(),
        );
        let percentage = Family::<PlanLabels, Gauge>::default();
        registry.register(
            "switchyard_rollout_percentage",
            "The current percentage of each running rollout plan, by flag and environment",
            super::listed::Listed(percentage.clone()),
        );
        Self {
            leader,
            running,
            percentage,
        }
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
        if !leading {
            self.running.set(0);
            self.percentage.clear();
        }
    }

    /// The running plans as read at the start of a tick.
    pub fn set_running(&self, plans: &[Plan]) {
        self.running.set(plans.len() as i64);
        self.percentage.clear();
        for plan in plans {
            let labels = PlanLabels {
                flag: plan.flag.clone(),
                environment: plan.environment.clone(),
            };
            self.percentage
                .get_or_create(&labels)
                .set(i64::from(plan.percentage));
        }
    }
}
