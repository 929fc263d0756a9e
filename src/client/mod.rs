//! The client side of the CLI: how commands reach a running switchyard, and the commands
//! that talk to it (`tail`, `flags`).

pub mod flags;
pub mod tail;

use clap::Args;
use serde_json::Value;

pub use tail::{TailArgs, tail};

/// Where a CLI command finds the server, and the key it presents.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Base URL of a running switchyard.
    #[arg(long, env = "SWITCHYARD_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API key (read scope for tail).
    #[arg(long, env = "SWITCHYARD_KEY", hide_env_values = true)]
    pub key: Option<String>,
}

/// `http(s)://host/base` -> `ws(s)://host/base{path}`.
pub fn ws_url(base: &str, path: &str) -> anyhow::Result<String> {
    let base = base.trim_end_matches('/');
    let rest = base
        .strip_prefix("http://")
        .map(|r| format!("ws://{r}"))
        .or_else(|| base.strip_prefix("https://").map(|r| format!("wss://{r}")))
        .or_else(|| {
            (base.starts_with("ws://") || base.starts_with("wss://")).then(|| base.to_string())
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--url must start with http://, https://, ws:// or wss:// (got `{base}`)"
            )
        })?;
    Ok(format!("{rest}{path}"))
}

impl ServerArgs {
    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("a default HTTP client builds")
    }

    /// Sends a request with the key; returns the JSON body, or an error naming the server's
    /// problem detail.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        let mut request = Self::client().request(method, &url);
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {}: {e}", self.url))?;
        let status = response.status();
        let text = response.text().await?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            Ok(value)
        } else {
            let detail = value
                .get("detail")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| value.to_string());
            let fields: Vec<String> = value
                .get("errors")
                .and_then(Value::as_array)
                .map(|errors| {
                    errors
                        .iter()
                        .map(|e| {
                            format!(
                                "{}: {}",
                                e["field"].as_str().unwrap_or(""),
                                e["message"].as_str().unwrap_or("")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            if fields.is_empty() {
                anyhow::bail!("{status}: {detail}")
            } else {
                anyhow::bail!("{status}: {detail}\n  {}", fields.join("\n  "))
            }
        }
    }
}
