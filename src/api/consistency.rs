//! The consistency validator's reports: the sliding window now, and the closed windows stored
//! in the control store. (`validation` elsewhere in the API means input validation.)

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Reader;
use super::error::{ApiError, ApiJson, ApiQuery};
use super::problems::{BadRequest, Forbidden, Unauthorized};
use super::state::ValidationState;
use crate::event::{Category, FieldError};
use crate::store::validation::{self as reports, ValidationReport};
use crate::validator::ValidationSummary;

/// Per category over the sliding window: consistency against the target and the category's
/// mismatch threshold, counts and example ids per discrepancy type, latency per path.
#[utoipa::path(get, path = "/v1/validation/summary", tag = "validation",
    responses((status = 200, body = ValidationSummary), Unauthorized, Forbidden),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn validation_summary(
    _access: Reader,
    State(state): State<ValidationState>,
) -> ApiJson<ValidationSummary> {
    ApiJson(state.validator.summary().as_ref().clone())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportsQuery {
    /// Only this category's reports.
    #[param(value_type = Option<Category>)]
    pub category: Option<String>,
    /// Most rows to return, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// Closed windows, newest first, one row per window and category.
#[utoipa::path(get, path = "/v1/validation/reports", tag = "validation", params(ReportsQuery),
    responses((status = 200, body = Vec<ValidationReport>), BadRequest, Unauthorized, Forbidden),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn validation_reports(
    _access: Reader,
    State(state): State<ValidationState>,
    ApiQuery(query): ApiQuery<ReportsQuery>,
) -> Result<ApiJson<Vec<ValidationReport>>, ApiError> {
    let mut errors = Vec::new();
    let invalid = |field: &str, message: &str| FieldError {
        index: None,
        field: field.into(),
        message: message.into(),
    };
    let category = query.category.as_deref();
    if category.is_some_and(|c| Category::parse(c).is_none()) {
        errors.push(invalid(
            "category",
            "must be one of critical, performance, user_activity, system, debug",
        ));
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        errors.push(invalid("limit", "must be between 1 and 1000"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(ApiJson(
        reports::list_reports(&state.pool, category, limit).await?,
    ))
}
