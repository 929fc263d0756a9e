//! `switchyard breaker watch`: follows `/v1/breakers/stream` and prints a line per transition
//! and, each second, a line per breaker (its state, failures and calls), until Ctrl-C.

use reqwest::Method;
use serde_json::{Value, json};

use super::{calls, encode, failure_rate, p99, short_time, unknown_breaker};
use crate::client::ServerArgs;
use crate::client::output::{line, paint, state_style, text_of};
use crate::client::sse::SseReader;

/// Follows `/v1/breakers/stream` until Ctrl-C or the server ends it.
pub async fn run(
    server: &ServerArgs,
    name: Option<&str>,
    transitions_only: bool,
    json: bool,
) -> anyhow::Result<()> {
    if let Some(name) = name {
        // Fail with "no breaker `x`" now rather than print nothing forever.
        let path = format!("/v1/breakers/{}", encode(name));
        if let Err(e) = server.request(Method::GET, &path, None).await {
            return Err(unknown_breaker(server, e).await);
        }
    }
    let mut stream = SseReader::new(server.open_stream("/v1/breakers/stream").await?);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let event = tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            event = stream.next() => match event? {
                Some(event) => event,
                None => {
                    eprintln!("the server ended the stream");
                    return Ok(());
                }
            },
        };
        let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
        let wanted = |breaker: &Value| name.is_none_or(|n| breaker.as_str() == Some(n));
        match event.event.as_str() {
            "transition" if wanted(&data["breaker"]) => {
                if json {
                    line(json!({"event": "transition", "data": data}))?;
                } else {
                    print_transition(&data)?;
                }
            }
            "state" | "sample" if transitions_only => {}
            "state" if wanted(&data["name"]) => {
                if json {
                    line(json!({"event": "state", "data": data}))?;
                } else {
                    print_sample_line(&data)?;
                }
            }
            "sample" => {
                let breakers: Vec<&Value> = data["breakers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|b| wanted(&b["name"]))
                    .collect();
                if json {
                    line(json!({"event": "sample", "data": {"breakers": breakers}}))?;
                } else {
                    for breaker in breakers {
                        print_sample_line(breaker)?;
                    }
                }
            }
            _ => {}
        }
    }
}

fn print_transition(t: &Value) -> std::io::Result<()> {
    let (from, to) = (
        t["from"].as_str().unwrap_or(""),
        t["to"].as_str().unwrap_or(""),
    );
    let by = t["actor"]
        .as_str()
        .map(|actor| format!(" (by {actor})"))
        .unwrap_or_default();
    line(format_args!(
        "{}  {:<12}  {} -> {}  {}{by}",
        short_time(&t["at"]),
        text_of(&t["breaker"]),
        paint(from, state_style(from)),
        paint(&format!("{to:<13}"), state_style(to)),
        text_of(&t["reason"]),
    ))
}

fn print_sample_line(s: &Value) -> std::io::Result<()> {
    let state = s["state"].as_str().unwrap_or("");
    line(format_args!(
        "{}  {:<12}  {}  failures {:<3} rate {:<14} calls {:<20} p99 {}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
        text_of(&s["name"]),
        paint(&format!("{state:<13}"), state_style(state)),
        text_of(&s["consecutive_failures"]),
        failure_rate(s),
        calls(s),
        p99(s),
    ))
}
