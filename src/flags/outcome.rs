//! What an evaluation returns: the value and variant, why (an OFREP reason), which tier
//! decided, the flag's version, and an OFREP error code when it could not be evaluated.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The result of evaluating one flag for one context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Evaluation {
    pub key: String,
    /// The resolved value (`null` for FLAG_NOT_FOUND): any JSON value, of the flag's type.
    pub value: Value,
    /// The variant's name; `None` when no variant decided (not found, or a pin whose value is
    /// none of the flag's variants).
    pub variant: Option<String>,
    pub reason: Reason,
    pub tier: Tier,
    /// The flag's version (0 for a flag the store does not have).
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_details: Option<String>,
}

impl Evaluation {
    /// An evaluation that failed; `value` is what the caller should use meanwhile.
    pub fn error(
        key: &str,
        code: ErrorCode,
        details: impl Into<String>,
        value: Value,
        tier: Tier,
        version: i64,
    ) -> Self {
        Evaluation {
            key: key.to_string(),
            value,
            variant: None,
            reason: Reason::Error,
            tier,
            version,
            error_code: Some(code),
            error_details: Some(details.into()),
        }
    }

    /// The FLAG_NOT_FOUND answer for `key` (unknown or archived).
    pub fn not_found(key: &str) -> Self {
        Evaluation::error(
            key,
            ErrorCode::FlagNotFound,
            format!("flag `{key}` does not exist"),
            Value::Null,
            Tier::Default,
            0,
        )
    }

    pub fn is_error(&self) -> bool {
        self.reason == Reason::Error
    }
}

/// Why a value was chosen, as OFREP names reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// Nothing dynamic decided: a pin, or a full rollout with no rules.
    Static,
    /// A targeting rule matched.
    TargetingMatch,
    /// The percentage rollout (or its variant weights) decided.
    Split,
    /// The flag is off in this environment (the kill switch).
    Disabled,
    /// No rule matched and the key is outside the rollout.
    Default,
    /// The flag could not be evaluated; see the error code.
    Error,
}

/// The tier that decided (docs/architecture.md, "Flag tiers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Env,
    KillSwitch,
    Rules,
    Rollout,
    Default,
}

/// OFREP error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    FlagNotFound,
    ParseError,
    TargetingKeyMissing,
    InvalidContext,
    TypeMismatch,
    General,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_with_ofrep_spellings() {
        let evaluation = Evaluation::not_found("nope");
        let json = serde_json::to_value(&evaluation).expect("serializes");
        assert_eq!(json["reason"], "ERROR");
        assert_eq!(json["error_code"], "FLAG_NOT_FOUND");
        assert_eq!(json["tier"], "default");
        assert_eq!(
            serde_json::to_value(Reason::TargetingMatch).expect("serializes"),
            json!("TARGETING_MATCH")
        );
        assert_eq!(
            serde_json::to_value(Tier::KillSwitch).expect("serializes"),
            json!("kill_switch")
        );
        assert_eq!(
            serde_json::to_value(ErrorCode::TargetingKeyMissing).expect("serializes"),
            json!("TARGETING_KEY_MISSING")
        );
    }
}
