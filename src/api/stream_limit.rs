//! Event streams open at once per API key (`SWITCHYARD_MAX_STREAMS_PER_KEY`): `/v1/ws`,
//! `/v1/stream`, the legacy `/ws` and `/events`. One key cannot take every connection the
//! server allows (`SWITCHYARD_MAX_CONNECTIONS`) and starve the other dashboards.
//!
//! A stream counts against its key's name. Anonymous readers (`SWITCHYARD_PUBLIC_READ`) have
//! no key: each client IP address is a bucket of its own, so one anonymous client cannot fill
//! the bucket for all of them (behind a proxy every client shares the proxy's address, and so
//! one bucket: raise the limit there). Past the limit the upgrade or stream is refused with
//! 429 and `Retry-After` before anything is opened.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;

use super::auth::Authenticator;
use super::error::ApiError;
use crate::metrics::Metrics;
use crate::metrics::connections::CutReason;

/// Whose streams a request's would be, set by the `Access` extractor once it has checked the
/// key: the key's name, or `None` for an anonymous reader.
#[derive(Debug, Clone)]
pub struct StreamOwner(pub Option<String>);

/// Streams open per owner; cheap to clone.
#[derive(Clone)]
pub struct StreamLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    max_per_key: u32,
    open: Mutex<HashMap<String, u32>>,
}

impl StreamLimiter {
    pub fn new(max_per_key: u32) -> Self {
        Self {
            inner: Arc::new(Inner {
                max_per_key: max_per_key.max(1),
                open: Mutex::default(),
            }),
        }
    }

    /// A slot for one more stream of `bucket`, or None when it has `max_per_key` open.
    fn acquire(&self, bucket: String) -> Option<StreamSlot> {
        let mut open = self.inner.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(bucket.clone()).or_default();
        if *count >= self.inner.max_per_key {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            inner: self.inner.clone(),
            bucket,
        })
    }

    /// Streams open now under `bucket` (for tests and status).
    pub fn open(&self, bucket: &str) -> u32 {
        let open = self.inner.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(bucket).copied().unwrap_or(0)
    }
}

/// The bucket a stream counts in: `key:<name>`, or `anonymous:<ip>` (`anonymous` when the
/// address is unknown).
fn bucket(owner: Option<&StreamOwner>, peer: Option<SocketAddr>) -> String {
    match (owner.and_then(|o| o.0.as_deref()), peer) {
        (Some(key), _) => format!("key:{key}"),
        (None, Some(peer)) => format!("anonymous:{}", peer.ip()),
        (None, None) => "anonymous".to_string(),
    }
}

/// One open stream; dropping it (when the stream ends) frees the slot. Extracted after the
/// `Access` extractor, which names the owner.
pub struct StreamSlot {
    inner: Arc<Inner>,
    bucket: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.inner.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.bucket) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.bucket);
            }
        }
    }
}

impl<St> FromRequestParts<St> for StreamSlot
where
    Authenticator: FromRef<St>,
    Metrics: FromRef<St>,
    St: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let limiter = Authenticator::from_ref(state).streams().clone();
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        let bucket = bucket(parts.extensions.get::<StreamOwner>(), peer);
        limiter.acquire(bucket.clone()).ok_or_else(|| {
            Metrics::from_ref(state)
                .connections()
                .stream_refused(CutReason::StreamsPerKey);
            let limit = limiter.inner.max_per_key;
            tracing::warn!(bucket, limit, "refused a stream: too many open for this key");
            ApiError::TooManyRequests(format!(
                "this key already has {limit} streams open (SWITCHYARD_MAX_STREAMS_PER_KEY); close one or retry later"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_holds_at_most_the_limit_and_a_closed_stream_frees_its_slot() {
        let limiter = StreamLimiter::new(2);
        let first = limiter.acquire("key:a".into()).expect("first");
        let _second = limiter.acquire("key:a".into()).expect("second");
        assert!(limiter.acquire("key:a".into()).is_none(), "third refused");
        assert!(
            limiter.acquire("key:b".into()).is_some(),
            "another key is not affected"
        );
        drop(first);
        assert_eq!(limiter.open("key:a"), 1);
        assert!(
            limiter.acquire("key:a".into()).is_some(),
            "the slot was freed"
        );
    }

    #[test]
    fn anonymous_readers_are_counted_per_address() {
        let peer: SocketAddr = "10.0.0.7:5000".parse().unwrap();
        assert_eq!(bucket(None, Some(peer)), "anonymous:10.0.0.7");
        let anonymous = StreamOwner(None);
        assert_eq!(bucket(Some(&anonymous), None), "anonymous");
        let keyed = StreamOwner(Some("dash".into()));
        assert_eq!(bucket(Some(&keyed), Some(peer)), "key:dash");
    }
}
