//! The Realtime sink's own write, straight against a migrated database: a large batch goes
//! over two connections (two transactions, the front committed first) and must still land
//! each row exactly once, all or nothing, whatever it holds.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use switchyard::realtime::RealtimeSink;
use switchyard::store::dead_letter::RealtimeRows;
use uuid::Uuid;

use crate::support::{TestDatabase, WAIT};

mod copy;

/// `n` rows of distinct events; the one at `poison` (if any) has source `poison`.
fn rows(n: usize, poison: Option<usize>) -> RealtimeRows {
    let mut rows = RealtimeRows::with_capacity(n);
    for i in 0..n {
        let source = if Some(i) == poison {
            "poison"
        } else {
            "sink-test"
        };
        let body = json!({"event_type": "cache_metrics", "source": source, "data": {"i": i}});
        let event = switchyard::event::parse_event(&body, None, chrono::Utc::now()).unwrap();
        rows.push(&event, i as u64, "epoch-1");
    }
    rows
}

async fn target() -> (TestDatabase, PgPool, RealtimeSink) {
    let database = TestDatabase::migrated().await;
    let pool = PgPool::connect(&database.url()).await.unwrap();
    let sink = RealtimeSink::new(&database.url(), false, 2);
    (database, pool, sink)
}

async fn ids_in(pool: &PgPool) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT id FROM monitoring.monitoring_events ORDER BY sequence_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn write(sink: &RealtimeSink, rows: &RealtimeRows) -> Result<u64, sqlx::Error> {
    tokio::time::timeout(WAIT, sink.write(rows))
        .await
        .expect("a write never waits on itself")
}

#[tokio::test]
async fn a_batch_split_over_two_connections_lands_every_row_once() {
    let (_database, pool, sink) = target().await;
    let batch = rows(1_000, None);

    assert_eq!(write(&sink, &batch).await.unwrap(), 1_000);
    assert_eq!(
        write(&sink, &batch).await.unwrap(),
        0,
        "a replay adds nothing"
    );

    assert_eq!(ids_in(&pool).await, batch.ids);
}

#[tokio::test]
async fn a_row_refused_in_either_half_leaves_the_whole_batch_unwritten() {
    let (_database, pool, sink) = target().await;
    sqlx::query(
        "ALTER TABLE monitoring.monitoring_events
         ADD CONSTRAINT no_poison CHECK (source <> 'poison')",
    )
    .execute(&pool)
    .await
    .unwrap();

    for poison in [100, 900] {
        let error = write(&sink, &rows(1_000, Some(poison))).await.unwrap_err();
        let code = error.as_database_error().and_then(|e| e.code());
        assert_eq!(code.as_deref(), Some("23514"), "row {poison}: {error}");
        assert!(
            ids_in(&pool).await.is_empty(),
            "row {poison}: nothing lands"
        );
    }
}

#[tokio::test]
async fn a_batch_holding_an_event_twice_writes_it_once() {
    let (_database, pool, sink) = target().await;
    let mut batch = rows(1_000, None);
    // The last row repeats the first (a row spilled twice, then replayed): it spans the halves.
    batch.append(batch.slice(0..1));

    assert_eq!(write(&sink, &batch).await.unwrap(), 1_000);

    assert_eq!(ids_in(&pool).await, batch.ids[..1_000]);
}

#[tokio::test]
async fn a_flush_writes_open_batches_without_waiting_for_their_linger() {
    let (database, pool, _sink) = target().await;
    let control = switchyard::store::connect_and_migrate(&database.url())
        .await
        .unwrap();
    let hub = switchyard::hub::Hub::new(16, 16);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let breaker =
        switchyard::breaker::Breaker::start("realtime", Default::default(), shutdown.clone());
    let settings = switchyard::realtime::RealtimeSettings::new(database.url(), hub.epoch());
    let path = switchyard::realtime::RealtimePath::start(
        settings,
        control,
        &database.url(),
        breaker,
        shutdown.clone(),
    )
    .await;
    let mut committed = path.subscribe_committed();
    // A critical event: the low class, whose batch starts with a 2 s linger.
    let event = json!({"event_type": "health_check", "source": "sink-test"});
    hub.publish(switchyard::event::parse_event(&event, None, chrono::Utc::now()).unwrap());
    let published = hub.recent(1).pop().unwrap();
    let submitted = tokio::time::Instant::now();

    path.submit(published.clone());
    path.flush();

    let batch = tokio::time::timeout(WAIT, committed.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(batch.ids, vec![published.event.id]);
    assert!(
        batch.committed_at - submitted < Duration::from_secs(2),
        "committed before the linger expired"
    );
    assert_eq!(ids_in(&pool).await, vec![published.event.id]);
    shutdown.cancel();
    path.stopped().await;
}
