//! One fresh Postgres database per test, dropped when the test ends.
//!
//! Running the migrations for every test would cost more than the test, so a migrated
//! template is built once per set of migrations (named by their checksums) and each test's
//! database is cloned from it. The migration tests themselves start from nothing instead.

use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection};
use switchyard::store::connect_and_migrate;
use switchyard::store::pool::MIGRATOR;
use uuid::Uuid;

use super::POSTGRES;
use super::wait::{self, Look};

/// Serializes template builds across the test processes nextest runs in parallel.
const TEMPLATE_LOCK: i64 = 0x5359_5445_4d50; // "SYTEMP"

/// A database of this test; dropped (best effort) when this value is dropped.
pub struct TestDatabase {
    pub name: String,
}

impl TestDatabase {
    /// A name no other test uses, for a database that does not exist yet: whoever connects
    /// first creates it (as the app does for a missing database).
    pub fn new() -> Self {
        Self {
            name: format!("switchyard_test_{}", Uuid::new_v4().simple()),
        }
    }

    /// A fresh database with every migration applied.
    pub async fn migrated() -> Self {
        let template = migrated_template().await;
        let database = Self::new();
        let mut admin = maintenance().await;
        execute(
            &mut admin,
            format!(
                r#"CREATE DATABASE "{}" TEMPLATE "{template}""#,
                database.name
            ),
        )
        .await
        .expect("clone the migrated template");
        let _ = admin.close().await;
        database
    }

    /// Its URL on the local Postgres, without TLS: the server offers it, so sqlx's default
    /// (`prefer`) would negotiate it on every connection, and a debug-build handshake on this
    /// loaded 2-core machine can outlast the short breaker timeouts the drills use (a first
    /// Realtime probe timing out at 300 ms). TLS is proven on its own in `tls.rs`.
    pub fn url(&self) -> String {
        format!("{POSTGRES}/{}?sslmode=disable", self.name)
    }
}

impl TestDatabase {
    /// Waits (up to `WAIT`) until this database's `monitoring.monitoring_events` holds every
    /// id in `want`; returns all its ids, or `None` on time-out. Tolerates a database that
    /// does not exist yet (switchyard creates a Realtime target with its first write).
    pub async fn realtime_ids_holding(
        &self,
        want: &std::collections::HashSet<Uuid>,
    ) -> Option<Vec<Uuid>> {
        // One deadline for both: connecting (the database may not exist yet), then the rows.
        let mut pool: Option<sqlx::PgPool> = None;
        let rows = wait::Patience::DEFAULT
            .try_until("the Realtime table to hold every event", async || {
                let connected = match &pool {
                    Some(connected) => connected,
                    None => match sqlx::PgPool::connect(&self.url()).await {
                        Ok(connected) => pool.insert(connected),
                        Err(e) => return Look::NotYet(format!("no connection: {e}")),
                    },
                };
                let rows: Vec<Uuid> =
                    sqlx::query_scalar("SELECT id FROM monitoring.monitoring_events")
                        .fetch_all(connected)
                        .await
                        .unwrap_or_default();
                let missing = want.iter().filter(|id| !rows.contains(id)).count();
                if missing == 0 {
                    Look::Ready(rows)
                } else {
                    Look::NotYet(format!("{missing} of {} events missing", want.len()))
                }
            })
            .await
            .ok();
        if let Some(pool) = pool {
            pool.close().await;
        }
        rows
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime (possibly while unwinding from a panic), so the
        // cleanup gets its own thread and runtime. FORCE ends the app's pooled connections.
        let statement = format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name);
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for cleanup");
            runtime.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&maintenance_url()).await {
                    let _ = execute(&mut admin, statement).await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

fn maintenance_url() -> String {
    format!("{POSTGRES}/postgres")
}

async fn maintenance() -> PgConnection {
    PgConnection::connect(&maintenance_url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach Postgres at {POSTGRES} ({e}); start it with \
                 `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
            )
        })
}

async fn execute(conn: &mut PgConnection, statement: String) -> Result<(), sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(conn)
        .await
        .map(drop)
}

async fn exists(conn: &mut PgConnection, name: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(conn)
        .await
        .expect("look up a database")
}

/// The template for the migrations this binary was built with, built if missing. It appears
/// under its final name only once complete, so a clone never sees half of it.
async fn migrated_template() -> String {
    let mut digest = Sha256::new();
    for migration in MIGRATOR.iter() {
        digest.update(migration.version.to_be_bytes());
        digest.update(&*migration.checksum);
    }
    let name = format!(
        "switchyard_template_{}",
        &hex::encode(digest.finalize())[..16]
    );
    let mut admin = maintenance().await;
    if !exists(&mut admin, &name).await {
        execute(
            &mut admin,
            format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"),
        )
        .await
        .expect("take the template lock");
        if !exists(&mut admin, &name).await {
            build_template(&mut admin, &name).await;
        }
        execute(
            &mut admin,
            format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"),
        )
        .await
        .expect("release the template lock");
    }
    let _ = admin.close().await;
    name
}

async fn build_template(admin: &mut PgConnection, name: &str) {
    let building = format!("{name}_building");
    // A build that died half-way left this behind.
    execute(
        admin,
        format!(r#"DROP DATABASE IF EXISTS "{building}" WITH (FORCE)"#),
    )
    .await
    .expect("drop an unfinished template");
    let pool = connect_and_migrate(&format!("{POSTGRES}/{building}"))
        .await
        .expect("create and migrate the template");
    pool.close().await;
    // Nobody connects to a template: a connection would make cloning it fail.
    let finish = format!(
        r#"ALTER DATABASE "{building}" WITH ALLOW_CONNECTIONS false;
           ALTER DATABASE "{building}" RENAME TO "{name}""#
    );
    // The pool's backends may take a moment to exit after it closed.
    wait::until(
        &format!("the template {name} to be finished"),
        async || match sqlx::raw_sql(sqlx::AssertSqlSafe(finish.clone()))
            .execute(&mut *admin)
            .await
        {
            Ok(_) => Look::Ready(()),
            Err(e) => Look::NotYet(e.to_string()),
        },
    )
    .await;
}
