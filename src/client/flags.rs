//! `switchyard flags ...`: read and flip flags on a running server.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::ServerArgs;
use super::output::{DIM, GOOD, Table, cell, line, styled, text_of};

#[derive(Debug, Args)]
pub struct FlagsArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// The environment to change (default: the server's).
    #[arg(long, global = true, default_value = "production")]
    pub env: String,
    /// A reason, recorded in the audit log.
    #[arg(long, global = true)]
    pub reason: Option<String>,
    #[command(subcommand)]
    pub command: FlagsCommand,
}

#[derive(Debug, Subcommand)]
pub enum FlagsCommand {
    /// Every flag with its state in the environment.
    List,
    /// One flag.
    Get { key: String },
    /// Turn a flag on in the environment.
    On { key: String },
    /// Turn a flag off in the environment (the kill switch).
    Off { key: String },
    /// Set the rollout percentage (0-100).
    Rollout { key: String, percentage: f64 },
    /// The audit log of a flag, newest first.
    History { key: String },
}

pub async fn run(args: FlagsArgs) -> anyhow::Result<()> {
    let server = &args.server;
    let env = &args.env;
    let reason = args
        .reason
        .as_deref()
        .map(|r| {
            format!(
                "?reason={}",
                url::form_urlencoded::byte_serialize(r.as_bytes()).collect::<String>()
            )
        })
        .unwrap_or_default();
    let result = match &args.command {
        FlagsCommand::List => server.request(Method::GET, "/v1/flags", None).await?,
        FlagsCommand::Get { key } => {
            server
                .request(Method::GET, &format!("/v1/flags/{key}"), None)
                .await?
        }
        FlagsCommand::On { key } => {
            server
                .request(
                    Method::POST,
                    &format!("/v1/flags/{key}/environments/{env}/on{reason}"),
                    None,
                )
                .await?
        }
        FlagsCommand::Off { key } => {
            server
                .request(
                    Method::POST,
                    &format!("/v1/flags/{key}/environments/{env}/off{reason}"),
                    None,
                )
                .await?
        }
        FlagsCommand::Rollout { key, percentage } => {
            // Keep the rollout's variant and weights; change the percentage only.
            let current = server
                .request(Method::GET, &format!("/v1/flags/{key}"), None)
                .await?;
            let mut rollout = current["environments"][env.as_str()]["rollout"].clone();
            if !rollout.is_object() {
                rollout = json!({});
            }
            rollout["percentage"] = json!(percentage);
            if let Some(reason) = &args.reason {
                rollout["reason"] = json!(reason);
            }
            server
                .request(
                    Method::PUT,
                    &format!("/v1/flags/{key}/environments/{env}/rollout"),
                    Some(rollout),
                )
                .await?
        }
        FlagsCommand::History { key } => {
            server
                .request(Method::GET, &format!("/v1/flags/{key}/history"), None)
                .await?
        }
    };
    if args.json {
        return super::output::print_json(&result);
    }
    match &args.command {
        FlagsCommand::List => {
            let flags: Vec<&Value> = result["flags"].as_array().into_iter().flatten().collect();
            print_table(&flags, env)?;
            line(format_args!(
                "revision {}{}",
                result["revision"],
                if result["stale"] == json!(true) {
                    " (stale)"
                } else {
                    ""
                }
            ))?;
        }
        FlagsCommand::History { .. } => {
            let mut table = Table::new(&["VER", "AT", "ACTION", "ACTOR", "REASON"]).right(&[0]);
            for row in result.as_array().into_iter().flatten() {
                table.row(vec![
                    cell(format!("v{}", text_of(&row["version"]))),
                    cell(text_of(&row["created_at"])),
                    cell(text_of(&row["action"])),
                    cell(text_of(&row["actor"])),
                    cell(row["reason"].as_str().unwrap_or("")),
                ]);
            }
            table.print()?;
        }
        _ => print_table(&[&result], env)?,
    }
    Ok(())
}

/// The flags in `env`: on in green, off dimmed.
fn print_table(flags: &[&Value], env: &str) -> std::io::Result<()> {
    let mut table = Table::new(&[
        "KEY",
        "TYPE",
        "ON",
        "ROLLOUT",
        "SOURCE",
        "VER",
        "DESCRIPTION",
    ])
    .right(&[3, 5]);
    for flag in flags {
        let state = &flag["environments"][env];
        let on = if state["enabled"] == json!(true) {
            styled("on", GOOD)
        } else {
            styled("off", DIM)
        };
        let rollout = match state["rollout"]["percentage"].as_f64() {
            Some(p) => format!("{p}%"),
            None if state.is_null() => "-".to_string(),
            None => "100%".to_string(),
        };
        let description: String = flag["description"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(60)
            .collect::<String>()
            .trim_end()
            .to_string();
        table.row(vec![
            cell(text_of(&flag["key"])),
            cell(text_of(&flag["type"])),
            on,
            cell(rollout),
            cell(text_of(&flag["source"])),
            cell(text_of(&flag["version"])),
            cell(description),
        ]);
    }
    table.print()
}
