//! What an operator does over REST, as the arrange steps of many tests: create a flag, flip
//! it, roll a variant out, force the breaker open. Each asserts the request succeeded, so a
//! test's own assertions start from the state it asked for.

use reqwest::Method;
use serde_json::{Value, json};

use super::{TestApp, expect_json};

/// The environment the test apps run in.
const ENV: &str = "production";

impl TestApp {
    /// Creates `{"key", "type": "boolean", "description"}` and asserts 201: off until flipped.
    /// Returns the stored flag.
    pub async fn create_boolean_flag(&self, key: &str) -> Value {
        let definition = json!({"key": key, "type": "boolean", "description": "a test flag"});
        let response = self.as_admin(Method::POST, "/v1/flags", &definition).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("a JSON flag");
        assert_eq!(status, 201, "create was refused: {body:#}");
        body
    }

    /// `POST /v1/flags/{key}/environments/production/on|off` as admin.
    pub async fn flip(&self, key: &str, on: bool) -> reqwest::Response {
        let side = if on { "on" } else { "off" };
        let path = format!("/v1/flags/{key}/environments/{ENV}/{side}");
        self.as_admin(Method::POST, &path, &Value::Null).await
    }

    /// Flips and asserts 200; returns the stored flag.
    pub async fn flip_ok(&self, key: &str, on: bool) -> Value {
        expect_json(self.flip(key, on).await, 200).await
    }

    /// Rolls `variant` of `key` out to 100% in production as admin; asserts 200.
    pub async fn roll_out_variant(&self, key: &str, variant: &str) {
        let path = format!("/v1/flags/{key}/environments/{ENV}/rollout");
        let rollout = json!({"percentage": 100, "variant": variant});
        expect_json(self.as_admin(Method::PUT, &path, &rollout).await, 200).await;
    }

    /// Forces the Realtime breaker open as admin, giving `reason`; asserts 200.
    pub async fn force_breaker_open(&self, reason: &str) {
        let body = json!({"action": "force_open", "reason": reason});
        let path = "/v1/breakers/realtime";
        expect_json(self.as_admin(Method::POST, path, &body).await, 200).await;
    }
}
