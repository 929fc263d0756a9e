//! Connecting to Postgres at start: create the database when it is missing, then migrate.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use crate::config::mask_url;

/// Why start-up could not reach a usable control store. Rendered to the operator as is.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("DATABASE_URL `{url}` is not a valid Postgres URL: {cause}")]
    BadUrl { url: String, cause: String },
    #[error(
        "cannot connect to Postgres at {url}: {cause}\n\
         Start Postgres there, or point switchyard elsewhere with DATABASE_URL or --database-url."
    )]
    Unreachable { url: String, cause: String },
    #[error("cannot create database `{database}` at {url}: {cause}")]
    CreateDatabase {
        url: String,
        database: String,
        cause: String,
    },
    #[error("cannot apply migrations to {url}: {cause}")]
    Migrate { url: String, cause: String },
}

/// The migrations in `migrations/`, built into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects to `database_url`, creating the database first if the server does not have it,
/// and applies the migrations. Waits at most 3 s for a pooled connection.
pub async fn connect_and_migrate(database_url: &str) -> Result<PgPool, StartupError> {
    connect_and_migrate_bounded(database_url, Duration::from_secs(3)).await
}

/// [`connect_and_migrate`], waiting at most `acquire_timeout` for a pooled connection (a new
/// one connects within it, an idle one is pinged within it): a control store that stopped
/// answering costs a request that long, then an error, never a hang at the pool.
pub async fn connect_and_migrate_bounded(
    database_url: &str,
    acquire_timeout: Duration,
) -> Result<PgPool, StartupError> {
    let url = mask_url(database_url);
    let options = PgConnectOptions::from_str(database_url)
        .map_err(|e| StartupError::BadUrl {
            url: url.clone(),
            cause: e.to_string(),
        })?
        .log_statements(tracing::log::LevelFilter::Debug)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
    create_database_if_missing(&options, &url).await?;
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(acquire_timeout)
        .connect_with(options)
        .await
        .map_err(|e| StartupError::Unreachable {
            url: url.clone(),
            cause: e.to_string(),
        })?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|e| StartupError::Migrate {
            url,
            cause: e.to_string(),
        })?;
    Ok(pool)
}

async fn create_database_if_missing(
    options: &PgConnectOptions,
    url: &str,
) -> Result<(), StartupError> {
    let database = options.get_database().unwrap_or("postgres").to_string();
    let maintenance = options.clone().database("postgres");
    let connect = tokio::time::timeout(
        Duration::from_secs(5),
        PgConnection::connect_with(&maintenance),
    );
    let mut conn = match connect.await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            // The maintenance database may be off limits (a managed server); the target
            // database itself may still exist, so let the pool try it.
            if matches!(&e, sqlx::Error::Database(_)) {
                return Ok(());
            }
            return Err(StartupError::Unreachable {
                url: url.to_string(),
                cause: e.to_string(),
            });
        }
        Err(_) => {
            return Err(StartupError::Unreachable {
                url: url.to_string(),
                cause: "timed out after 5 s".into(),
            });
        }
    };
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&database)
            .fetch_one(&mut conn)
            .await
            .map_err(|e| StartupError::Unreachable {
                url: url.to_string(),
                cause: e.to_string(),
            })?;
    if !exists {
        match create_database(&mut conn, &database).await {
            Ok(true) => tracing::info!(database, "created database"),
            Ok(false) => {}
            Err(e) => {
                return Err(StartupError::CreateDatabase {
                    url: url.to_string(),
                    database,
                    cause: e.to_string(),
                });
            }
        }
    }
    let _ = conn.close().await;
    Ok(())
}

/// `CREATE DATABASE name` on `conn` (a maintenance connection); false when another client
/// created it first. Shared by the control store's start, the Realtime target's schema and the
/// benchmarks' scratch databases (tools/).
pub async fn create_database(conn: &mut PgConnection, name: &str) -> Result<bool, sqlx::Error> {
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    match sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
        .execute(conn)
        .await
    {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P04") => Ok(false),
        Err(e) => Err(e),
    }
}
