//! Scoped API keys over HTTP: finding the key a request presents and checking its scope (the
//! scopes themselves are `crate::auth`'s).
//!
//! `admin` may do everything, `publish` may ingest, `read` may subscribe and read. A key is
//! sent as `Authorization: Bearer`, `X-API-Key`, or `?token=` (browsers cannot set headers on
//! WebSockets and EventSource). Lookups go through a moka cache keyed by the key's hash, so
//! the hot path does not query Postgres per request. A revoke notifies every instance
//! (`LISTEN switchyard_keys`, followed through `store::listen`), which forgets its cached
//! lookups at once; while an instance cannot listen (the control store is unreachable) the
//! cache's TTL, 30 s, bounds it.
//!
//! The check runs on every request, so it allocates nothing when the key is good: the
//! `Authenticator` is one `Arc` (extracted per request), the principals of the admin key and
//! of anonymous reads are built once, and the presented key is borrowed from the request.
//! The SHA-256 of the presented key stays per request: `sha2` uses the CPU's SHA extensions
//! where it has them (a short key is one block, well under a microsecond), and so a cache of
//! verified raw keys in front of it would save little and keep more secrets in memory.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use moka::future::Cache;
use sqlx::PgPool;
use sqlx::postgres::PgNotification;

use super::error::ApiError;
use super::stream_limit::{StreamLimiter, StreamOwner};
pub use crate::auth::{Principal, Scope};
use crate::store::keys::{self, hash_key};
use crate::store::listen::{self, Follower};

/// How long a key lookup (found or not) is trusted before Postgres is asked again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(30);

/// Checks keys against the configured admin key and the control store. Cloning it is one
/// refcount (every clone shares the cache).
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

/// Cloned only while the `with_*` builders run, before the authenticator is shared.
#[derive(Clone)]
struct Inner {
    pool: PgPool,
    admin_key_hash: Option<[u8; 32]>,
    public_read: bool,
    /// Longest a key lookup waits for the control store (`SWITCHYARD_STORE_TIMEOUT_MS`).
    lookup_timeout: Duration,
    cache: Cache<[u8; 32], Option<Arc<Principal>>>,
    /// Event streams open per key (`super::stream_limit`).
    streams: StreamLimiter,
    /// Who the admin key is, and who a keyless read is where reads are public.
    admin: Arc<Principal>,
    anonymous: Arc<Principal>,
}

impl Authenticator {
    pub fn new(pool: PgPool, admin_key: Option<&str>, public_read: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                admin_key_hash: admin_key.filter(|k| !k.is_empty()).map(hash_key),
                public_read,
                lookup_timeout: Duration::from_secs(3),
                cache: Cache::builder()
                    .max_capacity(10_000)
                    .time_to_live(KEY_CACHE_TTL)
                    .build(),
                streams: StreamLimiter::new(100),
                admin: Arc::new(Principal {
                    name: "SWITCHYARD_ADMIN_KEY".into(),
                    scope: Scope::Admin,
                }),
                anonymous: Arc::new(Principal {
                    name: "anonymous".into(),
                    scope: Scope::Read,
                }),
            }),
        }
    }

    /// At most `max_per_key` event streams open at once per key (`SWITCHYARD_MAX_STREAMS_PER_KEY`).
    pub fn with_stream_limit(mut self, max_per_key: u32) -> Self {
        Arc::make_mut(&mut self.inner).streams = StreamLimiter::new(max_per_key);
        self
    }

    /// The per-key count of open event streams.
    pub fn streams(&self) -> &StreamLimiter {
        &self.inner.streams
    }

    /// Bounds each key lookup in the control store (past it: 503, and the key is not cached).
    pub fn with_lookup_timeout(mut self, limit: Duration) -> Self {
        Arc::make_mut(&mut self.inner).lookup_timeout = limit;
        self
    }

    /// The principal behind a presented key, or 401.
    pub async fn authenticate(&self, key: &str) -> Result<Arc<Principal>, ApiError> {
        let inner = &*self.inner;
        let hash = hash_key(key);
        if inner
            .admin_key_hash
            .as_ref()
            .is_some_and(|admin| digests_equal(admin, &hash))
        {
            return Ok(inner.admin.clone());
        }
        let (pool, limit) = (&inner.pool, inner.lookup_timeout);
        let found = inner
            .cache
            .try_get_with(hash, async move {
                // An open connection that stopped answering must not hold publishing up.
                tokio::time::timeout(limit, keys::find_active(pool, &hash))
                    .await
                    .unwrap_or(Err(sqlx::Error::PoolTimedOut))
                    .map(|found| found.map(|(name, scope)| Arc::new(Principal { name, scope })))
            })
            .await
            .map_err(|e: Arc<sqlx::Error>| {
                tracing::warn!(error = %e, "key lookup failed: control store unavailable");
                ApiError::StoreUnavailable(
                    "cannot check the API key: the control store is unavailable".into(),
                )
            })?;
        found.ok_or(ApiError::Unauthorized(
            "the API key is not valid (unknown or revoked)",
        ))
    }

    /// Forgets every cached lookup (after a revoke on this instance).
    pub fn invalidate_all(&self) {
        self.inner.cache.invalidate_all();
    }

    /// Forgets every cached lookup whenever a key is revoked anywhere, until shutdown. When the
    /// listening connection is lost the cache is cleared too (a revoke may have been missed),
    /// and it reconnects with backoff.
    pub fn spawn_revocation_listener(
        &self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let mut auth = self.clone();
        tokio::spawn(async move {
            let pool = auth.inner.pool.clone();
            listen::follow(&pool, &[keys::REVOKED_CHANNEL], None, &mut auth, &shutdown).await;
        })
    }

    /// Authorizes a request that needs `needed`, given the key it presented (if any).
    pub async fn authorize(
        &self,
        presented: Option<&str>,
        needed: Scope,
    ) -> Result<Arc<Principal>, ApiError> {
        let Some(key) = presented else {
            if needed == Scope::Read && self.inner.public_read {
                return Ok(self.inner.anonymous.clone());
            }
            return Err(ApiError::Unauthorized(
                "an API key is required: send `Authorization: Bearer <key>`, `X-API-Key`, or `?token=`",
            ));
        };
        let principal = self.authenticate(key).await?;
        if principal.scope.allows(needed) {
            Ok(principal)
        } else {
            Err(ApiError::Forbidden(needed.as_str()))
        }
    }
}

