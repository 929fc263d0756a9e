//! `switchyard breaker ...`: the circuit breakers from a terminal — their state, a live watch
//! of transitions and samples, and the operator actions (`force-open`, `force-closed`,
//! `disable`, `reset`, `auto`), all through `/v1/breakers`.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::output::{self, Table, cell, line, paint, print_json, state_style, styled, text_of};
use super::{ServerArgs, ServerError};

mod watch;

#[derive(Debug, Args)]
pub struct BreakerArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Print the server's JSON instead of a table (`watch`: one JSON object per line).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: BreakerCommand,
}

#[derive(Debug, Subcommand)]
pub enum BreakerCommand {
    /// Every breaker's state, or one breaker's.
    Status { name: Option<String> },
    /// Follow the breakers live: a line per transition and per breaker each second, until Ctrl-C.
    Watch {
        name: Option<String>,
        /// Only transitions, not the once-a-second samples.
        #[arg(long)]
        transitions_only: bool,
    },
    /// Reject every call until another action (needs an admin key).
    ForceOpen(Action),
    /// Admit every call, record outcomes, never trip, until another action.
    ForceClosed(Action),
    /// Admit every call and record nothing.
    Disable(Action),
    /// Closed under the policy, counters cleared.
    Reset(Action),
    /// Hand the breaker back to its policy from a forced or disabled state.
    Auto(Action),
}

#[derive(Debug, Args)]
pub struct Action {
    /// The breaker (`switchyard breaker status` lists them).
    pub name: String,
    /// Why, recorded in the breaker's history.
    #[arg(long)]
    pub reason: Option<String>,
}

pub async fn run(args: BreakerArgs) -> anyhow::Result<()> {
    let server = &args.server;
    let (action, target) = match &args.command {
        BreakerCommand::Status { name } => return status(server, name.as_deref(), args.json).await,
        BreakerCommand::Watch {
            name,
            transitions_only,
        } => return watch::run(server, name.as_deref(), *transitions_only, args.json).await,
        BreakerCommand::ForceOpen(target) => ("force_open", target),
        BreakerCommand::ForceClosed(target) => ("force_closed", target),
        BreakerCommand::Disable(target) => ("disable", target),
        BreakerCommand::Reset(target) => ("reset", target),
        BreakerCommand::Auto(target) => ("auto", target),
    };
    let body = json!({"action": action, "reason": target.reason});
    let path = format!("/v1/breakers/{}", encode(&target.name));
    let after = match server.request(Method::POST, &path, Some(body)).await {
        Ok(after) => after,
        Err(e) => return Err(unknown_breaker(server, e).await),
    };
    if args.json {
        return print_json(&after);
    }
    Ok(print_statuses(std::slice::from_ref(&after))?)
}

async fn status(server: &ServerArgs, name: Option<&str>, json: bool) -> anyhow::Result<()> {
    let result = match name {
        Some(name) => {
            let path = format!("/v1/breakers/{}", encode(name));
            match server.request(Method::GET, &path, None).await {
                Ok(status) => status,
                Err(e) => return Err(unknown_breaker(server, e).await),
            }
        }
        None => server.request(Method::GET, "/v1/breakers", None).await?,
    };
    if json {
        return print_json(&result);
    }
    match (result, name) {
        (Value::Array(all), _) => print_statuses(&all)?,
        (one, Some(name)) => {
            print_statuses(std::slice::from_ref(&one))?;
            print_recent_transitions(server, name).await?;
        }
        (one, None) => print_statuses(std::slice::from_ref(&one))?,
    }
    Ok(())
}

/// The last few transitions of one breaker, from its history. The history lives in the
/// control store; when that is down the status above still stands, so this only says so.
async fn print_recent_transitions(server: &ServerArgs, name: &str) -> std::io::Result<()> {
    const RECENT: usize = 5;
    let path = format!("/v1/breakers/{}/transitions?limit={RECENT}", encode(name));
    let rows = match server.request(Method::GET, &path, None).await {
        Ok(Value::Array(rows)) => rows,
        Ok(_) => Vec::new(),
        Err(e) => return line(paint(&format!("\nhistory unavailable: {e}"), output::DIM)),
    };
    if rows.is_empty() {
        return line(paint("\nno transitions recorded yet", output::DIM));
    }
    line("")?;
    let mut table = Table::new(&["AT", "FROM", "TO", "REASON", "BY"]);
    for row in &rows {
        let (from, to) = (
            row["from"].as_str().unwrap_or(""),
            row["to"].as_str().unwrap_or(""),
        );
        table.row(vec![
            cell(short_time(&row["at"])),
            styled(from, state_style(from)),
            styled(to, state_style(to)),
            cell(text_of(&row["reason"])),
            cell(text_of(&row["actor"])),
        ]);
    }
    table.print()
}

fn print_statuses(statuses: &[Value]) -> std::io::Result<()> {
    let mut table = Table::new(&[
        "BREAKER",
        "STATE",
        "MODE",
        "SINCE",
        "FAILURES",
        "FAILURE RATE",
        "OK/FAIL/TIMEOUT/REJECTED",
        "P99",
        "NEXT PROBE",
    ])
    .right(&[4, 5, 7]);
    for s in statuses {
        let state = s["state"].as_str().unwrap_or("");
        table.row(vec![
            cell(text_of(&s["name"])),
            styled(state, state_style(state)),
            cell(text_of(&s["mode"])),
            cell(short_time(&s["since"])),
            cell(text_of(&s["consecutive_failures"])),
            cell(failure_rate(s)),
            cell(calls(s)),
            cell(p99(s)),
            cell(short_time(&s["next_probe_at"])),
        ]);
    }
    table.print()
}

/// A 404 for a named breaker, with the names that do exist.
pub(super) async fn unknown_breaker(server: &ServerArgs, error: anyhow::Error) -> anyhow::Error {
    let Some(refused) = error.downcast_ref::<ServerError>() else {
        return error;
    };
    if refused.status != 404 {
        return error;
    }
    let known = match server.request(Method::GET, "/v1/breakers", None).await {
        Ok(Value::Array(all)) => all.iter().map(|b| text_of(&b["name"])).collect(),
        _ => Vec::new(),
    };
    anyhow::anyhow!("{refused} (known breakers: {})", known.join(", "))
}

pub(super) fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

/// `2025-10-18T12:00:00.123456Z` -> `2025-10-18T12:00:00Z`; `-` for none.
pub(super) fn short_time(value: &Value) -> String {
    match value
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    {
        Some(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        None => output::text_of(value),
    }
}

pub(super) fn failure_rate(s: &Value) -> String {
    let rate = s["failure_rate"].as_f64().unwrap_or(0.0) * 100.0;
    format!("{rate:.1}% of {}", text_of(&s["window_calls"]))
}

pub(super) fn calls(s: &Value) -> String {
    let c = &s["calls"];
    format!(
        "{}/{}/{}/{}",
        text_of(&c["success"]),
        text_of(&c["failure"]),
        text_of(&c["timeout"]),
        text_of(&c["rejected"])
    )
}

pub(super) fn p99(s: &Value) -> String {
    match s["latency_ms"]["p99"].as_f64() {
        Some(ms) => format!("{ms:.1} ms"),
        None => "-".into(),
    }
}
