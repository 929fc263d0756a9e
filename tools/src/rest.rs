//! One JSON call to a switchyard's REST API with a bearer key, for the benches that act as an
//! operator (the drill's rollout plans, `fanout --dual`, reading `/v1/realtime`): the answer's
//! JSON, or an error naming the method, path, status and body.

use serde_json::Value;

#[derive(Clone)]
pub struct Rest {
    client: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Rest {
    pub fn new(base: &str, key: Option<&str>) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_string(),
            key: key.map(str::to_string),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let response = self.send(method.clone(), path, body).await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "{method} {path}: {status} {body}");
        Ok(body)
    }

    /// `GET path` as text (`/metrics`).
    pub async fn text(&self, path: &str) -> anyhow::Result<String> {
        let response = self.send(reqwest::Method::GET, path, None).await?;
        let status = response.status();
        let body = response.text().await?;
        anyhow::ensure!(status.is_success(), "GET {path}: {status} {body}");
        Ok(body)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Ok(request.send().await?)
    }
}
