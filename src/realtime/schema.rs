//! The `monitoring` schema on a Realtime target that is not the control store.
//!
//! When `REALTIME_DATABASE_URL` names another database, nothing else migrates it, so the sink
//! applies the Realtime table's migration there itself: at start, and (since the target may be
//! down at start) again before the first write that reaches it, until it has succeeded once.
//!
//! How: the control store's first migration, `20261125000001_monitoring_events.sql`, is built
//! into the binary with `include_str!` and run as one script, in one transaction, under an
//! advisory lock (so instances starting together take turns). No second sqlx `Migrator`:
//! that file is written to be re-run (`IF NOT EXISTS`, guarded `DO` blocks, `DROP POLICY IF
//! EXISTS`), so running it on every start is safe, there is one copy of the SQL instead of
//! two, and a Supabase project's database gets no `_sqlx_migrations` table of ours. It is the
//! only migration that touches the `monitoring` schema; one that changes it later belongs
//! here as well.
//!
//! The database is created first when it does not exist and the server lets us (a managed
//! server usually does not; then it must exist already).

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};

/// The Realtime table's migration, shared with the control store's migrator.
const MONITORING_SCHEMA: &str =
    include_str!("../../migrations/20261125000001_monitoring_events.sql");

/// Advisory lock key serializing schema application across instances ("switchyard rt").
const SCHEMA_LOCK: i64 = 0x7377_6974_6368_7274;

/// Applies the `monitoring` schema to the target behind `pool`, creating its database first
/// if the server says it does not exist.
pub(super) async fn apply(options: &PgConnectOptions, pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = match pool.begin().await {
        Ok(tx) => tx,
        Err(e) if is_missing_database(&e) => {
            create_database(options).await?;
            pool.begin().await?
        }
        Err(e) => return Err(e),
    };
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SCHEMA_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(MONITORING_SCHEMA).execute(&mut *tx).await?;
    tx.commit().await?;
    tracing::info!(
        database = options.get_database().unwrap_or_default(),
        "applied the monitoring schema to the Realtime target"
    );
    Ok(())
}

fn is_missing_database(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("3D000"))
}

async fn create_database(options: &PgConnectOptions) -> Result<(), sqlx::Error> {
    let database = options.get_database().unwrap_or("postgres").to_string();
    let mut conn = PgConnection::connect_with(&options.clone().database("postgres")).await?;
    let created = crate::store::pool::create_database(&mut conn, &database).await;
    let _ = conn.close().await;
    if created? {
        tracing::info!(database, "created the Realtime target database");
    }
    Ok(())
}
