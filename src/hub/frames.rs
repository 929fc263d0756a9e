//! Every frame the server sends to `/v1/ws` and `/v1/stream` subscribers other than events
//! (which the hub encodes once, at publish): the system frames announcing changes of state
//! (flags, breakers, transport, validation, rollouts), the subscribe acknowledgement, the lag
//! notice and errors. One typed enum per family, serialized here and nowhere else.
//!
//! Frames are encoded through a `serde_json::Value`, whose map keeps keys sorted: the bytes on
//! the wire stay the ones the `json!` literals these types replaced produced, field order
//! included, so a client comparing raw frames sees no change.

use std::collections::BTreeMap;

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use uuid::Uuid;

use crate::breaker::{BreakerState, Transition};
use crate::rollout::Status as RolloutStatus;

/// A change of state every subscriber hears about, `{"op":"system","kind":...}`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SystemFrame {
    FlagChanged {
        key: String,
        version: i64,
        revision: i64,
        /// Only `/v1/flags/stream` says it; the hub's frame never did.
        #[serde(skip_serializing_if = "Option::is_none")]
        archived: Option<bool>,
    },
    BreakerTransition(Transition),
    TransportChanged {
        transport: Transport,
        /// The flag dashboards evaluate to choose their transport.
        flag: &'static str,
        breaker: String,
        breaker_state: BreakerState,
        reason: &'static str,
    },
    ValidationAlert {
        state: AlertState,
        /// A category name, or `all` for the whole stream.
        category: &'static str,
        consistency_percent: Option<f64>,
        mismatch_percent: Option<f64>,
        threshold_percent: Option<f64>,
        window_s: u64,
        discrepancies: BTreeMap<&'static str, u64>,
        examples: BTreeMap<&'static str, Vec<Uuid>>,
    },
    RolloutChanged {
        id: Uuid,
        flag: String,
        environment: String,
        action: String,
        status: RolloutStatus,
        stage: Option<usize>,
        percentage: u8,
        reason: String,
    },
}

/// Where a `transport_changed` frame sends dashboards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Back to what the transport flag answers.
    Flag,
    /// To `/v1/ws`, whatever the flag says.
    Websocket,
}

/// Whether a `validation_alert` starts or ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Firing,
    Resolved,
}

/// The `op` wrapper around a system frame.
#[derive(Serialize)]
struct System<'a> {
    op: &'static str,
    #[serde(flatten)]
    frame: &'a SystemFrame,
}

impl SystemFrame {
    /// The whole frame, `{"op":"system","kind":...}`.
    pub fn encode(&self) -> Utf8Bytes {
        encode(&System {
            op: "system",
            frame: self,
        })
        .into()
    }
}

/// What a new subscription starts from: the `/v1/ws` acknowledgement and the SSE `subscribed`
/// event's data.
#[derive(Debug, Clone, Serialize)]
pub struct Subscribed {
    pub epoch: String,
    /// The newest offset when the subscription began.
    pub offset: u64,
    /// True when `since` was given and everything after it was still in history.
    pub recovered: bool,
}

/// A subscriber fell behind: `missed` events skipped over, `offset` the last one it had.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Lagged {
    pub missed: u64,
    pub offset: u64,
}

/// The frames of `/v1/ws` besides events and system frames.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Subscribed(&'a Subscribed),
    Lagged(Lagged),
    Pong,
    Error { code: &'a str, message: &'a str },
}

impl ServerFrame<'_> {
    pub fn encode(&self) -> Utf8Bytes {
        encode(self).into()
    }
}

/// JSON text with sorted keys (see the module comment).
pub fn encode(frame: &impl Serialize) -> String {
    serde_json::to_value(frame)
        .expect("frames are plain data and always serialize")
        .to_string()
}

/// An event's frame as the history ring keeps it: the string's spare capacity given back first.
///
/// A frame is built by a growing string (`format!`, serde) that doubles its buffer as it
/// fills, and the ring keeps each frame for a whole turn (`SWITCHYARD_HISTORY_SIZE` events).
/// Kept as built, a frame one byte past a power of two held twice its length: when the 1,000 x
/// 200 events/s soak's event counter reached six digits (~100,000 events, ~500 s), every
/// legacy frame crossed 256 bytes and the ring's frames grew by ~2 MiB live over one turn, the
/// RSS step every soak showed (docs/benchmarks.md, session 7; found with heaptrack).
pub fn fitted(mut frame: String) -> Utf8Bytes {
    frame.shrink_to_fit();
    Utf8Bytes::from(frame)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_system_frame_carries_op_and_kind_beside_its_fields() {
        let frame = SystemFrame::FlagChanged {
            key: "a.b".into(),
            version: 2,
            revision: 7,
            archived: None,
        };
        let expected = json!({"op": "system", "kind": "flag_changed", "key": "a.b", "version": 2, "revision": 7});
        assert_eq!(frame.encode().as_str(), expected.to_string());
    }

    #[test]
    fn transport_changed_reads_as_it_always_has() {
        let frame = SystemFrame::TransportChanged {
            transport: Transport::Websocket,
            flag: "dashboard.transport",
            breaker: "realtime".into(),
            breaker_state: BreakerState::Open,
            reason: "why",
        };
        let expected = json!({"op": "system", "kind": "transport_changed", "transport": "websocket",
            "flag": "dashboard.transport", "breaker": "realtime", "breaker_state": "open", "reason": "why"});
        assert_eq!(frame.encode().as_str(), expected.to_string());
    }

    #[test]
    fn server_frames_match_the_former_literals() {
        let subscribed = Subscribed {
            epoch: "e".into(),
            offset: 3,
            recovered: true,
        };
        assert_eq!(
            ServerFrame::Subscribed(&subscribed).encode().as_str(),
            json!({"op": "subscribed", "epoch": "e", "offset": 3, "recovered": true}).to_string()
        );
        let lagged = Lagged {
            missed: 4,
            offset: 9,
        };
        assert_eq!(
            ServerFrame::Lagged(lagged).encode().as_str(),
            json!({"op": "lagged", "missed": 4, "offset": 9}).to_string()
        );
        assert_eq!(ServerFrame::Pong.encode().as_str(), r#"{"op":"pong"}"#);
        let error = ServerFrame::Error {
            code: "bad_filter",
            message: "no",
        };
        assert_eq!(
            error.encode().as_str(),
            json!({"op": "error", "code": "bad_filter", "message": "no"}).to_string()
        );
    }
}