/// Compares two digests in time that does not depend on where they differ (`==` on arrays
/// stops at the first differing byte, which a patient client could time byte by byte).
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold back into an early exit.
    std::hint::black_box(difference) == 0
}

/// The key a request presents, from the header or the `token` query parameter (borrowed from
/// a header; owned only when the query string had to be decoded).
pub fn presented_key(parts: &Parts) -> Option<Cow<'_, str>> {
    let bearer = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    if let Some(token) = bearer {
        return Some(Cow::Borrowed(token.trim()));
    }
    if let Some(value) = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(Cow::Borrowed(value.trim()));
    }
    parts.uri.query().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v)
    })
}

/// A scope a route needs, as a type, so handlers state it in their signature.
pub trait NeedsScope {
    const SCOPE: Scope;
}

pub struct AdminScope;
pub struct PublishScope;
pub struct ReadScope;

impl NeedsScope for AdminScope {
    const SCOPE: Scope = Scope::Admin;
}
impl NeedsScope for PublishScope {
    const SCOPE: Scope = Scope::Publish;
}
impl NeedsScope for ReadScope {
    const SCOPE: Scope = Scope::Read;
}

/// Extractor: the request carries a key with scope `S` (or admin). 401/403 otherwise.
pub struct Access<S: NeedsScope> {
    pub principal: Arc<Principal>,
    _scope: PhantomData<S>,
}

pub type Admin = Access<AdminScope>;
pub type Publisher = Access<PublishScope>;
pub type Reader = Access<ReadScope>;

impl<S, St> FromRequestParts<St> for Access<S>
where
    S: NeedsScope,
    Authenticator: FromRef<St>,
    St: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let auth = Authenticator::from_ref(state);
        let key = presented_key(parts);
        let principal = auth.authorize(key.as_deref(), S::SCOPE).await?;
        // Whose streams this request's would be (`StreamSlot`, extracted after this one).
        let owner = key.is_some().then(|| principal.name.clone());
        parts.extensions.insert(StreamOwner(owner));
        Ok(Self {
            principal,
            _scope: PhantomData,
        })
    }
}

/// The key cache follows `switchyard_keys`: any revoke, or any gap in listening, forgets it all.
impl Follower for Authenticator {
    async fn caught_up(&mut self) {
        self.invalidate_all();
    }

    async fn notified(&mut self, revoked: PgNotification) {
        tracing::info!(
            key_id = revoked.payload(),
            "API key revoked: cached lookups forgotten"
        );
        self.invalidate_all();
    }

    fn disconnected(&mut self, error: &sqlx::Error, connecting: bool, _retry: Duration) {
        if connecting {
            tracing::debug!(error = %error, "key revocation listener cannot connect");
        } else {
            tracing::warn!(error = %error, "key revocation listener lost its connection");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::digests_equal;

    #[test]
    fn digests_compare_equal_only_when_every_byte_matches() {
        let a = [7u8; 32];
        assert!(digests_equal(&a, &a.clone()));
        for at in [0, 15, 31] {
            let mut b = a;
            b[at] ^= 1;
            assert!(!digests_equal(&a, &b), "differs at byte {at}");
        }
    }
}
