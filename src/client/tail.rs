//! `switchyard tail`: subscribe over `/v1/ws` and print events as lines.

use clap::Args;

use super::output::{BAD, DIM, line, paint};
use super::{ServerArgs, ws_url};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Only these event types (repeat or comma-separate).
    #[arg(long = "event-type", value_delimiter = ',')]
    pub event_types: Vec<String>,
    /// Only these categories.
    #[arg(long = "category", value_delimiter = ',')]
    pub categories: Vec<String>,
    /// Only these sources.
    #[arg(long = "source", value_delimiter = ',')]
    pub sources: Vec<String>,
    /// Resume after a position, `EPOCH:OFFSET`.
    #[arg(long)]
    pub since: Option<String>,
    /// Print each frame as JSON instead of a line.
    #[arg(long)]
    pub json: bool,
    /// Exit after this many events.
    #[arg(long)]
    pub count: Option<u64>,
}

pub async fn tail(args: TailArgs) -> anyhow::Result<()> {
    let mut request = ws_url(&args.server.url, "/v1/ws")?.into_client_request()?;
    if let Some(key) = args.server.api_key() {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {key}").parse()?);
    }
    let tls = Some(args.server.websocket_tls()?);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, tls)
            .await
            .map_err(|e| anyhow::anyhow!("cannot subscribe at {}: {e}", args.server.url))?;
    let since = match &args.since {
        Some(raw) => {
            let (epoch, offset) = raw
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("--since takes EPOCH:OFFSET"))?;
            json!({"epoch": epoch, "offset": offset.parse::<u64>()?})
        }
        None => Value::Null,
    };
    let subscribe = json!({"op": "subscribe", "since": since, "filter": {
        "event_types": args.event_types, "categories": args.categories, "sources": args.sources}});
    socket.send(Message::text(subscribe.to_string())).await?;
    let mut seen = 0u64;
    while let Some(message) = socket.next().await {
        let text = match message? {
            Message::Text(text) => text,
            Message::Close(frame) => {
                let why = frame
                    .map(|f| format!("{} {}", f.code, f.reason))
                    .unwrap_or_default();
                eprintln!("server closed the stream {why}");
                break;
            }
            _ => continue,
        };
        let frame: Value = serde_json::from_str(&text)?;
        if args.json {
            line(&text)?;
        } else {
            print_frame(&frame)?;
        }
        if frame["op"] == "event" {
            seen += 1;
            if args.count.is_some_and(|n| seen >= n) {
                break;
            }
        }
    }
    Ok(())
}

fn print_frame(frame: &Value) -> std::io::Result<()> {
    match frame["op"].as_str() {
        Some("event") => {
            let e = &frame["event"];
            let category = e["category"].as_str().unwrap_or("");
            // Critical events stand out and debug ones recede; padded before the colour.
            let style = match category {
                "critical" => BAD,
                "debug" => DIM,
                _ => anstyle::Style::new(),
            };
            line(format_args!(
                "{:>8}  {}  {} {:<24} {:<20} {}",
                // A `Value` ignores the width; its text does not.
                frame["offset"].to_string(),
                e["timestamp"].as_str().unwrap_or(""),
                paint(&format!("{category:<13}"), style),
                e["event_type"].as_str().unwrap_or(""),
                e["source"].as_str().unwrap_or(""),
                e["data"]
            ))?;
        }
        Some("subscribed") => eprintln!(
            "subscribed at {}:{} (recovered: {})",
            frame["epoch"].as_str().unwrap_or(""),
            frame["offset"],
            frame["recovered"]
        ),
        Some("lagged") => eprintln!("lagged: missed {} events", frame["missed"]),
        _ => eprintln!("{frame}"),
    }
    Ok(())
}
