//! The sink's `COPY` path: rows stored exactly as the `INSERT` stores them, a replay of rows
//! that already committed absorbed (the `COPY`'s unique violation answered by the `INSERT ...
//! ON CONFLICT`, never a content refusal), a real refusal still refused, halves committed in
//! stream order, and a target that refuses `COPY` itself still written.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use sqlx::PgPool;
use switchyard::realtime::{RealtimeSink, StoredRow};
use switchyard::store::dead_letter::RealtimeRows;
use uuid::Uuid;

use super::{ids_in, rows, target, write};
use crate::support::{self, TestDatabase, WAIT};

/// The insert the sink ran before it had a `COPY` path, word for word.
const UNNEST_INSERT: &str = "INSERT INTO monitoring.monitoring_events
         (id, event_type, \"timestamp\", source, data, metadata, category, sequence_id, epoch)
     SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::text[],
                          $5::jsonb[], $6::jsonb[], $7::text[], $8::int8[], $9::text[])
     ON CONFLICT (id) DO NOTHING";

/// Rows whose values are hard to carry: sub-microsecond and pre-2000 timestamps, escapes,
/// tabs, backslashes and non-ASCII in text and jsonb, big and fractional numbers.
fn awkward_rows() -> RealtimeRows {
    let at = |secs: i64, nanos: u32| -> DateTime<Utc> { Utc.timestamp_opt(secs, nanos).unwrap() };
    let timestamps = [
        at(1_764_000_000, 123_456_789),
        at(1_764_000_000, 999_999_999),
        at(-1_000_000_001, 500_500),
        at(946_684_799, 999_999_500),
        at(0, 1),
    ];
    let mut rows = RealtimeRows::with_capacity(timestamps.len());
    for (i, timestamp) in timestamps.into_iter().enumerate() {
        rows.ids.push(Uuid::new_v4());
        rows.event_types
            .push(format!("type\t{i}\\n\u{e9}{}", "x".repeat(40)));
        rows.timestamps.push(timestamp);
        rows.sources.push(format!("src \"{i}\"\n\u{1F600}"));
        rows.data.push(json!({
            "tab": "a\tb", "nl": "a\nb", "bs": "a\\b", "quote": "\"", "uni": "\u{e9}\u{1F600}",
            "big": 12345678901234567890u64, "neg": -1.5e-7, "float": 0.1, "nested": {"a": [1, null, true]},
        }));
        rows.metadata.push(if i % 2 == 0 {
            json!({})
        } else {
            json!({"k": [i]})
        });
        rows.categories
            .push(["performance", "debug"][i % 2].to_string());
        rows.sequence_ids.push([0, -1, i64::MAX, i64::MIN, 42][i]);
        rows.epochs.push(format!("epoch\t{i}"));
    }
    rows
}

async fn stored(sink: &RealtimeSink, ids: &[Uuid]) -> Vec<StoredRow> {
    let mut found = sink.read_rows(ids).await.unwrap();
    found.sort_by_key(|row| ids.iter().position(|id| *id == row.id));
    found
}

async fn epochs_of(pool: &PgPool, ids: &[Uuid]) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT epoch FROM monitoring.monitoring_events WHERE id = ANY($1) ORDER BY sequence_id",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_copied_row_is_stored_exactly_as_the_insert_stores_it() {
    let (_database, pool, sink) = target().await;
    let copied = awkward_rows();
    let mut inserted = copied.clone();
    inserted.ids = copied.ids.iter().map(|_| Uuid::new_v4()).collect();

    assert_eq!(write(&sink, &copied).await.unwrap(), 5);
    inserted
        .bind_columns(sqlx::query(UNNEST_INSERT))
        .execute(&pool)
        .await
        .unwrap();

    let (by_copy, by_insert) = (
        stored(&sink, &copied.ids).await,
        stored(&sink, &inserted.ids).await,
    );
    assert_eq!(by_copy.len(), 5);
    for (a, b) in by_copy.iter().zip(&by_insert) {
        let a = format!(
            "{:?}",
            StoredRow {
                id: b.id,
                ..a.clone()
            }
        );
        assert_eq!(a, format!("{b:?}"));
    }
    assert_eq!(
        epochs_of(&pool, &copied.ids).await,
        epochs_of(&pool, &inserted.ids).await
    );
    // And what was sent, as sqlx sends it: timestamps truncated to the microsecond.
    assert_eq!(by_copy[0].timestamp.timestamp_subsec_nanos(), 123_456_000);
    assert_eq!(by_copy[0].data, copied.data[0]);
}

#[tokio::test]
async fn a_replayed_batch_that_committed_adds_no_row_and_is_no_refusal() {
    let (_database, pool, sink) = target().await;
    let all = rows(1_500, None);
    // Small (one connection) and large (two): both paths meet the rows already there.
    let (small, large) = (all.slice(0..100), all.slice(0..1_000));

    assert_eq!(write(&sink, &small).await.unwrap(), 100);
    assert_eq!(
        write(&sink, &small).await.unwrap(),
        0,
        "a replay adds nothing"
    );
    assert_eq!(write(&sink, &large).await.unwrap(), 900, "the rest of it");
    assert_eq!(write(&sink, &all.slice(500..1_500)).await.unwrap(), 500);
    assert_eq!(write(&sink, &all).await.unwrap(), 0);

    assert_eq!(ids_in(&pool).await, all.ids);
}

