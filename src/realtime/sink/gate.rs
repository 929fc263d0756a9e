//! What a write waits for before it commits: the commit of the write before it.
//!
//! Why: the worker keeps one live write in flight while it builds and starts the next
//! (`worker::in_flight`), so the next batch's `COPY` runs while the one before it commits,
//! instead of after. Rows must still become visible in stream order (Supabase Realtime follows
//! commit order, and so do the validator and the backlog), so a write started that way copies
//! inside a transaction and passes its gate before its `COMMIT`: the gate opens once the write
//! before it has committed.
//!
//! A gate whose write before it did not commit never opens: the worker cancels (drops) the
//! write waiting at it, which then commits nothing and records no outcome with the breaker
//! (the failure was the earlier write's, and is counted once, there).

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

/// Opened by the worker (through the sender of [`Gate::after`]) when the write before has
/// committed.
#[derive(Debug, Default)]
pub struct Gate {
    state: State,
    /// How long the write stood at the gate (not the target's time: the write latency the
    /// batcher and the metrics see leaves it out).
    waited: Duration,
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Open,
    Waiting(oneshot::Receiver<()>),
    /// The write before did not commit: never opens.
    Shut,
}

impl Gate {
    /// Nothing to wait for: the write commits as soon as it has written.
    pub fn open() -> Self {
        Self::default()
    }

    /// A gate that opens when the returned sender sends (and never if it is dropped).
    pub fn after() -> (oneshot::Sender<()>, Self) {
        let (open, opened) = oneshot::channel();
        let gate = Self {
            state: State::Waiting(opened),
            waited: Duration::ZERO,
        };
        (open, gate)
    }

    /// Whether the write may commit now, without waiting.
    pub fn is_open(&mut self) -> bool {
        if let State::Waiting(opened) = &mut self.state {
            self.state = match opened.try_recv() {
                Ok(()) => State::Open,
                Err(oneshot::error::TryRecvError::Empty) => return false,
                Err(oneshot::error::TryRecvError::Closed) => State::Shut,
            };
        }
        matches!(self.state, State::Open)
    }

    /// Waits until the write may commit. Never returns if the write before did not commit
    /// (module docs).
    pub async fn pass(&mut self) {
        let arrived = Instant::now();
        let opened = match std::mem::replace(&mut self.state, State::Shut) {
            State::Open => true,
            State::Waiting(opened) => opened.await.is_ok(),
            State::Shut => false,
        };
        if !opened {
            std::future::pending::<()>().await;
        }
        self.state = State::Open;
        self.waited += arrived.elapsed();
    }

    pub fn waited(&self) -> Duration {
        self.waited
    }
}

#[cfg(test)]
mod tests {
    use super::Gate;

    #[tokio::test]
    async fn a_gate_opens_when_the_write_before_has_committed() {
        let mut open = Gate::open();
        assert!(open.is_open());
        open.pass().await;

        let (committed, mut gate) = Gate::after();
        assert!(!gate.is_open());
        committed.send(()).unwrap();
        assert!(gate.is_open());
        gate.pass().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_gate_whose_write_before_failed_never_opens() {
        let (failed, mut gate) = Gate::after();
        drop(failed);
        assert!(!gate.is_open());
        assert!(!gate.is_open(), "asked twice");
        let waited = tokio::time::timeout(std::time::Duration::from_secs(3600), gate.pass()).await;
        assert!(waited.is_err(), "the gate opened");
    }
}
