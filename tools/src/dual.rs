//! `fanout --dual`: every bench event on both delivery paths, the WebSocket hub and the
//! Realtime table, and the proof that none was lost on the Realtime side.
//!
//! Dual mode is set through the admin API as an operator would: `broadcast.strategy` serves
//! `dual`, and the flag of the category the bench's events fall into is on at 100%, so each
//! event is routed to Realtime as well (the hub gets every event whatever the strategy).
//! Each 202 says per event whether it was routed there (`"realtime": true`); after the run the
//! bench waits for the path to settle and counts the run's rows in the table by their
//! `source`, unique per run. The primary key on `id` makes a second row of one event
//! impossible, so rows = acknowledged means every event landed exactly once.

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::publisher::EVENT_TYPE;
use super::rest::Rest;

/// How long the router may take to swap to the strategy just written.
const STRATEGY_WAIT: Duration = Duration::from_secs(15);
/// How long the Realtime path may take, after the last publish, to commit what it holds.
const SETTLE_MAX: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(250);

/// The category of the bench's events, by the server's own classification.
fn bench_category() -> &'static str {
    switchyard::event::classify(EVENT_TYPE, &serde_json::Map::new()).as_str()
}

/// Puts the bench's events on both paths, unless the server already does (a pinned strategy
/// refuses REST writes with 409, so a server started with the pins is left as it is).
pub async fn enable(rest: &Rest) -> anyhow::Result<()> {
    let category = bench_category();
    if routes_everything(rest, category).await? {
        return Ok(());
    }
    let put = reqwest::Method::PUT;
    let flag = format!("/v1/flags/broadcast.category.{category}/environments/production");
    rest.call(
        put.clone(),
        "/v1/flags/broadcast.strategy/environments/production/rollout",
        Some(json!({"percentage": 100, "variant": "dual"})),
    )
    .await
    .context("--dual needs an admin --key")?;
    rest.call(
        put,
        &format!("{flag}/rollout"),
        Some(json!({"percentage": 100})),
    )
    .await?;
    rest.call(reqwest::Method::POST, &format!("{flag}/on"), None)
        .await?;
    let deadline = Instant::now() + STRATEGY_WAIT;
    while !routes_everything(rest, category).await? {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the server did not switch to dual mode with `{category}` at 100% within {STRATEGY_WAIT:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

async fn routes_everything(rest: &Rest, category: &str) -> anyhow::Result<bool> {
    let strategy = rest
        .call(reqwest::Method::GET, "/v1/strategy", None)
        .await?;
    let route = strategy["categories"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|route| route["category"] == category);
    Ok(match strategy["strategy"].as_str() {
        Some("realtime") => true,
        Some("dual") => route.is_some_and(|r| r["enabled"] == true && r["percentage"] == 100.0),
        _ => false,
    })
}

/// The Realtime path's counters (`GET /v1/realtime`) that the report compares.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counters {
    pub submitted: u64,
    pub committed: u64,
    pub dropped: u64,
    pub quarantined: u64,
    pub dead_lettered: u64,
    /// Events still queued, in the backlog or on their way to the dead letter.
    pub pending: u64,
}

impl Counters {
    pub async fn read(rest: &Rest) -> anyhow::Result<Self> {
        let status = rest
            .call(reqwest::Method::GET, "/v1/realtime", None)
            .await?;
        Ok(Self::from_status(&status))
    }

    fn from_status(status: &Value) -> Self {
        let n = |field: &str| status[field].as_u64().unwrap_or(0);
        Self {
            submitted: n("submitted"),
            committed: n("written") + n("replayed") + n("dead_letter_replayed"),
            dropped: n("dropped"),
            quarantined: n("quarantined"),
            dead_lettered: n("dead_lettered"),
            pending: n("queue_depth") + n("backlog_depth") + n("spill_depth"),
        }
    }

    /// The counts since `before`; `pending` as it is now.
    fn since(&self, before: &Self) -> Self {
        Self {
            submitted: self.submitted.saturating_sub(before.submitted),
            committed: self.committed.saturating_sub(before.committed),
            dropped: self.dropped.saturating_sub(before.dropped),
            quarantined: self.quarantined.saturating_sub(before.quarantined),
            dead_lettered: self.dead_lettered.saturating_sub(before.dead_lettered),
            pending: self.pending,
        }
    }
}

/// The largest backlog (`pending`) seen while the run lasted, read every second.
pub fn watch_pending(rest: Rest, stop: CancellationToken) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut most = 0;
        while !stop.is_cancelled() {
            if let Ok(now) = Counters::read(&rest).await {
                most = most.max(now.pending);
            }
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        most
    })
}

#[derive(Debug, Serialize)]
pub struct RealtimeReport {
    /// The run's `source`, on every event and so on every row.
    pub source: String,
    /// Events acknowledged with `"realtime": true`, warm-up included.
    pub expected: u64,
    /// The run's rows in the Realtime table (with `--realtime-database-url`).
    pub rows: Option<u64>,
    /// `expected - rows`, when the rows were counted.
    pub lost: Option<u64>,
    /// The path's counters over the run; `pending` as the run ended.
    pub counters: Counters,
    pub pending_max: u64,
    /// Seconds the path took after the last publish to commit everything it held.
    pub settle_s: f64,
}

/// Waits until the path holds nothing and has committed (or set aside) what the run routed
/// to it, then counts the run's rows.
pub async fn settle_and_count(
    rest: &Rest,
    before: &Counters,
    expected: u64,
    pending_max: u64,
    source: &str,
    database_url: Option<&str>,
) -> anyhow::Result<RealtimeReport> {
    let started = Instant::now();
    let counters = loop {
        let counters = Counters::read(rest).await?.since(before);
        let accounted = counters.committed + counters.dropped + counters.quarantined;
        let settled = counters.pending == 0 && accounted >= expected;
        if settled || started.elapsed() >= SETTLE_MAX {
            break counters;
        }
        tokio::time::sleep(POLL).await;
    };
    let settle_s = started.elapsed().as_secs_f64();
    let rows = match database_url {
        Some(url) => Some(count_rows(url, source).await?),
        None => None,
    };
    Ok(RealtimeReport {
        source: source.to_string(),
        expected,
        rows,
        lost: rows.map(|rows| expected.saturating_sub(rows)),
        counters,
        pending_max: pending_max.max(counters.pending),
        settle_s,
    })
}

async fn count_rows(database_url: &str, source: &str) -> anyhow::Result<u64> {
    use sqlx::Connection;
    let mut db = sqlx::PgConnection::connect(database_url)
        .await
        .context("--realtime-database-url")?;
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM monitoring.monitoring_events WHERE source = $1")
            .bind(source)
            .fetch_one(&mut db)
            .await?;
    Ok(rows as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_is_measured_from_the_counters_before_it() {
        let before = Counters::from_status(&json!({"submitted": 10, "written": 7,
            "replayed": 3, "dropped": 1, "queue_depth": 4}));
        assert_eq!((before.committed, before.pending), (10, 4));
        let after = Counters::from_status(&json!({"submitted": 1_010, "written": 900,
            "replayed": 100, "dead_letter_replayed": 5, "dropped": 1, "quarantined": 2,
            "backlog_depth": 3, "spill_depth": 1}));
        let run = after.since(&before);
        assert_eq!(
            (
                run.submitted,
                run.committed,
                run.dropped,
                run.quarantined,
                run.pending
            ),
            (1_000, 995, 0, 2, 4)
        );
    }

    #[test]
    fn the_bench_events_fall_into_a_category_with_a_route_flag() {
        assert_eq!(bench_category(), "system");
    }
}
