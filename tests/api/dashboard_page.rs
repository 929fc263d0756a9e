//! The live dashboard page (`GET /dashboard`): what it is served with, the status stream it
//! reads connection counts from, and, in headless Chromium, that it shows what happens as it
//! happens — an event published over REST, a flag flipped from the page, the breaker forced
//! open — with no script error along the way.

use serde_json::{Value, json};

use crate::support::browser::Browser;
use crate::support::sse::SseClient;
use crate::support::{TestApp, assert_problem, spawn_app};

/// Opens the page and signs in with the admin key; returns once every panel is live.
async fn open_signed_in(app: &TestApp) -> Browser {
    let browser = Browser::start().await;
    browser.goto(&app.url("/dashboard")).await;
    browser
        .wait_until(
            "the key form",
            "window.__dashboardReady === true && !document.getElementById('login').hidden",
        )
        .await;
    assert_eq!(browser.script_errors().await, Vec::<Value>::new());
    assert_eq!(
        browser.console_errors().await,
        Vec::<Value>::new(),
        "console errors on load"
    );
    browser.type_into("#key-input", &app.admin_key).await;
    browser.click("#key-submit").await;
    browser
        .wait_until(
            "the Realtime breaker closed in the banner",
            "document.getElementById('realtime-banner').dataset.state === 'closed' \
             && document.getElementById('realtime-state').textContent === 'CLOSED'",
        )
        .await;
    browser
        .wait_until(
            "the event feed subscribed",
            "document.getElementById('feed').dataset.subscribed === 'true'",
        )
        .await;
    browser
}

#[tokio::test]
async fn in_a_browser_the_page_shows_events_flag_flips_and_the_breaker_opening_live() {
    let app = spawn_app().await;
    let browser = open_signed_in(&app).await;
    browser
        .wait_until(
            "a route for each of the five categories",
            "document.querySelectorAll('#routes tbody tr').length === 5",
        )
        .await;
    browser
        .wait_until(
            "the validator's five categories (validation off), and connection counts",
            "document.getElementById('consistency').dataset.validator === 'off' \
             && document.querySelectorAll('#consistency tbody tr').length === 5 \
             && /subscribers now\\s*[1-9]/.test(document.getElementById('connections').innerText)",
        )
        .await;

    // An event published over REST appears in the feed.
    app.publish_ok(
        &json!({"event_type": "dashboard_probe", "source": "browser-test", "data": {"n": 7}}),
    )
    .await;
    browser
        .wait_until(
            "the published event in the feed",
            "[...document.querySelectorAll('#feed tbody tr')].some(row => \
             row.dataset.eventType === 'dashboard_probe' && row.innerText.includes('browser-test'))",
        )
        .await;

    // Filtered by event type, the feed shows the matching event and not the one before it.
    browser
        .type_into("#feed-event-types", "dashboard_wanted")
        .await;
    browser.click("#feed-filter button[type='submit']").await;
    browser
        .wait_until(
            "the filtered feed subscribed",
            "document.getElementById('feed').dataset.subscribed === 'true'",
        )
        .await;
    app.publish_ok(&json!({"event_type": "dashboard_unwanted", "source": "browser-test"}))
        .await;
    app.publish_ok(&json!({"event_type": "dashboard_wanted", "source": "browser-test"}))
        .await;
    browser
        .wait_until(
            "the wanted event in the filtered feed",
            "document.querySelector('#feed tbody tr[data-event-type=\"dashboard_wanted\"]')",
        )
        .await;
    // One stream delivers in offset order: had the earlier event passed the filter, it
    // would be on the page already.
    let unwanted = browser
        .eval("return document.querySelectorAll('#feed tbody tr[data-event-type=\"dashboard_unwanted\"]').length;")
        .await;
    assert_eq!(
        unwanted,
        json!(0),
        "the filter let an unwanted event through"
    );

    // A flag created over REST appears; flipped and rolled out from the page, it changes.
    app.create_boolean_flag("dashboard.probe").await;
    let row = "document.querySelector('#flags tr[data-flag=\"dashboard.probe\"]')";
    browser
        .wait_until(
            "the new flag, off",
            &format!("{row}?.dataset.enabled === 'false'"),
        )
        .await;
    browser
        .click("#flags tr[data-flag='dashboard.probe'] .flag-toggle")
        .await;
    browser
        .wait_until(
            "the flag on",
            &format!("{row}?.dataset.enabled === 'true' && {row}.querySelector('.flag-toggle').textContent === 'ON'"),
        )
        .await;
    let flag = flag_over_rest(&app, "dashboard.probe").await;
    assert_eq!(
        flag["environments"]["production"]["enabled"], true,
        "{flag:#}"
    );
    browser.screenshot("dashboard-healthy").await;

    browser
        .type_into(
            "#flags tr[data-flag='dashboard.probe'] .flag-percentage",
            "30",
        )
        .await;
    browser
        .click("#flags tr[data-flag='dashboard.probe'] .flag-rollout-set")
        .await;
    browser
        .wait_until(
            "a 30% rollout",
            &format!("{row}?.dataset.percentage === '30'"),
        )
        .await;
    let flag = flag_over_rest(&app, "dashboard.probe").await;
    assert_eq!(
        flag["environments"]["production"]["rollout"]["percentage"], 30,
        "{flag:#}"
    );

    // Forced open over REST, the breaker turns red at the top and the transition is listed.
    app.force_breaker_open("browser test").await;
    browser
        .wait_until(
            "the breaker forced open in the banner and the transition listed",
            "document.getElementById('realtime-banner').dataset.state === 'forced_open' \
             && document.getElementById('realtime-banner').classList.contains('failing') \
             && document.getElementById('realtime-state').textContent === 'FORCED OPEN' \
             && document.getElementById('transitions').innerText.includes('closed → forced_open') \
             && document.querySelector('#breakers tr[data-breaker=\"realtime\"] td:nth-child(3)').textContent === 'force_open'",
        )
        .await;

    browser.screenshot("dashboard-breaker-forced-open").await;
    assert_eq!(browser.script_errors().await, Vec::<Value>::new());
    // The browser's own console too.
    assert_eq!(
        browser.console_errors().await,
        Vec::<Value>::new(),
        "console errors"
    );
    browser.close().await;
}

