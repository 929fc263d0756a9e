//! The dashboard page with `SWITCHYARD_PUBLIC_READ=true`, in headless Chromium: it opens
//! read-only without asking for a key, and a control that changes something asks for an admin
//! key when it is used, then does what was asked.

use serde_json::{Value, json};

use crate::support::browser::Browser;
use crate::support::spawn_app_with;

#[tokio::test]
async fn with_public_read_the_page_opens_without_a_key_and_a_flip_asks_for_one() {
    let app = spawn_app_with(|config| config.public_read = true).await;
    app.create_boolean_flag("public.probe").await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/dashboard")).await;

    browser
        .wait_until(
            "the board, read-only, with the breaker and the flags and no key form",
            "window.__dashboardReady === true && document.body.dataset.access === 'public' \
             && !document.getElementById('board').hidden \
             && document.getElementById('login').hidden \
             && document.getElementById('realtime-banner').dataset.state === 'closed' \
             && document.querySelector('#flags tr[data-flag=\"public.probe\"]') !== null",
        )
        .await;
    assert_eq!(browser.script_errors().await, Vec::<Value>::new());
    assert_eq!(browser.console_errors().await, Vec::<Value>::new());
    app.publish_ok(&json!({"event_type": "public_probe", "source": "browser-test"}))
        .await;
    browser
        .wait_until(
            "the published event in the feed, read without a key",
            "[...document.querySelectorAll('#feed tbody tr')].some(r => r.dataset.eventType === 'public_probe')",
        )
        .await;

    // Flipping needs the admin scope: the page asks for a key, then flips.
    browser
        .click("#flags tr[data-flag='public.probe'] .flag-toggle")
        .await;
    browser
        .wait_until(
            "the key form, saying why",
            "!document.getElementById('login').hidden \
             && document.getElementById('login-why').textContent.includes('public.probe')",
        )
        .await;
    let flag: Value = app
        .get("/v1/flags/public.probe", app.admin())
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(
        flag["environments"]["production"]["enabled"], true,
        "nothing changed before the key was given: {flag:#}"
    );
    browser.type_into("#key-input", &app.admin_key).await;
    browser.click("#key-submit").await;
    let row = "document.querySelector('#flags tr[data-flag=\"public.probe\"]')";
    browser
        .wait_until("the flag on", &format!("{row}?.dataset.enabled === 'true'"))
        .await;
    let flag: Value = app
        .get("/v1/flags/public.probe", app.admin())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        flag["environments"]["production"]["enabled"], true,
        "{flag:#}"
    );
    assert_eq!(browser.script_errors().await, Vec::<Value>::new());
    browser.close().await;
}
