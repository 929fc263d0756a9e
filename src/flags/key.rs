//! Flag keys and environment names: `[a-z0-9][a-z0-9._-]{0,127}`, checked without a regex.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest key or environment name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Whether `name` matches `[a-z0-9][a-z0-9._-]{0,127}`, the pattern of flag keys and of
/// environment names.
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let first_ok = bytes
        .first()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    first_ok
        && bytes.len() <= MAX_NAME_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b))
}

/// A flag key, `[a-z0-9][a-z0-9._-]{0,127}` (e.g. `broadcast.category.critical`).
///
/// [`FlagKey::parse`] checks the pattern. Deserialization does not, so that a bad key in a
/// request body is reported by `validate` as the field `key` alongside any other problem.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, pattern = "^[a-z0-9][a-z0-9._-]{0,127}$")]
pub struct FlagKey(String);

/// A string that is not a valid flag key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid flag key: it must match [a-z0-9][a-z0-9._-]{{0,127}}")]
pub struct InvalidFlagKey(pub String);

impl FlagKey {
    /// Checks `text` against the key pattern.
    pub fn parse(text: impl Into<String>) -> Result<Self, InvalidFlagKey> {
        let text = text.into();
        if is_valid_name(&text) {
            Ok(FlagKey(text))
        } else {
            Err(InvalidFlagKey(text))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this key matches the pattern (always true for a key from [`FlagKey::parse`]).
    pub fn is_valid(&self) -> bool {
        is_valid_name(&self.0)
    }
}

impl fmt::Display for FlagKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for FlagKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_pattern() {
        for good in [
            "a",
            "0",
            "broadcast.category.user_activity",
            "a-b_c.d",
            &"k".repeat(128),
        ] {
            assert!(FlagKey::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "A", "-a", ".a", "a b", "a/b", "é", &"k".repeat(129)] {
            assert!(FlagKey::parse(bad).is_err(), "{bad}");
        }
    }
}
