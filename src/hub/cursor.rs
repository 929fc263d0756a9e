//! One subscriber's way through the stream, whatever protocol carries it (`/v1/ws`,
//! `/v1/stream`, the legacy `/ws`): the subscription, the filter, the resume from `since`, the
//! position reached, lag detection and catch-up from history, and the hub's lag and drop
//! counters. A handler asks for the next [`Delivery`] and only encodes and sends it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::frames::{Lagged, Subscribed};
use super::jetstream::read_range;
use super::{Filter, Hub, Position, Published, Subscription};

/// What a subscriber is sent next.
#[derive(Debug)]
pub enum Delivery {
    /// An event that passes the filter, newer than any sent before.
    Event(Arc<Published>),
    /// The subscriber fell behind. With catch-up, the missed events follow (from history);
    /// without, it carries on from the oldest event still queued for it.
    Lagged(Lagged),
    /// It fell behind past the history ring: the subscription ends here (the hub counted it
    /// as dropped) and the client resumes by reconnecting from `offset`, the last it had.
    PastHistory { offset: u64 },
    /// The hub is gone: the server is shutting down.
    Closed,
}

/// How a subscriber that fell behind carries on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnLag {
    /// Everything it missed, from history, or the end of the subscription if history no
    /// longer holds it all: the `/v1/ws` and `/v1/stream` promise of no gaps.
    CatchUp,
    /// From whatever is still queued: the legacy protocol has no resume.
    SkipAhead,
}

/// Where a new subscription begins.
pub struct Start {
    /// The acknowledgement: epoch, newest offset, and whether `since` was honoured.
    pub subscribed: Subscribed,
    /// The events after `since` that pass the filter, to send before anything else.
    pub replay: Vec<Arc<Published>>,
}

/// One subscriber's position in the hub; see the module comment.
pub struct Cursor {
    hub: Hub,
    filter: Filter,
    receiver: broadcast::Receiver<Arc<Published>>,
    /// The newest offset this subscriber has been given or skipped by its filter.
    last: u64,
    on_lag: OnLag,
    /// A lag was reported; history is read on the next call, once the notice is out, as
    /// the handlers always did.
    catch_up_due: bool,
    /// Missed events read back from history, not yet handed out.
    catching_up: VecDeque<Arc<Published>>,
}

impl Cursor {
    /// A `/v1/ws` or `/v1/stream` subscription: replays what followed `since` when history
    /// still holds all of it (`recovered`), and catches up from history after a lag.
    pub fn resume(hub: &Hub, filter: Filter, since: Option<&Position>) -> (Self, Start) {
        Self::begin(hub, filter, hub.subscribe(since))
    }

    /// [`Cursor::resume`]; on a NATS stream, a `since` the local ring no longer holds (or never
    /// held: the client came from another instance) is read back from the stream, so the
    /// client still gets `recovered: true` while the stream keeps what it missed.
    pub async fn resume_anywhere(
        hub: &Hub,
        filter: Filter,
        since: Option<&Position>,
    ) -> (Self, Start) {
        let mut subscription = hub.subscribe(since);
        if let (Some(engine), Some(pos)) = (hub.stream(), since) {
            let behind = pos.epoch == hub.epoch() && pos.offset < subscription.head;
            if !subscription.recovered && behind && hub.needs_stream_replay(pos.offset) {
                let range = read_range(engine, pos.offset + 1, subscription.head).await;
                if let Some(events) = range {
                    subscription.replay = events;
                    subscription.recovered = true;
                }
            }
        }
        Self::begin(hub, filter, subscription)
    }

    fn begin(hub: &Hub, filter: Filter, subscription: Subscription) -> (Self, Start) {
        let start = Start {
            subscribed: Subscribed {
                epoch: hub.epoch().to_string(),
                offset: subscription.head,
                recovered: subscription.recovered,
            },
            replay: subscription
                .replay
                .into_iter()
                .filter(|p| filter.matches(p))
                .collect(),
        };
        let cursor = Self::new(hub, filter, subscription.receiver, subscription.head);
        (cursor, start)
    }

    /// A legacy `/ws` subscription: every event from now on; after a lag it carries on from
    /// the events still queued, skipping what it missed.
    pub fn live(hub: &Hub) -> Self {
        let subscription = hub.subscribe(None);
        let mut cursor = Self::new(
            hub,
            Filter::default(),
            subscription.receiver,
            subscription.head,
        );
        cursor.on_lag = OnLag::SkipAhead;
        cursor
    }

    fn new(
        hub: &Hub,
        filter: Filter,
        receiver: broadcast::Receiver<Arc<Published>>,
        head: u64,
    ) -> Self {
        Self {
            hub: hub.clone(),
            filter,
            receiver,
            last: head,
            on_lag: OnLag::CatchUp,
            catch_up_due: false,
            catching_up: VecDeque::new(),
        }
    }

    /// Waits for the next delivery. Cancel-safe (state changes only after the channel
    /// answers), so it can sit in a `select!` beside the socket and the shutdown signal.
    pub async fn next(&mut self) -> Delivery {
        loop {
            if let Some(delivery) = self.pending() {
                return delivery;
            }
            let received = self.receiver.recv().await;
            if let Some(delivery) = self.receive(received) {
                return delivery;
            }
        }
    }

    /// The next delivery if one is ready now, for sending a burst in one write.
    pub fn try_next(&mut self) -> Option<Delivery> {
        loop {
            if let Some(delivery) = self.pending() {
                return Some(delivery);
            }
            let received = match self.receiver.try_recv() {
                Ok(published) => Ok(published),
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Lagged(missed)) => Err(RecvError::Lagged(missed)),
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
            };
            if let Some(delivery) = self.receive(received) {
                return Some(delivery);
            }
        }
    }

    /// What is owed from an earlier lag: the catch-up from history, one event at a time.
    fn pending(&mut self) -> Option<Delivery> {
        if std::mem::take(&mut self.catch_up_due) {
            match self.hub.since(self.last) {
                Some(missed) => self.catching_up.extend(missed),
                None => {
                    let counters = self.hub.counters();
                    counters.dropped_subscribers.fetch_add(1, Ordering::Relaxed);
                    return Some(Delivery::PastHistory { offset: self.last });
                }
            }
        }
        while let Some(published) = self.catching_up.pop_front() {
            self.last = published.offset;
            if self.filter.matches(&published) {
                return Some(Delivery::Event(published));
            }
        }
        None
    }

    fn receive(&mut self, received: Result<Arc<Published>, RecvError>) -> Option<Delivery> {
        match received {
            // An event at or before `last` was already sent from history during a catch-up.
            Ok(published) if published.offset > self.last => {
                self.last = published.offset;
                self.filter
                    .matches(&published)
                    .then_some(Delivery::Event(published))
            }
            Ok(_) => None,
            Err(RecvError::Lagged(missed)) => {
                self.hub.counters().lagged.fetch_add(1, Ordering::Relaxed);
                self.catch_up_due = self.on_lag == OnLag::CatchUp;
                Some(Delivery::Lagged(Lagged {
                    missed,
                    offset: self.last,
                }))
            }
            Err(RecvError::Closed) => Some(Delivery::Closed),
        }
    }
}

#[cfg(test)]
#[path = "cursor_tests.rs"]
mod tests;
