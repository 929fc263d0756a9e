//! `GET /metrics`: each app's own figures, exactly, after real traffic: events published,
//! subscribers connected, the breaker forced, a flag flipped and evaluated, HTTP requests by
//! route template, and the key `SWITCHYARD_METRICS_AUTH` asks for.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};
use switchyard::api::auth::Scope;

use crate::support::wait::{self, Look};
use crate::support::{Credential, TestApp, assert_problem, event, spawn_app, spawn_app_with};

/// One scrape, parsed: `name{labels}` -> value, and `name` -> type from `# TYPE`.
pub struct Scrape {
    pub text: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
    pub types: BTreeMap<String, String>,
}

impl Scrape {
    pub fn parse(text: String) -> Self {
        let mut samples = Vec::new();
        let mut types = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                types.insert(name.to_string(), kind.to_string());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("a number in `{line}`")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, parse_labels(labels.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            samples.push((name.to_string(), labels, value));
        }
        Self {
            text,
            samples,
            types,
        }
    }

    /// The value of the series `name` whose labels include `labels`; `None` when absent.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = self.samples.iter().filter(|(n, got, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| got.get(*k).map(String::as_str) == Some(v))
        });
        let first = found.next().map(|(_, _, v)| *v);
        assert!(
            found.next().is_none(),
            "{name} {labels:?} matches more than one series"
        );
        first
    }

    /// Every series of `name`.
    pub fn series(&self, name: &str) -> usize {
        self.samples.iter().filter(|(n, _, _)| n == name).count()
    }
}

fn parse_labels(raw: &str) -> BTreeMap<String, String> {
    // Values here never hold `",` (route templates, flag keys, sources of these tests).
    raw.split("\",")
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once("=\"").expect("label=\"value\"");
            (key.to_string(), value.trim_end_matches('"').to_string())
        })
        .collect()
}

