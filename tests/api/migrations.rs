//! The migrations, checked from the catalog on a fresh database: the Realtime table as the
//! legacy system had it (REFERENCE.md section 1) plus switchyard's columns, its five indexes,
//! the `supabase_realtime` publication, row-level security and Supabase's roles.

use std::collections::BTreeSet;

use sqlx::{Connection, PgPool};
use switchyard::store::connect_and_migrate;
use switchyard::store::pool::MIGRATOR;

use crate::support::{POSTGRES, TestDatabase};

async fn migrated() -> (PgPool, TestDatabase) {
    let database = TestDatabase::new();
    let pool = connect_and_migrate(&database.url())
        .await
        .expect("migrate a fresh database");
    (pool, database)
}

type Column = (String, String, Option<i32>, String, Option<String>);

async fn columns(pool: &PgPool) -> Vec<Column> {
    sqlx::query_as(
        "SELECT column_name::text, data_type::text, character_maximum_length::int4,
                is_nullable::text, column_default::text
         FROM information_schema.columns
         WHERE table_schema = 'monitoring' AND table_name = 'monitoring_events'
         ORDER BY ordinal_position",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn migrations_create_the_monitoring_events_table_with_the_legacy_columns() {
    let (pool, _database) = migrated().await;

    let columns = columns(&pool).await;

    let column = |name: &str| {
        columns
            .iter()
            .find(|c| c.0 == name)
            .unwrap_or_else(|| panic!("no column {name} in {columns:?}"))
            .clone()
    };
    let timestamptz = "timestamp with time zone";
    let varchar = "character varying";
    let (_, kind, _, nullable, default) = column("id");
    assert_eq!((kind.as_str(), nullable.as_str()), ("uuid", "NO"));
    assert_eq!(default.as_deref(), Some("gen_random_uuid()"));
    assert_eq!(
        column("event_type"),
        (
            "event_type".into(),
            varchar.into(),
            Some(50),
            "NO".into(),
            None
        )
    );
    assert_eq!(
        column("timestamp"),
        (
            "timestamp".into(),
            timestamptz.into(),
            None,
            "NO".into(),
            None
        )
    );
    assert_eq!(
        column("source"),
        (
            "source".into(),
            varchar.into(),
            Some(100),
            "NO".into(),
            None
        )
    );
    assert_eq!(
        column("data"),
        ("data".into(), "jsonb".into(), None, "NO".into(), None)
    );
    let (_, kind, _, nullable, default) = column("metadata");
    assert_eq!((kind.as_str(), nullable.as_str()), ("jsonb", "NO"));
    assert_eq!(default.as_deref(), Some("'{}'::jsonb"));
    let (_, kind, _, _, default) = column("created_at");
    assert_eq!(kind, timestamptz);
    assert_eq!(default.as_deref(), Some("now()"));
    assert_eq!(column("sequence_id").1, "bigint");
    column("category");
    column("epoch");
    assert_eq!(columns.len(), 10, "{columns:?}");

    let primary_key: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
         WHERE i.indrelid = 'monitoring.monitoring_events'::regclass AND i.indisprimary",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(primary_key, ["id"]);
}

#[tokio::test]
async fn migrations_create_the_five_legacy_indexes() {
    let (pool, _database) = migrated().await;

    let definitions: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes
         WHERE schemaname = 'monitoring' AND tablename = 'monitoring_events'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();

    let keys: BTreeSet<&str> = definitions
        .iter()
        .filter_map(|d| d.split_once(" USING btree ").map(|(_, keys)| keys))
        .filter(|keys| *keys != "(id)")
        .collect();
    let expected: BTreeSet<&str> = [
        r#"("timestamp" DESC)"#,
        r#"(event_type, "timestamp" DESC)"#,
        r#"(source, "timestamp" DESC)"#,
        "(created_at DESC)",
        r#"(event_type, source, "timestamp" DESC)"#,
    ]
    .into();
    assert_eq!(keys, expected, "{definitions:#?}");
}

#[tokio::test]
async fn migrations_add_the_table_to_the_supabase_realtime_publication() {
    let (pool, _database) = migrated().await;

    assert_eq!(publication_entries(&pool).await, 1);
}

async fn publication_entries(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_publication_tables
         WHERE pubname = 'supabase_realtime'
           AND schemaname = 'monitoring' AND tablename = 'monitoring_events'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn policies(pool: &PgPool) -> Vec<(Vec<String>, String)> {
    sqlx::query_as(
        "SELECT roles::text[], cmd::text FROM pg_policies
         WHERE schemaname = 'monitoring' AND tablename = 'monitoring_events'
         ORDER BY policyname",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn migrations_enable_row_level_security_with_service_role_and_authenticated_policies() {
    let (pool, _database) = migrated().await;

    let rls: bool = sqlx::query_scalar(
        "SELECT c.relrowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'monitoring' AND c.relname = 'monitoring_events'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(rls, "row-level security is not enabled");

    let policies: BTreeSet<(Vec<String>, String)> = policies(&pool).await.into_iter().collect();
    let expected: BTreeSet<(Vec<String>, String)> = [
        (vec!["service_role".to_string()], "ALL".to_string()),
        (vec!["authenticated".to_string()], "SELECT".to_string()),
    ]
    .into();
    assert_eq!(policies, expected);

    // The grants behind the policies: full access, read-only, nothing.
    let privilege = |role: &'static str, privilege: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT has_table_privilege($1, 'monitoring.monitoring_events', $2)",
            )
            .bind(role)
            .bind(privilege)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    for action in ["SELECT", "INSERT", "UPDATE", "DELETE"] {
        assert!(
            privilege("service_role", action).await,
            "service_role {action}"
        );
        assert!(!privilege("anon", action).await, "anon {action}");
    }
    assert!(privilege("authenticated", "SELECT").await);
    assert!(!privilege("authenticated", "INSERT").await);
}

#[tokio::test]
async fn migrations_create_supabase_roles_that_cannot_log_in() {
    let (pool, _database) = migrated().await;

    let roles: Vec<(String, bool)> = sqlx::query_as(
        "SELECT rolname::text, rolcanlogin FROM pg_roles
         WHERE rolname IN ('service_role', 'authenticated', 'anon') ORDER BY rolname",
    )
    .fetch_all(&pool)
    .await
    .unwrap();

    assert_eq!(
        roles,
        [
            ("anon".to_string(), false),
            ("authenticated".to_string(), false),
            ("service_role".to_string(), false)
        ]
    );
}

#[tokio::test]
async fn running_the_migrations_twice_is_harmless() {
    let (pool, database) = migrated().await;
    let columns_before = columns(&pool).await;

    // Again through the migrator, as every start does...
    let again = connect_and_migrate(&database.url())
        .await
        .expect("a second run succeeds");
    // ...and the Realtime migration's SQL itself, as on a Supabase project that has parts of
    // it already.
    let realtime = MIGRATOR
        .iter()
        .find(|m| m.description.contains("monitoring events"))
        .expect("the monitoring_events migration");
    sqlx::raw_sql(realtime.sql.clone())
        .execute(&again)
        .await
        .expect("the Realtime migration is idempotent");

    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&again)
        .await
        .unwrap();
    assert_eq!(applied, MIGRATOR.iter().count() as i64);
    assert_eq!(columns(&again).await, columns_before);
    assert_eq!(publication_entries(&again).await, 1);
    assert_eq!(policies(&again).await.len(), 2);
}

#[tokio::test]
async fn migrations_work_where_supabase_already_created_the_publication() {
    let database = TestDatabase::new();
    let mut admin = sqlx::PgConnection::connect(&format!("{POSTGRES}/postgres"))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE \"{}\"",
        database.name
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    admin.close().await.unwrap();
    let mut fresh = sqlx::PgConnection::connect(&database.url()).await.unwrap();
    sqlx::query("CREATE PUBLICATION supabase_realtime")
        .execute(&mut fresh)
        .await
        .unwrap();
    fresh.close().await.unwrap();

    let pool = connect_and_migrate(&database.url())
        .await
        .expect("migrate next to an existing publication");

    assert_eq!(publication_entries(&pool).await, 1);
}