#[tokio::test]
async fn in_a_browser_a_refused_key_is_shown_and_the_page_keeps_asking_for_one() {
    let app = spawn_app().await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/dashboard")).await;
    browser
        .wait_until("the key form", "window.__dashboardReady === true")
        .await;
    browser.type_into("#key-input", "not-a-key").await;
    browser.click("#key-submit").await;
    browser
        .wait_until(
            "the API's 401 in the error list",
            "document.getElementById('errors').innerText.includes('401') \
             && document.getElementById('errors').innerText.includes('not valid')",
        )
        .await;
    let still_asking = browser
        .eval("return !document.getElementById('login').hidden && sessionStorage.length === 0;")
        .await;
    assert_eq!(
        still_asking,
        json!(true),
        "the refused key must not be kept"
    );
    assert_eq!(browser.script_errors().await, Vec::<Value>::new());
    browser.close().await;
}

#[tokio::test]
async fn the_page_and_its_files_come_from_the_binary_with_a_same_origin_policy() {
    let app = spawn_app().await;
    for (path, content_type) in [
        ("/dashboard", "text/html"),
        ("/dashboard/errors.js", "text/javascript"),
        ("/dashboard/api.js", "text/javascript"),
        ("/dashboard/dashboard.js", "text/javascript"),
        ("/dashboard/dashboard.css", "text/css"),
    ] {
        let response = app.client.get(app.url(path)).send().await.expect("GET");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        assert!(header("content-type").starts_with(content_type), "{path}");
        assert!(
            header("content-security-policy").contains("default-src 'none'"),
            "{path}"
        );
        let body = response.text().await.expect("a body");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path} names another origin"
        );
    }
    let missing = app
        .client
        .get(app.url("/dashboard/nope.js"))
        .send()
        .await
        .expect("GET");
    assert_problem(missing, 404).await;
}

#[tokio::test]
async fn the_status_stream_pushes_connection_counts_and_the_environment() {
    let app = spawn_app().await;
    let (_subscriber, _) = app.stream("").await;
    let response = app
        .client
        .get(app.url("/v1/status/stream"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .expect("GET /v1/status/stream");
    assert_eq!(response.status().as_u16(), 200);
    let mut stream = SseClient::new(response);
    let first = stream.next().await.expect("a status event");
    assert_eq!(first.event, "status");
    let status = first.json();
    assert_eq!(status["environment"], "production", "{status:#}");
    assert_eq!(status["connections"]["subscribers"], 1, "{status:#}");
    assert_eq!(status["realtime"]["backlog_depth"], 0, "{status:#}");

    app.publish_ok(&json!({"event_type": "counted", "source": "test"}))
        .await;
    loop {
        let next = stream.next().await.expect("another status event").json();
        if next["published_total"] == 1 {
            break;
        }
        assert_eq!(next["published_total"], 0, "{next:#}");
    }
}

async fn flag_over_rest(app: &TestApp, key: &str) -> Value {
    let response = app
        .client
        .get(app.url(&format!("/v1/flags/{key}")))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .expect("GET /v1/flags/{key}");
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.expect("a flag")
}
