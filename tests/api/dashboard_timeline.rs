//! The page's live timeline (uPlot, vendored), in headless Chromium: once events flow it draws
//! points with a WebSocket rate above zero, and the breaker band turns to open when the
//! breaker is forced open.

use serde_json::{Value, json};

use crate::support::browser::Browser;
use crate::support::spawn_app;

#[tokio::test]
async fn in_a_browser_the_timeline_draws_the_event_rate_and_the_breaker_band_turns_open() {
    let app = spawn_app().await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/dashboard")).await;
    browser
        .wait_until("the key form", "window.__dashboardReady === true")
        .await;
    browser.type_into("#key-input", &app.admin_key).await;
    browser.click("#key-submit").await;
    browser
        .wait_until(
            "the timeline's first samples",
            "Number(document.getElementById('timeline').dataset.points) >= 2",
        )
        .await;

    let publishing = {
        let (client, url, key) = (
            app.client.clone(),
            app.url("/v1/events"),
            app.admin_key.clone(),
        );
        tokio::spawn(async move {
            loop {
                let body = json!([{"event_type": "cache_metrics", "source": "timeline"}, {"event_type": "error", "source": "timeline"}]);
                let _ = client.post(&url).bearer_auth(&key).json(&body).send().await;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
    };
    browser
        .wait_until(
            "a WebSocket rate above zero drawn on the chart",
            "window.switchyardTimeline.last(1) > 0 \
             && document.querySelectorAll('#timeline-rates canvas, #timeline-migration canvas').length === 2 \
             && window.switchyardTimeline.last(4) === 0",
        )
        .await;

    app.force_breaker_open("timeline test").await;
    browser
        .wait_until(
            "the breaker band open",
            "window.switchyardTimeline.last(4) === 2 \
             && document.getElementById('timeline').dataset.breaker === 'forced_open'",
        )
        .await;
    publishing.abort();
    assert_eq!(browser.script_errors().await, Vec::<Value>::new());
    assert_eq!(browser.console_errors().await, Vec::<Value>::new());
    browser.close().await;
}
