//! Secrets stay secret (issue 11): a database URL's passwords (user info, `?password=`,
//! `?sslpassword=`) appear nowhere switchyard shows the URL: `GET /v1/realtime`, the
//! `/v1/status/stream`, a start-up error.

use serde_json::Value;
use switchyard::app::Application;
use switchyard::config::Config;

use crate::support::spawn_app_with;

const SECRETS: [&str; 3] = ["s3cret-user-info", "s3cret-query", "s3cret-tls-key"];

fn assert_no_secret(shown: &str) {
    for secret in SECRETS {
        assert!(!shown.contains(secret), "a password is shown: {shown}");
    }
}

#[tokio::test]
async fn the_realtime_target_url_is_shown_without_its_passwords() {
    let app = spawn_app_with(|config| {
        // The local server trusts every connection, so the passwords are harmless to send.
        let url = config.database_url.replacen(
            "postgres://postgres@",
            "postgres://postgres:s3cret-user-info@",
            1,
        );
        // The test databases' URLs carry a query already (`sslmode=disable`).
        let join = if url.contains('?') { '&' } else { '?' };
        config.realtime.database_url = Some(format!(
            "{url}{join}password=s3cret-query&sslpassword=s3cret-tls-key&application_name=sy"
        ));
    })
    .await;

    let status: Value = app
        .get("/v1/realtime", app.admin())
        .await
        .json()
        .await
        .unwrap();
    let shown = status["target_database"].as_str().expect("target_database");
    assert_no_secret(shown);
    assert!(shown.contains("postgres:****@"), "{shown}");
    assert!(
        shown.contains("password=****&sslpassword=****&application_name=sy"),
        "{shown}"
    );

    let response = app.get("/v1/status/stream", app.admin()).await;
    let mut sse = crate::support::sse::SseClient::new(response);
    let sample = sse.next().await.expect("a status event").json();
    assert_eq!(sample["realtime"]["target_database"], shown);
    assert_no_secret(&sample.to_string());
}

#[tokio::test]
async fn a_start_up_error_names_the_url_without_its_passwords() {
    // Port 1: nothing listens, so the start fails at once.
    let config = Config::for_database(
        "postgres://app:s3cret-user-info@127.0.0.1:1/x?password=s3cret-query&sslpassword=s3cret-tls-key",
    );
    let error = match Application::build(config).await {
        Err(error) => error.to_string(),
        Ok(_) => panic!("started without a database"),
    };
    assert_no_secret(&error);
    assert!(error.contains("app:****@127.0.0.1:1"), "{error}");
}
