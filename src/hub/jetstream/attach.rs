//! The hub on a stream: its epoch and offsets are the stream's, and events enter it at the
//! sequence the stream gave them (from the follower) instead of being numbered here. The
//! in-process `Hub::publish` is untouched: these are separate entry points.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::JetStream;
use crate::event::Event;
use crate::hub::{Hub, HubLimits, Prepared, Published};

impl Published {
    /// An event with its offset and its encodings, made once for every subscriber.
    pub(crate) fn encode(offset: u64, event: Event) -> Self {
        Prepared::of(event).at(offset)
    }
}

impl Hub {
    /// A hub whose positions are `engine`'s stream: its epoch, and a head at the stream's last
    /// sequence when the instance started (the follower delivers what comes after).
    pub fn on_stream(limits: HubLimits, queue: usize, engine: JetStream) -> Self {
        let (epoch, head) = (engine.epoch().to_string(), engine.start_head());
        Self::build(limits, queue, epoch, head, Some(engine))
    }

    /// The stream this hub follows, `None` for the in-process hub.
    pub fn stream(&self) -> Option<&JetStream> {
        self.inner.stream.as_ref()
    }

    /// Keeps and sends an event the stream numbered `offset`. An offset at or before the head
    /// was delivered already and is ignored; one past a gap (messages the stream removed)
    /// empties the ring first, because history must stay contiguous for resumes to be whole.
    pub(crate) fn publish_at(&self, offset: u64, event: Event) -> Option<Arc<Published>> {
        let published = Arc::new(Published::encode(offset, event));
        let mut ring = self.lock_ring();
        if offset <= ring.head {
            return None;
        }
        if offset != ring.head + 1 {
            ring.events.clear();
            ring.bytes = 0;
        }
        ring.head = offset;
        self.keep(&mut ring, published.clone());
        let _ = self.inner.sender.send(published.clone());
        drop(ring);
        self.inner.legacy.record(&published.event);
        self.inner
            .counters
            .published
            .fetch_add(1, Ordering::Relaxed);
        Some(published)
    }

    /// Whether a resume from `offset` needs the stream: it is behind the head and the ring no
    /// longer starts right after it.
    pub(crate) fn needs_stream_replay(&self, offset: u64) -> bool {
        let ring = self.lock_ring();
        offset < ring.head
            && ring
                .events
                .front()
                .is_none_or(|first| first.offset > offset + 1)
    }
}