#[tokio::test]
async fn a_replay_holding_a_refused_row_is_still_refused_for_its_content() {
    let (_database, pool, sink) = target().await;
    let batch = rows(600, Some(450));
    assert_eq!(write(&sink, &batch.slice(0..300)).await.unwrap(), 300);
    sqlx::query(
        "ALTER TABLE monitoring.monitoring_events
         ADD CONSTRAINT no_poison CHECK (source <> 'poison') NOT VALID",
    )
    .execute(&pool)
    .await
    .unwrap();

    let error = write(&sink, &batch).await.unwrap_err();

    let code = error.as_database_error().and_then(|e| e.code());
    assert_eq!(code.as_deref(), Some("23514"), "{error}");
    assert_eq!(ids_in(&pool).await, batch.ids[..300], "nothing more lands");
}

#[tokio::test]
async fn halves_commit_in_stream_order() {
    let (_database, pool, sink) = target().await;
    // A deferred trigger runs as its transaction commits: the log's order is commit order.
    support::execute_all(
        &pool,
        &[
            "CREATE TABLE commit_log (n bigserial, sequence_id bigint)",
            "CREATE FUNCTION log_commit() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN INSERT INTO commit_log (sequence_id) VALUES (NEW.sequence_id); RETURN NULL; END $$",
            "CREATE CONSTRAINT TRIGGER log_commit AFTER INSERT ON monitoring.monitoring_events
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION log_commit()",
        ],
    )
    .await;
    let all = rows(3_000, None);

    for start in [0, 1_000, 2_000] {
        let batch = all.slice(start..start + 1_000);
        assert_eq!(write(&sink, &batch).await.unwrap(), 1_000);
    }

    let order: Vec<i64> = sqlx::query_scalar("SELECT sequence_id FROM commit_log ORDER BY n")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(order, (0..3_000).collect::<Vec<i64>>());
}

#[tokio::test]
async fn a_target_that_refuses_copy_is_written_with_insert() {
    let database = TestDatabase::migrated().await;
    let pool = PgPool::connect(&database.url()).await.unwrap();
    // Row-level security applies to a role that neither owns the table nor bypasses it, and
    // Postgres refuses `COPY FROM` under it (0A000); the role may insert through its policy.
    let role = format!("sink_rls_{}", Uuid::new_v4().simple());
    for statement in [
        format!("CREATE ROLE {role} LOGIN"),
        format!("GRANT USAGE ON SCHEMA monitoring TO {role}"),
        format!("GRANT SELECT, INSERT ON monitoring.monitoring_events TO {role}"),
        format!("CREATE POLICY {role} ON monitoring.monitoring_events TO {role} USING (true)"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
            .execute(&pool)
            .await
            .expect("set up the role");
    }
    let url = database.url().replacen("postgres@", &format!("{role}@"), 1);
    let sink = RealtimeSink::new(&url, false, 2);
    let (small, large) = (rows(10, None), rows(1_000, None));

    let results = (write(&sink, &small).await, write(&sink, &large).await);

    sink.close().await;
    let cleanup = format!("DROP OWNED BY {role}; DROP ROLE {role}");
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(cleanup.as_str()))
        .execute(&pool)
        .await;
    assert_eq!((results.0.unwrap(), results.1.unwrap()), (10, 1_000));
    assert_eq!(ids_in(&pool).await.len(), 1_010);
}

#[tokio::test]
async fn a_write_dropped_while_its_copy_runs_leaves_the_sink_in_step() {
    let (_database, pool, sink) = target().await;
    // Each 'slow' row holds the server 50 ms: a 20-row COPY outlives the caller's timeout.
    support::execute_all(
        &pool,
        &[
            "CREATE FUNCTION monitoring.slow() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF NEW.source = 'slow' THEN PERFORM pg_sleep(0.05); END IF; RETURN NEW; END $$",
            "CREATE TRIGGER slow BEFORE INSERT ON monitoring.monitoring_events
             FOR EACH ROW EXECUTE FUNCTION monitoring.slow()",
        ],
    )
    .await;
    let mut slow = rows(20, None);
    slow.sources.iter_mut().for_each(|s| *s = "slow".into());
    // A first write opens the connection, so the slow one spends its time in the COPY.
    assert_eq!(write(&sink, &rows(1, None)).await.unwrap(), 1);

    let dropped = tokio::time::timeout(Duration::from_millis(400), sink.write(&slow)).await;

    assert!(dropped.is_err(), "the COPY outlived the timeout");
    // The server finishes the COPY it was sent in full (it commits: the caller replays).
    let waited = tokio::time::timeout(WAIT, async {
        loop {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM monitoring.monitoring_events WHERE source = 'slow'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            if n == 20 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "the dropped COPY's rows land");
    // Long enough for a connection handed back to be in the pool again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = rows(10, None);
    assert_eq!(write(&sink, &later).await.unwrap(), 10);
    assert_eq!(write(&sink, &later).await.unwrap(), 0);
    assert_eq!(
        write(&sink, &slow).await.unwrap(),
        0,
        "the replay adds nothing"
    );
}
