//! TLS to Postgres: the local server serves TLS with Debian's snakeoil certificate (CN and SAN
//! `localhost`), so `sslmode=require` (encrypted, not verified), `verify-ca` (signed by the
//! root in `sslrootcert`) and `verify-full` (and named `localhost`) are proven against it, for
//! the control store and the Realtime target, and a root that did not sign the server's
//! certificate stops the start with the reason.

use serde_json::json;
use switchyard::app::Application;
use switchyard::config::Config;
use uuid::Uuid;

use crate::support::wait::{self, Look};
use crate::support::{POSTGRES, TestDatabase, spawn_app_with};

const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

/// Whether every server connection with `application_name` is encrypted, and how many there are.
async fn encrypted_connections(application_name: &str) -> (bool, i64) {
    let admin = sqlx::PgPool::connect(&format!("{POSTGRES}/postgres"))
        .await
        .expect("connect to the maintenance database");
    let (all_ssl, count): (Option<bool>, i64) = sqlx::query_as(
        "SELECT bool_and(s.ssl), count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
         WHERE a.application_name = $1",
    )
    .bind(application_name)
    .fetch_one(&admin)
    .await
    .expect("read pg_stat_ssl");
    admin.close().await;
    (all_ssl.unwrap_or(false), count)
}

#[tokio::test]
async fn the_control_store_is_reached_with_sslmode_require() {
    let name = format!("switchyard-tls-{}", Uuid::new_v4().simple());
    let app = spawn_app_with(|config| {
        config.database_url = config.database_url.replace(
            "sslmode=disable",
            &format!("sslmode=require&application_name={name}"),
        );
    })
    .await;
    // A write through the control store (flag, audit row, NOTIFY) over the encrypted pool.
    app.create_boolean_flag("over-tls").await;
    app.flip_ok("over-tls", true).await;
    let (all_ssl, count) = encrypted_connections(&name).await;
    assert!(count >= 1, "switchyard holds connections named {name}");
    assert!(
        all_ssl,
        "every connection of switchyard is encrypted ({count})"
    );
}

#[tokio::test]
async fn the_control_store_and_the_target_are_verified_against_sslrootcert() {
    let name = format!("switchyard-verify-{}", Uuid::new_v4().simple());
    let target = TestDatabase::new();
    let app = spawn_app_with(|config| {
        config.database_url = config.database_url.replace(
            "sslmode=disable",
            &format!("sslmode=verify-ca&sslrootcert={SNAKEOIL}&application_name={name}"),
        );
        // The certificate names `localhost`, so verify-full needs that host name.
        config.realtime.database_url = Some(format!(
            "postgres://postgres@localhost:5432/{}?sslmode=verify-full&sslrootcert={SNAKEOIL}&application_name={name}",
            target.name
        ));
    })
    .await;
    app.set_strategy("realtime").await;
    let receipt = app
        .publish_ok(&json!({"event_type": "health_check", "source": "tls"}))
        .await;
    let id = receipt["events"][0]["id"].as_str().unwrap().to_string();
    // switchyard creates the target database when it first reaches it.
    wait::until("the event in the target over verify-full", async || {
        let Ok(pool) = sqlx::PgPool::connect(&target.url()).await else {
            return Look::NotYet("no target database yet".into());
        };
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT count(*) FROM monitoring.monitoring_events WHERE id = $1::uuid",
        )
        .bind(&id)
        .fetch_one(&pool)
        .await
        .ok();
        pool.close().await;
        Look::ready_if(found == Some(1), found)
    })
    .await;
    let (all_ssl, count) = encrypted_connections(&name).await;
    assert!(
        count >= 2,
        "switchyard holds connections to both databases ({count})"
    );
    assert!(all_ssl, "every connection of switchyard is encrypted");
}

#[tokio::test]
async fn a_root_that_did_not_sign_the_server_certificate_stops_the_start() {
    let database = TestDatabase::migrated().await;
    let other_ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let path = std::env::temp_dir().join(format!("other-ca-{}.pem", Uuid::new_v4().simple()));
    std::fs::write(&path, other_ca.cert.pem()).unwrap();
    let mut config = Config::for_database(database.url().replace(
        "sslmode=disable",
        &format!("sslmode=verify-ca&sslrootcert={}", path.display()),
    ));
    config.port = 0;
    let outcome = Application::build(config).await;
    std::fs::remove_file(&path).ok();
    let error = match outcome {
        Ok(_) => panic!("a server certificate the root did not sign was trusted"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("cannot connect to Postgres"), "{error}");
    assert!(!error.contains("built without TLS"), "{error}");
}
