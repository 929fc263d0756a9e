//! `switchyard strategy`: where events go now — the global strategy, each category's route,
//! and the tier that decided each (a flag and its version, an environment pin, or the default).

use clap::Args;
use reqwest::Method;
use serde_json::Value;

use super::ServerArgs;
use super::output::{DIM, GOOD, HEADER, Table, cell, line, paint, print_json, styled, text_of};

#[derive(Debug, Args)]
pub struct StrategyArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Print the server's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: StrategyArgs) -> anyhow::Result<()> {
    let strategy = args
        .server
        .request(Method::GET, "/v1/strategy", None)
        .await?;
    if args.json {
        return print_json(&strategy);
    }
    line(format_args!(
        "{} {}  decided by {}  (flag revision {})",
        paint("strategy", HEADER),
        paint(&text_of(&strategy["strategy"]), GOOD),
        decided_by(&strategy["decided_by"]),
        text_of(&strategy["revision"]),
    ))?;
    let mut table =
        Table::new(&["CATEGORY", "ROUTE", "REALTIME %", "ADAPTERS", "DECIDED BY"]).right(&[2]);
    for route in strategy["categories"].as_array().into_iter().flatten() {
        let enabled = route["enabled"] == Value::Bool(true);
        let adapters: Vec<String> = route["adapters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text_of)
            .collect();
        table.row(vec![
            cell(text_of(&route["category"])),
            if enabled {
                styled("enabled", GOOD)
            } else {
                styled("disabled", DIM)
            },
            cell(format!("{}%", text_of(&route["percentage"]))),
            cell(if adapters.is_empty() {
                "-".to_string()
            } else {
                adapters.join(",")
            }),
            cell(decided_by(&route["decided_by"])),
        ]);
    }
    Ok(table.print()?)
}

/// `flag v3`, `env SWITCHYARD_FLAG_BROADCAST_STRATEGY`, `default`.
fn decided_by(tier: &Value) -> String {
    match (tier["tier"].as_str(), &tier["version"], &tier["variable"]) {
        (Some("flag"), Value::Number(version), _) => format!("flag v{version}"),
        (Some("env"), _, Value::String(variable)) => format!("env {variable}"),
        (Some(other), _, _) => other.to_string(),
        (None, _, _) => "-".into(),
    }
}
