//! The Grafana dashboards in `dashboards/`: every panel query names only metrics that a
//! running switchyard exports, and every panel takes its data source from the `datasource`
//! variable, so a file imports as is into any Grafana with a Prometheus data source.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::spawn_app;

fn dashboard_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the dashboards folder")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel);
        if let Some(nested) = panel["panels"].as_array() {
            all.extend(nested);
        }
    }
    all
}

/// The metric names a PromQL expression reads: identifiers starting `switchyard_` outside
/// label matchers' quoted values.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_quotes = false;
    let mut word = String::new();
    for c in expr.chars().chain([' ']) {
        if c == '"' {
            in_quotes = !in_quotes;
        }
        if !in_quotes && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            word.push(c);
            continue;
        }
        if word.starts_with("switchyard_") {
            names.push(std::mem::take(&mut word));
        }
        word.clear();
    }
    names
}

/// The family a sample name belongs to: a histogram's `_bucket`, `_sum` and `_count` series
/// are its own name.
fn family<'a>(name: &'a str, histograms: &BTreeSet<String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && histograms.contains(base)
        {
            return base;
        }
    }
    name
}

#[test]
fn metric_names_are_read_from_promql_outside_quoted_label_values() {
    let expr = r#"histogram_quantile(0.99, sum by (le) (rate(switchyard_a_bucket{x="switchyard_no"}[5m]))) / switchyard_b"#;
    assert_eq!(metric_names(expr), ["switchyard_a_bucket", "switchyard_b"]);
}

#[tokio::test]
async fn every_dashboard_query_names_a_metric_that_metrics_exports() {
    let app = spawn_app().await;
    let scrape = app.scrape().await;
    let exported: BTreeSet<String> = scrape.types.keys().cloned().collect();
    let histograms: BTreeSet<String> = scrape
        .types
        .iter()
        .filter(|(_, kind)| kind.as_str() == "histogram")
        .map(|(name, _)| name.clone())
        .collect();
    let files = dashboard_files();
    assert!(
        files.len() >= 5,
        "overview, broadcast path, breaker, flags, validation: {files:?}"
    );
    let mut checked = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a dashboard file");
        let dashboard: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
        let variables = dashboard["templating"]["list"]
            .as_array()
            .expect("variables");
        let datasource = variables
            .iter()
            .find(|v| v["name"] == "datasource")
            .unwrap_or_else(|| panic!("{} has no datasource variable", file.display()));
        assert_eq!(datasource["type"], "datasource");
        assert_eq!(datasource["query"], "prometheus");
        for panel in panels(&dashboard) {
            if panel["type"] == "row" {
                continue;
            }
            let title = panel["title"].as_str().unwrap_or("?");
            let where_ = format!("{} / {title}", file.display());
            assert_eq!(panel["datasource"]["uid"], "${datasource}", "{where_}");
            let targets = panel["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{where_} has no query");
            for target in targets {
                assert_eq!(target["datasource"]["uid"], "${datasource}", "{where_}");
                let expr = target["expr"].as_str().expect("a PromQL expr");
                let names = metric_names(expr);
                assert!(
                    !names.is_empty(),
                    "{where_}: `{expr}` reads no switchyard metric"
                );
                for name in names {
                    let family = family(&name, &histograms);
                    assert!(
                        exported.contains(family),
                        "{where_}: `{name}` is not exported by /metrics"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 40, "only {checked} metric references checked");
}
