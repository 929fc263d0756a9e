//! The CLI's HTTP layer: one request with the key, and errors an operator can act on.
//!
//! A refusal becomes a [`ServerError`] carrying the problem+json detail and each bad field, so
//! a command can re-label the fields (`send` names the input line of an event, not its index in
//! a batch) and every command says what went wrong in one line: the server is unreachable, the
//! key is missing or refused (401), lacks a scope (403), or the thing does not exist (404).

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

use super::ServerArgs;

/// The two HTTP clients of this process, built once with the TLS configuration of the first
/// command's `--ca-cert` (a CLI process runs one command). Shared so that many requests (a
/// large `send`) reuse connections.
struct Clients {
    /// With a whole-request timeout: for request/response calls only.
    requests: reqwest::Client,
    /// For streams, which stay open until the user stops them: only connecting is timed.
    streams: reqwest::Client,
}

static CLIENTS: OnceLock<Result<Clients, String>> = OnceLock::new();

impl Clients {
    fn build(args: &ServerArgs) -> Result<Self, String> {
        let tls = super::tls::client_config(args.ca_cert.as_deref()).map_err(|e| e.to_string())?;
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .tls_backend_preconfigured(tls.as_ref().clone())
        };
        let build = |b: reqwest::ClientBuilder| b.build().map_err(|e| e.to_string());
        Ok(Self {
            requests: build(builder().timeout(Duration::from_secs(30)))?,
            streams: build(builder())?,
        })
    }
}

/// One field the server refused, as its problem+json `errors` list has it.
#[derive(Debug, Clone)]
pub struct FieldProblem {
    /// The event's position in the request, for a batch.
    pub index: Option<usize>,
    pub field: String,
    pub message: String,
}

/// A response the server refused, explained.
#[derive(Debug, Clone)]
pub struct ServerError {
    pub status: u16,
    /// The problem document's `detail` (or the body, when it is not one).
    pub detail: String,
    pub fields: Vec<FieldProblem>,
    /// What the operator can do about it, when the status says.
    pub hint: Option<&'static str>,
    /// Seconds the server asked to wait before trying again (`Retry-After`, with a 503).
    pub retry_after: Option<u64>,
}

impl ServerError {
    /// The refusal in `response`, read whole.
    async fn read(response: Response, had_key: bool) -> Self {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let body = response.text().await.unwrap_or_default();
        Self {
            retry_after,
            ..Self::from_body(status, &body, had_key)
        }
    }

    fn from_body(status: reqwest::StatusCode, body: &str, had_key: bool) -> Self {
        let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let detail = value["detail"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| body.trim().chars().take(200).collect());
        let fields = value["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| FieldProblem {
                index: e["index"].as_u64().map(|i| i as usize),
                field: e["field"].as_str().unwrap_or("").to_string(),
                message: e["message"].as_str().unwrap_or("").to_string(),
            })
            .collect();
        let hint = match status.as_u16() {
            401 if had_key => Some("check --key or SWITCHYARD_KEY"),
            401 => Some("no key was given: pass --key or set SWITCHYARD_KEY"),
            403 => Some("use a key with that scope (`switchyard keys create --scope ...`)"),
            _ => None,
        };
        Self {
            status: status.as_u16(),
            detail,
            fields,
            hint,
            retry_after: None,
        }
    }

    /// `401 Unauthorized`, `404 Not Found`, ...
    pub fn status_line(&self) -> String {
        let reason = reqwest::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        format!("{} {reason}", self.status)
    }

    /// The status, the detail and the hint on one line, without the fields.
    pub fn summary(&self) -> String {
        match self.hint {
            Some(hint) => format!("{}: {} ({hint})", self.status_line(), self.detail),
            None => format!("{}: {}", self.status_line(), self.detail),
        }
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())?;
        for field in &self.fields {
            match field.index {
                Some(index) => write!(f, "\n  event {index}: ")?,
                None => write!(f, "\n  ")?,
            }
            write!(f, "{}: {}", field.field, field.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ServerError {}

impl ServerArgs {
    fn clients(&self) -> anyhow::Result<&'static Clients> {
        CLIENTS
            .get_or_init(|| Clients::build(self))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The TLS configuration for `wss://` (the same roots and `--ca-cert` as HTTPS).
    pub fn websocket_tls(&self) -> anyhow::Result<tokio_tungstenite::Connector> {
        let config = super::tls::client_config(self.ca_cert.as_deref())?;
        Ok(tokio_tungstenite::Connector::Rustls(config))
    }

    fn url_of(&self, path: &str) -> String {
        format!("{}{path}", self.url.trim_end_matches('/'))
    }

    /// The key, unless it is empty (`SWITCHYARD_KEY=` means none).
    pub fn api_key(&self) -> Option<&str> {
        self.key.as_deref().filter(|key| !key.is_empty())
    }

    fn with_key(&self, request: RequestBuilder) -> RequestBuilder {
        match self.api_key() {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// Sends a request with the key; returns the JSON body, or a [`ServerError`].
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request =
            self.with_key(self.clients()?.requests.request(method, self.url_of(path)));
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.json_reply(request).await
    }

    /// POSTs a body that is JSON already (so a large batch is not parsed and rebuilt).
    pub async fn post_json_text(&self, path: &str, body: String) -> anyhow::Result<Value> {
        let request = self
            .with_key(self.clients()?.requests.post(self.url_of(path)))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        self.json_reply(request).await
    }

    /// Opens a stream (`text/event-stream`): the response once the server accepted it.
    pub async fn open_stream(&self, path: &str) -> anyhow::Result<Response> {
        let request = self
            .with_key(self.clients()?.streams.get(self.url_of(path)))
            .header(reqwest::header::ACCEPT, "text/event-stream");
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(ServerError::read(response, self.api_key().is_some())
            .await
            .into())
    }

    async fn json_reply(&self, request: RequestBuilder) -> anyhow::Result<Value> {
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ServerError::read(response, self.api_key().is_some())
                .await
                .into());
        }
        let body = response.text().await.map_err(|e| self.unreachable(&e))?;
        serde_json::from_str(&body).map_err(|e| {
            anyhow::anyhow!(
                "{} answered {status} with a body that is not JSON: {e}",
                self.url
            )
        })
    }

    /// One line: where, and the innermost cause (`Connection refused`, not reqwest's wrapper).
    fn unreachable(&self, error: &reqwest::Error) -> anyhow::Error {
        let mut cause: &dyn std::error::Error = error;
        while let Some(source) = cause.source() {
            cause = source;
        }
        let why = if error.is_timeout() {
            "timed out".to_string()
        } else {
            cause.to_string()
        };
        anyhow::anyhow!(
            "cannot reach switchyard at {}: {why} (is it running? set --url or SWITCHYARD_URL)",
            self.url
        )
    }
}
