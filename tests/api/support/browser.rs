//! A real browser for tests: Debian's headless Chromium driven over WebDriver (chromedriver +
//! `fantoccini`). Each `Browser` starts its own chromedriver on a free port, in its own process
//! group, and kills that group when dropped, so a failing test leaves no browser behind.
//!
//! Every wait is "until the page shows X" (a JavaScript condition, checked until it holds or
//! `BROWSER_WAIT` passes); on a timeout the panic shows the page's text and recorded errors.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use super::wait::{Look, Patience};

/// How long a test waits for the page to show something. Generous: Chromium shares two cores
/// with the rest of the suite, and success never waits this long.
pub const BROWSER_WAIT: Duration = Duration::from_secs(45);
/// Between two checks of a condition (not a wait for anything: the loop ends when it holds).
const RECHECK: Duration = Duration::from_millis(50);
/// How every wait in this module waits.
const PAGE: Patience = Patience::DEFAULT.within(BROWSER_WAIT).every(RECHECK);

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL_HINT: &str = "the browser tests need Debian's Chromium and its driver: \
    `apt-get update && apt-get install -y chromium chromium-driver` (`.ci/run` installs them)";

pub struct Browser {
    client: Option<Client>,
    driver: Child,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session. Panics, saying how to install
    /// them, when either is missing: a browser test must never pass without a browser.
    pub async fn start() -> Browser {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing: {INSTALL_HINT}"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}; {INSTALL_HINT}"));
        let mut browser = Browser {
            client: None,
            driver,
        };
        browser.client = Some(connect(port).await);
        browser
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the session is open")
    }

    pub async fn goto(&self, url: &str) {
        self.client()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub async fn eval(&self, script: &str) -> Value {
        self.client()
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until the JavaScript expression `condition` is true in the page.
    pub async fn wait_until(&self, what: &str, condition: &str) {
        let script = format!("return Boolean({condition});");
        let shown = PAGE
            .try_until(&format!("the page to show {what}"), async || {
                let value = self.eval(&script).await;
                Look::ready_if(value == json!(true), value)
            })
            .await;
        // The page's text and errors say why; read only once the wait has failed.
        if let Err(timed_out) = shown {
            let page = self
                .eval("return document.body.innerText.slice(0, 4000);")
                .await;
            let errors = self.script_errors().await;
            panic!(
                "{timed_out}\ncondition: {condition}\nscript errors: {errors:#?}\npage text:\n{}",
                page.as_str().unwrap_or("")
            );
        }
    }

    /// Types `text` into the element `css` (after clearing it).
    /// A page may re-render the element between finding and typing (a stale reference); the
    /// element is then found again, a few times at most.
    pub async fn type_into(&self, css: &str, text: &str) {
        let mut attempts = 0;
        loop {
            let element = self.find(css).await;
            let typed = match element.clear().await {
                Ok(()) => element.send_keys(text).await,
                Err(e) => Err(e),
            };
            match typed {
                Ok(()) => return,
                Err(e) if attempts < 3 && e.to_string().contains("stale element") => attempts += 1,
                Err(e) => panic!("cannot type into `{css}`: {e}"),
            }
        }
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("click");
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client()
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element `{css}` on the page: {e}"))
    }

    /// What the page recorded in `window.__dashboardErrors` (script errors, rejected
    /// promises, console.error calls, refused resources).
    pub async fn script_errors(&self) -> Vec<Value> {
        match self.eval("return window.__dashboardErrors || null;").await {
            Value::Array(errors) => errors,
            other => panic!("the page has no error record (errors.js not loaded?): {other}"),
        }
    }

    /// The browser's own console entries at level SEVERE since the last call: uncaught errors,
    /// `console.error`, and resources answered with an error status (source `network`), which
    /// the page cannot see itself.
    pub async fn console_errors(&self) -> Vec<Value> {
        let log = self
            .client()
            .issue_cmd(BrowserLog)
            .await
            .expect("read the browser's console log");
        let entries = log.as_array().cloned().unwrap_or_default();
        entries
            .into_iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .collect()
    }

    /// Saves a PNG of the page as `<name>.png` in `$SCREENSHOT_DIR`, when that is set: a way to
    /// look at what the test saw. Does nothing otherwise.
    pub async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("SCREENSHOT_DIR") else {
            return;
        };
        self.eval("window.scrollTo(0, 0); return null;").await;
        let png = self.client().screenshot().await.expect("a screenshot");
        let path = Path::new(&dir).join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("cannot write {path:?}: {e}"));
    }

    /// Ends the session (Chromium quits); the driver is killed on drop.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            client.close().await.expect("end the browser session");
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium it started, also after a panic.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}

/// chromedriver's console log command (`POST /session/{id}/se/log`, outside the W3C spec).
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (reqwest::Method, Option<String>) {
        (
            reqwest::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until chromedriver answers `/status` with `ready`, then opens a session.
async fn connect(port: u16) -> Client {
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    PAGE.try_until("chromedriver to be ready", async || {
        let status = match http.get(format!("{url}/status")).send().await {
            Ok(response) => response.json::<Value>().await.ok(),
            Err(_) => None, // not listening yet
        };
        let ready = status
            .as_ref()
            .is_some_and(|s| s["value"]["ready"] == json!(true));
        Look::ready_if(ready, status)
    })
    .await
    .unwrap_or_else(|timed_out| panic!("{timed_out}\n{INSTALL_HINT}"));
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1366,900", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("chromedriver did not start Chromium: {e}; {INSTALL_HINT}"))
}
