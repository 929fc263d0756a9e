//! The request extractors whose rejections are problem documents: `ApiJson` (a JSON body),
//! `ApiQuery` (a query string) and `Path` (path parameters). Each refuses a NUL character
//! anywhere in what it carries (400 naming the field; 404 in a path, which then names nothing):
//! Postgres `text` and `jsonb` cannot hold one, so a flag, reason or plan carrying it would
//! otherwise fail at the database as a 500 (REFERENCE.md section 7).

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Query, RawPathParams, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;
use crate::event::FieldError;

/// A JSON body, parsed as axum's `Json` would (same 400/413/415 statuses), with NUL refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<Value>::from_request(request, state).await?;
        let mut errors = Vec::new();
        nul_fields(&value, "", &mut errors);
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        serde_json::from_value(value).map(ApiJson).map_err(|e| {
            ApiError::Unprocessable(format!(
                "Failed to deserialize the JSON body into the target type: {e}"
            ))
        })
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// A query string, parsed as axum's `Query` would, with NUL refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = parts.uri.query().unwrap_or("");
        let errors: Vec<FieldError> = url::form_urlencoded::parse(raw.as_bytes())
            .filter(|(name, value)| name.contains('\0') || value.contains('\0'))
            .map(|(name, _)| nul_error(name.replace('\0', "\\u0000")))
            .collect();
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(value))
    }
}

/// Path parameters, parsed as axum's `Path` would; a parameter holding a NUL names nothing (404).
/// Named `Path` (not `ApiPath`) on purpose: utoipa's axum integration finds a handler's path
/// parameters by that name in its signature.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        if let Some((name, _)) = raw.iter().find(|(_, value)| value.contains('\0')) {
            return Err(ApiError::NotFound(format!(
                "no such resource: the path parameter `{name}` contains the NUL character"
            )));
        }
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        Ok(Path(value))
    }
}

fn nul_error(field: String) -> FieldError {
    FieldError {
        index: None,
        field,
        message: "must not contain the NUL character (\\u0000)".into(),
    }
}

/// Every field (dotted path, `[i]` for array items) whose name or string value holds a NUL.
fn nul_fields(value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    match value {
        Value::String(text) if text.contains('\0') => errors.push(nul_error(path.to_string())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                nul_fields(item, &format!("{path}[{i}]"), errors);
            }
        }
        Value::Object(fields) => {
            for (name, item) in fields {
                let name_shown = name.replace('\0', "\\u0000");
                let child = if path.is_empty() {
                    name_shown
                } else {
                    format!("{path}.{name_shown}")
                };
                if name.contains('\0') {
                    errors.push(nul_error(child));
                } else {
                    nul_fields(item, &child, errors);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_holding_a_nul_is_named() {
        let value = serde_json::json!({
            "description": "a\u{0}b",
            "ok": "fine",
            "environments": {"prod": {"rules": [{"variant": "on"}, {"variant": "\u{0}"}]}},
            "k\u{0}": 1
        });
        let mut errors = Vec::new();
        nul_fields(&value, "", &mut errors);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "description",
                "environments.prod.rules[1].variant",
                "k\\u0000"
            ]
        );
    }
}
