//! `switchyard send`: publish events from arguments, a file or stdin.
//!
//! The input is read and parsed whole before anything is sent, so malformed JSON anywhere
//! publishes nothing. It may be a JSON array, one object, or NDJSON (any sequence of JSON
//! values, one per line or not); each event remembers where it came from (`line N` or
//! `index N`) so a refusal names the input position, not the position in a request. Events go
//! out in order, in batches within the server's limits (1,000 events, 1 MiB), one request at a
//! time so offsets follow the input. A refused batch stops the run: the server refuses a batch
//! whole, so the batches before it are published and nothing of it or after it is.

use std::io::IsTerminal;
use std::ops::Range;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use super::batch::{Item, Origin, batches, parse_items};
use super::output::{line, print_json};
use super::{ServerArgs, ServerError};

#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// A file of events: a JSON array, one object, or NDJSON; `-` (or nothing, with input on
    /// stdin) reads stdin.
    #[arg(conflicts_with = "event_type")]
    pub file: Option<PathBuf>,
    /// One event from arguments: its type (with --source).
    #[arg(long = "type", requires = "source")]
    pub event_type: Option<String>,
    /// Its source.
    #[arg(long, requires = "event_type")]
    pub source: Option<String>,
    /// Its data, a JSON object.
    #[arg(long, requires = "event_type", value_parser = parse_json)]
    pub data: Option<Value>,
    /// Its metadata, a JSON object.
    #[arg(long, requires = "event_type", value_parser = parse_json)]
    pub metadata: Option<Value>,
    /// Its id, a UUID of your choosing (a repeat within the idempotency window is not
    /// broadcast again).
    #[arg(long, requires = "event_type")]
    pub id: Option<String>,
    /// Print the receipts (`{"accepted", "events": [{"id", "offset"}]}`) as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_json(raw: &str) -> Result<Value, String> {
    serde_json::from_str(raw).map_err(|e| format!("not valid JSON: {e}"))
}

pub async fn run(args: SendArgs) -> anyhow::Result<()> {
    let items = read_items(&args).await?;
    if items.is_empty() {
        anyhow::bail!("the input holds no events");
    }
    let batches = batches(&items);
    let progress = progress_bar(items.len(), batches.len());
    let mut receipts: Vec<Value> = Vec::with_capacity(items.len());
    for (n, range) in batches.iter().enumerate() {
        let body = format!(
            "[{}]",
            items[range.clone()]
                .iter()
                .map(|item| item.json.get())
                .collect::<Vec<_>>()
                .join(",")
        );
        match post_batch(&args.server, body, n, &progress).await {
            Ok(reply) => {
                receipts.extend(reply["events"].as_array().into_iter().flatten().cloned());
                progress.inc(range.len() as u64);
            }
            Err(error) => {
                progress.abandon();
                return Err(refused(error, &items, range, n, receipts.len()));
            }
        }
    }
    progress.finish_and_clear();
    if args.json {
        return print_json(&json!({"accepted": receipts.len(), "events": receipts}));
    }
    let duplicates = receipts.iter().filter(|r| r["duplicate"] == true).count();
    let offsets = match (receipts.first(), receipts.last()) {
        (Some(first), Some(last)) => format!(", offsets {} to {}", first["offset"], last["offset"]),
        _ => String::new(),
    };
    line(format_args!(
        "accepted {} event{} in {} request{}{offsets}{}",
        receipts.len(),
        if receipts.len() == 1 { "" } else { "s" },
        batches.len(),
        if batches.len() == 1 { "" } else { "s" },
        if duplicates > 0 {
            format!(" ({duplicates} repeated a recent id and were not broadcast again)")
        } else {
            String::new()
        }
    ))?;
    Ok(())
}

async fn read_items(args: &SendArgs) -> anyhow::Result<Vec<Item>> {
    if let (Some(event_type), Some(source)) = (&args.event_type, &args.source) {
        let mut event = json!({"event_type": event_type, "source": source});
        for (field, value) in [("data", &args.data), ("metadata", &args.metadata)] {
            if let Some(value) = value {
                event[field] = value.clone();
            }
        }
        if let Some(id) = &args.id {
            event["id"] = json!(id);
        }
        let json = RawValue::from_string(event.to_string())?;
        return Ok(vec![Item {
            json,
            origin: Origin::Arguments,
        }]);
    }
    let text = match args.file.as_deref() {
        Some(path) if path.as_os_str() != "-" => tokio::fs::read_to_string(path)
            .await
            .with_context(|| format!("cannot read {}", path.display()))?,
        _ => {
            if std::io::stdin().is_terminal() {
                anyhow::bail!(
                    "nothing to send: give --type and --source, a FILE, or pipe events on stdin"
                );
            }
            let mut text = String::new();
            tokio::io::stdin()
                .read_to_string(&mut text)
                .await
                .context("cannot read stdin")?;
            text
        }
    };
    parse_items(&text)
}

/// How often a batch the server shed is tried again. A 503 (at its concurrency limit, or its
/// key store unreachable) comes before any event is taken, so a retry cannot publish twice.
const RETRIES: u32 = 5;

async fn post_batch(
    server: &ServerArgs,
    body: String,
    batch: usize,
    progress: &ProgressBar,
) -> anyhow::Result<Value> {
    let mut attempt = 0;
    loop {
        let error = match server.post_json_text("/v1/events", body.clone()).await {
            Ok(reply) => return Ok(reply),
            Err(error) => error,
        };
        let wait = error
            .downcast_ref::<ServerError>()
            .filter(|refusal| refusal.status == 503)
            .map(|refusal| refusal.retry_after.unwrap_or(1).clamp(1, 10));
        match wait {
            Some(wait) if attempt < RETRIES => {
                attempt += 1;
                progress.suspend(|| {
                    eprintln!(
                        "the server is busy (503); sending batch {} again in {wait} s ({attempt}/{RETRIES})",
                        batch + 1
                    )
                });
                tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
            }
            _ => return Err(error),
        }
    }
}

/// A bar on stderr for inputs of more than one request, when stderr is a terminal.
fn progress_bar(events: usize, requests: usize) -> ProgressBar {
    if requests < 2 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(events as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} events  {rate}  eta {eta}")
    {
        bar.set_style(style.with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} events/s", state.per_sec());
            },
        ));
    }
    bar
}

/// The error for a refused batch: what the server said, each bad field at its input position,
/// and what was published before it.
fn refused(
    error: anyhow::Error,
    items: &[Item],
    range: &Range<usize>,
    batch: usize,
    published: usize,
) -> anyhow::Error {
    let before = match published {
        0 => "nothing was published".to_string(),
        n => format!("the {n} events before it were published"),
    };
    let Some(refusal) = error.downcast_ref::<ServerError>() else {
        return error.context(format!("batch {} failed; {before}", batch + 1));
    };
    let span = match (items.get(range.start), items.get(range.end - 1)) {
        (Some(first), Some(last)) if range.len() > 1 => {
            format!("{} to {}", first.origin, last.origin)
        }
        (Some(first), _) => first.origin.to_string(),
        _ => String::new(),
    };
    let mut message = format!(
        "{}\nnothing of batch {} ({span}) was published; {before}",
        refusal.summary(),
        batch + 1
    );
    for field in &refusal.fields {
        let at = field
            .index
            .and_then(|i| items.get(range.start + i))
            .map(|item| item.origin.to_string())
            .unwrap_or_else(|| format!("batch {}", batch + 1));
        message.push_str(&format!("\n  {at}: {}: {}", field.field, field.message));
    }
    anyhow::anyhow!(message)
}
