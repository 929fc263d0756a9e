//! Feature flags end to end, against real Postgres: the admin API with its ETags, races and
//! audit log; validation that stores nothing; environment pins; propagation between two
//! instances on one database; OFREP; evaluation with the database gone; the legacy flag
//! endpoints and the seeded flags. One module per area; the helpers every area uses are here.

mod admin;
mod legacy;
mod nul;
mod ofrep;
mod outage;
mod pins;
mod propagation;
mod store_deadline;
mod validation;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Credential, TestApp};

/// The environment the test apps evaluate in by default.
const ENV: &str = "production";

impl TestApp {
    /// A request with a JSON body (none for `Value::Null`) and the given credential.
    async fn send_json(
        &self,
        method: Method,
        path: &str,
        credential: Credential<'_>,
        body: &Value,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some((name, value)) = credential.header() {
            request = request.header(name, value);
        }
        if !body.is_null() {
            request = request.json(body);
        }
        request.send().await.expect("a response")
    }

    /// As admin.
    async fn admin_json(&self, method: Method, path: &str, body: &Value) -> reqwest::Response {
        self.send_json(method, path, self.admin(), body).await
    }

    /// `PUT /v1/flags/{key}/environments/production/rollout` as admin.
    async fn set_rollout(&self, key: &str, rollout: &Value) -> reqwest::Response {
        let path = format!("/v1/flags/{key}/environments/{ENV}/rollout");
        self.admin_json(Method::PUT, &path, rollout).await
    }

    /// `GET /v1/flags/{key}` as admin: the ETag and the flag.
    async fn read_flag(&self, key: &str) -> (String, Value) {
        let response = self.get(&format!("/v1/flags/{key}"), self.admin()).await;
        let etag = etag(&response);
        (etag, ok_json(response).await)
    }

    /// The flag's audit rows, newest first.
    async fn history(&self, key: &str) -> Vec<Value> {
        let response = self
            .get(&format!("/v1/flags/{key}/history"), self.admin())
            .await;
        let rows = ok_json(response).await;
        rows.as_array().expect("an array of audit rows").clone()
    }

    /// `POST /v1/evaluate` of one flag for `context`; returns its result.
    async fn evaluate(&self, key: &str, context: Value) -> Value {
        let body = json!({"context": context, "flags": [key]});
        let response = self.admin_json(Method::POST, "/v1/evaluate", &body).await;
        let mut answer = ok_json(response).await;
        answer["results"][0].take()
    }

    /// `POST /v1/evaluate` of every flag, as it answers (with `revision` and `stale`).
    async fn evaluate_all(&self, context: Value) -> Value {
        let body = json!({"context": context});
        let response = self.admin_json(Method::POST, "/v1/evaluate", &body).await;
        ok_json(response).await
    }
}

/// Asserts 200 and returns the JSON body.
async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status().as_u16();
    let body = response.text().await.expect("a body");
    assert_eq!(status, 200, "unexpected status; body: {body}");
    serde_json::from_str(&body).expect("a JSON body")
}

/// The response's `ETag`, quotes included.
fn etag(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("etag")
        .expect("an ETag header")
        .to_str()
        .expect("a readable ETag")
        .to_string()
}
