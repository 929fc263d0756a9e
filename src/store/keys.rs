//! API keys: created random, stored as a SHA-256 hash, looked up by hash.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgExecutor, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Scope;

/// A key as listed: never the key itself.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyRecord {
    pub id: Uuid,
    pub name: String,
    pub scope: Scope,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A newly created key: the only time the plain key exists outside its holder.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub record: KeyRecord,
    pub key: String,
}

pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A new key: `sy_` and 43 characters of base62 (256 bits of randomness).
pub fn generate_key() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let body: String = (0..43)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("sy_{body}")
}

fn record(row: &sqlx::postgres::PgRow) -> Result<KeyRecord, sqlx::Error> {
    let scope: String = row.try_get("scope")?;
    Ok(KeyRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        scope: Scope::parse(&scope)
            .ok_or_else(|| sqlx::Error::Decode(format!("bad scope {scope}").into()))?,
        prefix: row.try_get("prefix")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

pub async fn create(
    db: impl PgExecutor<'_>,
    name: &str,
    scope: Scope,
) -> Result<CreatedKey, sqlx::Error> {
    let key = generate_key();
    let row = sqlx::query(
        "INSERT INTO switchyard.api_keys (id, name, scope, prefix, key_hash)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING id, name, scope, prefix, created_at, revoked_at",
    )
    .bind(Uuid::now_v7())
    .bind(name)
    .bind(scope.as_str())
    .bind(&key[..10])
    .bind(&hash_key(&key)[..])
    .fetch_one(db)
    .await?;
    Ok(CreatedKey {
        record: record(&row)?,
        key,
    })
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<KeyRecord>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, name, scope, prefix, created_at, revoked_at FROM switchyard.api_keys ORDER BY created_at",
    )
    .fetch_all(db)
    .await?;
    rows.iter().map(record).collect()
}

/// The channel a revoke notifies (payload: the key's id).
pub const REVOKED_CHANNEL: &str = "switchyard_keys";

/// Revokes the active key with this name or id; returns it, or None if there is none.
pub async fn revoke(
    db: impl PgExecutor<'_>,
    name_or_id: &str,
) -> Result<Option<KeyRecord>, sqlx::Error> {
    let id = Uuid::parse_str(name_or_id).ok();
    // The NOTIFY is delivered when the revoke commits: every running instance forgets its
    // cached lookups at once instead of within the cache's TTL.
    let row = sqlx::query(
        "WITH revoked AS (
             UPDATE switchyard.api_keys SET revoked_at = now(), updated_at = now()
             WHERE revoked_at IS NULL AND (name = $1 OR id = $2)
             RETURNING id, name, scope, prefix, created_at, revoked_at)
         SELECT revoked.*, pg_notify('switchyard_keys', revoked.id::text) FROM revoked",
    )
    .bind(name_or_id)
    .bind(id)
    .fetch_optional(db)
    .await?;
    row.as_ref().map(record).transpose()
}

/// The active key with this hash: its name and scope.
pub async fn find_active(
    db: impl PgExecutor<'_>,
    hash: &[u8; 32],
) -> Result<Option<(String, Scope)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT name, scope FROM switchyard.api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(&hash[..])
    .fetch_optional(db)
    .await?;
    Ok(row.and_then(|r| {
        let scope: String = r.get("scope");
        Scope::parse(&scope).map(|s| (r.get("name"), s))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_and_prefixed() {
        let a = generate_key();
        let b = generate_key();
        assert_ne!(a, b);
        assert!(a.starts_with("sy_") && a.len() == 46);
        assert_ne!(hash_key(&a), hash_key(&b));
    }
}