impl TestApp {
    /// `GET /metrics` without a key; asserts 200 and the text format.
    pub async fn scrape(&self) -> Scrape {
        let response = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(response.status().as_u16(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        Scrape::parse(response.text().await.expect("a body"))
    }

    /// Scrapes until `ready` holds (counters fed by background tasks lag a little).
    async fn scrape_until(&self, what: &str, ready: impl Fn(&Scrape) -> bool) -> Scrape {
        wait::until(what, async || {
            let scrape = self.scrape().await;
            if ready(&scrape) {
                Look::Ready(scrape)
            } else {
                Look::NotYet(scrape.text)
            }
        })
        .await
    }

    async fn admin_request(&self, method: Method, path: &str, body: Value) -> Value {
        let response = self
            .client
            .request(method, self.url(path))
            .bearer_auth(&self.admin_key)
            .json(&body)
            .send()
            .await
            .expect("a response");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!((200..300).contains(&status), "{path}: {status} {body:#}");
        body
    }
}

#[tokio::test]
async fn published_events_are_counted_by_category_and_source_and_repeats_are_not() {
    let app = spawn_app().await;
    let id = uuid::Uuid::new_v4();
    app.publish_ok(&json!([
        event("cache_metrics", "billing"),
        event("cache_metrics", "billing"),
        event("error", "billing"),
        {"event_type": "stats", "source": "edge", "id": id},
    ]))
    .await;
    let repeat = app
        .publish_ok(&json!({"event_type": "stats", "source": "edge", "id": id}))
        .await;
    assert_eq!(repeat["events"][0]["duplicate"], true);

    let scrape = app.scrape().await;
    let ingested = |category: &str, source: &str| {
        scrape.value(
            "switchyard_events_ingested_total",
            &[("category", category), ("source", source)],
        )
    };
    assert_eq!(ingested("performance", "billing"), Some(2.0));
    assert_eq!(ingested("critical", "billing"), Some(1.0));
    assert_eq!(
        ingested("system", "edge"),
        Some(1.0),
        "the repeat is not counted"
    );
    let published = [("path", "websocket"), ("outcome", "published")];
    assert_eq!(
        scrape.value("switchyard_broadcast_events_total", &published),
        Some(4.0)
    );
    assert_eq!(scrape.value("switchyard_hub_head_offset", &[]), Some(4.0));
}

#[tokio::test]
async fn sources_past_the_first_hundred_are_counted_as_other() {
    let app = spawn_app().await;
    let batch: Vec<Value> = (0..103)
        .map(|n| event("stats", &format!("svc-{n:03}")))
        .collect();
    app.publish_ok(&Value::Array(batch)).await;
    let scrape = app.scrape().await;
    assert_eq!(scrape.series("switchyard_events_ingested_total"), 101);
    let other = [("category", "system"), ("source", "other")];
    assert_eq!(
        scrape.value("switchyard_events_ingested_total", &other),
        Some(3.0)
    );
    let first = [("category", "system"), ("source", "svc-000")];
    assert_eq!(
        scrape.value("switchyard_events_ingested_total", &first),
        Some(1.0)
    );
}

#[tokio::test]
async fn subscribers_are_counted_by_protocol_while_connected_and_in_total() {
    let app = spawn_app().await;
    let ws = app.subscribe_all().await;
    let (legacy, _) = app.connect_legacy().await;
    let (sse, _) = app.stream("").await;
    let scrape = app.scrape().await;
    for protocol in ["ws", "sse", "legacy_ws"] {
        let labels = [("protocol", protocol)];
        assert_eq!(
            scrape.value("switchyard_subscribers", &labels),
            Some(1.0),
            "{protocol}"
        );
        assert_eq!(
            scrape.value("switchyard_subscriptions_total", &labels),
            Some(1.0),
            "{protocol}"
        );
    }
    drop((ws, legacy, sse));
    let scrape = app
        .scrape_until("every subscriber gone", |s| {
            ["ws", "sse", "legacy_ws"]
                .iter()
                .all(|p| s.value("switchyard_subscribers", &[("protocol", p)]) == Some(0.0))
        })
        .await;
    let total = [("protocol", "ws")];
    assert_eq!(
        scrape.value("switchyard_subscriptions_total", &total),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_forced_breaker_shows_its_state_and_the_transition() {
    let app = spawn_app().await;
    let state = |s: &Scrape, state: &str| {
        s.value(
            "switchyard_breaker_state",
            &[("breaker", "realtime"), ("state", state)],
        )
    };
    let before = app.scrape().await;
    assert_eq!(state(&before, "closed"), Some(1.0));
    assert_eq!(state(&before, "forced_open"), Some(0.0));

    app.force_breaker_open("maintenance").await;
    let transition = [
        ("breaker", "realtime"),
        ("from", "closed"),
        ("to", "forced_open"),
    ];
    let after = app
        .scrape_until("the transition counted", |s| {
            s.value("switchyard_breaker_transitions_total", &transition)
                .is_some()
        })
        .await;
    assert_eq!(
        after.value("switchyard_breaker_transitions_total", &transition),
        Some(1.0)
    );
    assert_eq!(state(&after, "forced_open"), Some(1.0));
    assert_eq!(state(&after, "closed"), Some(0.0));
    let failure_rate = after.value(
        "switchyard_breaker_failure_rate",
        &[("breaker", "realtime")],
    );
    assert_eq!(failure_rate, Some(0.0));
}

#[tokio::test]
async fn a_flipped_flag_is_counted_and_its_evaluations_by_flag_and_reason() {
    let app = spawn_app().await;
    app.admin_request(
        Method::POST,
        "/v1/flags",
        json!({"key": "metrics-demo", "type": "boolean", "description": "for the metrics test"}),
    )
    .await;
    let flipped = app
        .admin_request(
            Method::POST,
            "/v1/flags/metrics-demo/environments/production/on",
            Value::Null,
        )
        .await;
    assert_eq!(flipped["key"], "metrics-demo");
    let scrape = app
        .scrape_until("the flip counted", |s| {
            s.value("switchyard_flag_changes_total", &[("flag", "metrics-demo")]) == Some(2.0)
        })
        .await;
    let revision = scrape
        .value("switchyard_flags_revision", &[])
        .expect("a revision");
    assert!(
        revision >= 2.0,
        "create and flip each make a revision: {revision}"
    );
    assert_eq!(
        scrape.value("switchyard_flags_snapshot_stale", &[]),
        Some(0.0)
    );

    let request =
        json!({"context": {"targeting_key": "dash-1"}, "flags": ["metrics-demo", "no-such-flag"]});
    for _ in 0..2 {
        app.admin_request(Method::POST, "/v1/evaluate", request.clone())
            .await;
    }
    let scrape = app.scrape().await;
    let evaluations = |flag: &str, reason: &str| {
        scrape.value(
            "switchyard_flag_evaluations_total",
            &[("flag", flag), ("reason", reason)],
        )
    };
    assert_eq!(evaluations("metrics-demo", "STATIC"), Some(2.0));
    assert_eq!(
        evaluations("unknown", "ERROR"),
        Some(2.0),
        "a missing key is `unknown`"
    );
    assert!(
        !scrape.text.contains("no-such-flag"),
        "client keys never become labels"
    );
}

#[tokio::test]
async fn http_requests_are_labelled_by_route_template_never_the_raw_path() {
    let app = spawn_app().await;
    app.admin_request(
        Method::POST,
        "/v1/flags",
        json!({"key": "route-demo", "type": "boolean", "description": "for the route test"}),
    )
    .await;
    for _ in 0..3 {
        let response = app.get("/v1/flags/route-demo", app.admin()).await;
        assert_eq!(response.status().as_u16(), 200);
    }
    let missing = app.get("/no/such/page", app.admin()).await;
    assert_eq!(missing.status().as_u16(), 404);

    let scrape = app.scrape().await;
    let route = [("method", "GET"), ("route", "/v1/flags/{key}")];
    let ok = [
        ("method", "GET"),
        ("route", "/v1/flags/{key}"),
        ("status", "200"),
    ];
    assert_eq!(
        scrape.value("switchyard_http_requests_total", &ok),
        Some(3.0)
    );
    assert_eq!(
        scrape.value("switchyard_http_request_duration_seconds_count", &route),
        Some(3.0)
    );
    let inf = [
        ("method", "GET"),
        ("route", "/v1/flags/{key}"),
        ("le", "+Inf"),
    ];
    assert_eq!(
        scrape.value("switchyard_http_request_duration_seconds_bucket", &inf),
        Some(3.0)
    );
    let unmatched = [("route", "unmatched"), ("status", "404")];
    assert_eq!(
        scrape.value("switchyard_http_requests_total", &unmatched),
        Some(1.0)
    );
    let http_lines = scrape
        .text
        .lines()
        .filter(|line| line.starts_with("switchyard_http_"));
    for line in http_lines {
        assert!(
            !line.contains("route-demo") && !line.contains("/no/such"),
            "{line}"
        );
    }
}

#[tokio::test]
async fn events_routed_to_realtime_show_as_written_with_their_write_latency() {
    let app = spawn_app_with(|config| config.legacy.use_realtime = Some(true)).await;
    let batch: Vec<Value> = (0..5).map(|n| event("error", &format!("r{n}"))).collect();
    app.publish_ok(&Value::Array(batch)).await;
    let written = [("path", "realtime"), ("outcome", "written")];
    let scrape = app
        .scrape_until("five events written to Realtime", |s| {
            s.value("switchyard_broadcast_events_total", &written) == Some(5.0)
        })
        .await;
    let writes = scrape.value("switchyard_realtime_write_duration_seconds_count", &[]);
    assert!(writes.is_some_and(|n| n >= 1.0), "{writes:?}");
    assert_eq!(
        scrape.value("switchyard_realtime_target_up", &[]),
        Some(1.0)
    );
    assert_eq!(
        scrape.value("switchyard_realtime_backlog_depth", &[]),
        Some(0.0)
    );
    let low = [("class", "low")];
    assert!(
        scrape
            .value("switchyard_realtime_batch_size", &low)
            .is_some_and(|n| n >= 1.0)
    );
}

#[tokio::test]
async fn validation_families_are_listed_before_the_validator_runs_and_carry_its_figures() {
    let app = spawn_app().await;
    let before = app.scrape().await;
    assert_eq!(
        before
            .types
            .get("switchyard_validation_consistency_ratio")
            .map(String::as_str),
        Some("gauge")
    );
    assert_eq!(before.series("switchyard_validation_consistency_ratio"), 0);
    // The validator feeds them; tests/api/consistency.rs checks the figures end to end.
    for family in [
        "switchyard_validation_discrepancies",
        "switchyard_validation_compared_events",
        "switchyard_validation_alerting",
        "switchyard_validation_alerts",
    ] {
        let listed = [family.to_string(), format!("{family}_total")]
            .iter()
            .any(|name| before.types.contains_key(name));
        assert!(listed, "{family} is not listed: {:?}", before.types.keys());
    }
}

#[tokio::test]
async fn with_metrics_auth_a_scrape_needs_a_read_key() {
    let app = spawn_app_with(|config| config.metrics_auth = true).await;
    let anonymous = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("GET");
    assert_problem(anonymous, 401).await;
    let publisher = app.create_key(Scope::Publish).await;
    let wrong_scope = app
        .get("/metrics", Credential::Bearer(&publisher.key))
        .await;
    assert_problem(wrong_scope, 403).await;
    let reader = app.create_key(Scope::Read).await;
    let served = app.get("/metrics", Credential::Bearer(&reader.key)).await;
    assert_eq!(served.status().as_u16(), 200);
    let text = served.text().await.expect("a body");
    assert!(
        text.contains("# TYPE switchyard_breaker_state gauge"),
        "{text}"
    );
}
