//! The operator's side of the drill, over REST only: the `dual` strategy, the five category
//! flags at 0%, one guarded rollout plan per category (0 -> 10 -> 50 -> 100%, the Realtime
//! breaker as guardrail, one stage back on a breach), waiting on the plans, and resuming them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::rest::Rest;

const CATEGORIES: [&str; 5] = [
    "critical",
    "performance",
    "user_activity",
    "system",
    "debug",
];

/// One plan as last read.
#[derive(Debug, Clone, Serialize)]
pub struct PlanState {
    pub id: String,
    pub flag: String,
    pub status: String,
    pub percentage: u64,
}

#[derive(Clone)]
pub struct Plans {
    rest: Rest,
    ids: Arc<Mutex<Vec<String>>>,
}

impl Plans {
    pub fn new(base: &str, key: &str) -> Self {
        Self {
            rest: Rest::new(base, Some(key)),
            ids: Arc::default(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        self.rest.call(method, path, body).await
    }

    /// `dual`, and every category flag at 0% (on: the plans move the share from there).
    pub async fn prepare(&self) -> anyhow::Result<()> {
        let put = reqwest::Method::PUT;
        self.call(
            put.clone(),
            "/v1/flags/broadcast.strategy/environments/production/rollout",
            Some(json!({"percentage": 100, "variant": "dual"})),
        )
        .await?;
        for category in CATEGORIES {
            let flag = format!("/v1/flags/broadcast.category.{category}/environments/production");
            self.call(
                put.clone(),
                &format!("{flag}/rollout"),
                Some(json!({"percentage": 0})),
            )
            .await?;
        }
        Ok(())
    }

    /// One plan per category flag. The 50% stage holds `fault_hold_s`, long enough for the
    /// drill's fault to strike and the breaker to open inside it.
    pub async fn create(&self, hold_s: u64, fault_hold_s: u64) -> anyhow::Result<()> {
        let hold = format!("{hold_s}s");
        let fault_hold = format!("{fault_hold_s}s");
        for category in CATEGORIES {
            let plan = json!({
                "flag": format!("broadcast.category.{category}"), "environment": "production",
                "stages": [{"percentage": 0, "hold": hold}, {"percentage": 10, "hold": hold},
                           {"percentage": 50, "hold": fault_hold}, {"percentage": 100}],
                "guardrails": {"breaker_closed": [switchyard::breaker::REALTIME]},
                "on_breach": "rollback",
                "reason": "switchyard drill: dual-write every category to Realtime"});
            let created = self
                .call(reqwest::Method::POST, "/v1/rollouts", Some(plan))
                .await?;
            let id = created["id"].as_str().context("a plan id")?.to_string();
            self.ids.lock().await.push(id);
        }
        Ok(())
    }

    /// Every plan as it stands now.
    pub async fn snapshot(&self) -> anyhow::Result<Vec<PlanState>> {
        let ids = self.ids.lock().await.clone();
        let mut states = Vec::with_capacity(ids.len());
        for id in ids {
            let plan = self
                .call(reqwest::Method::GET, &format!("/v1/rollouts/{id}"), None)
                .await?;
            states.push(PlanState {
                id,
                flag: plan["flag"].as_str().unwrap_or_default().to_string(),
                status: plan["status"].as_str().unwrap_or_default().to_string(),
                percentage: plan["percentage"].as_u64().unwrap_or_default(),
            });
        }
        Ok(states)
    }

    /// Waits until `done` holds for every plan, reading them every 100 ms.
    pub async fn wait_all(
        &self,
        what: &str,
        limit: Duration,
        done: impl Fn(&PlanState) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let states = self.snapshot().await?;
            if states.iter().all(&done) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the plans were not all {what} within {limit:?}: {states:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `POST /v1/rollouts/{id}/resume` for every plan, as an operator would once the cause of
    /// the rollback is fixed.
    pub async fn resume_all(&self) -> anyhow::Result<()> {
        for id in self.ids.lock().await.clone() {
            self.call(
                reqwest::Method::POST,
                &format!("/v1/rollouts/{id}/resume"),
                None,
            )
            .await?;
        }
        Ok(())
    }
}
