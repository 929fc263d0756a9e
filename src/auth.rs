//! Who may do what, as the domain sees it: the three key [`Scope`]s and the [`Principal`] a
//! presented key stands for. The store keeps keys with their scope, the CLI creates them, and
//! the HTTP layer (`api::auth`) checks them per request; all three import these types from here,
//! so the store does not depend on the HTTP layer.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a key may do: `admin` everything, `publish` ingest, `read` subscribe and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Admin,
    Publish,
    Read,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Publish => "publish",
            Scope::Read => "read",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "admin" => Some(Scope::Admin),
            "publish" => Some(Scope::Publish),
            "read" => Some(Scope::Read),
            _ => None,
        }
    }

    /// Whether a key of this scope may use a route that needs `needed`.
    pub fn allows(self, needed: Scope) -> bool {
        self == Scope::Admin || self == needed
    }
}

/// Who is calling: the key's name (the actor in audit rows) and its scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub scope: Scope,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_allows_everything_other_scopes_only_themselves() {
        assert!(Scope::Admin.allows(Scope::Publish) && Scope::Admin.allows(Scope::Read));
        assert!(Scope::Publish.allows(Scope::Publish) && !Scope::Publish.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Admin));
    }
}
