//! Waiting for something a test expects to happen: the one polling loop every test uses.
//!
//! A test that cannot wait on an event (a state set by a background task, a row written off
//! the request's path, a frame among others) looks again and again until what it waits for is
//! there, and says what that is: `wait::until("the breaker to open", async || ...)`. Each look
//! returns [`Look::Ready`] with the value the test wants, or [`Look::NotYet`] with what it saw
//! instead; past the deadline the test fails naming what it waited for and the last thing it
//! saw. The deadline is generous ([`WAIT`]): it is only reached when the thing never happens.

use std::fmt;
use std::time::Duration;

use super::WAIT;

/// How often a wait looks again, unless told otherwise: short, because a look is cheap (a
/// request to a local server, a status read) and a test should not dawdle once it is done.
pub const INTERVAL: Duration = Duration::from_millis(20);

/// One look at what a test waits for.
#[derive(Debug)]
pub enum Look<T> {
    /// It is there; the wait returns this.
    Ready(T),
    /// Not yet; this is what was seen instead, shown if the wait times out.
    NotYet(String),
}

impl<T: fmt::Debug> Look<T> {
    /// `value` if `done`, else not yet, showing `value` as what was seen.
    pub fn ready_if(done: bool, value: T) -> Self {
        if done {
            Look::Ready(value)
        } else {
            Look::NotYet(format!("{value:#?}"))
        }
    }
}

/// A wait that timed out: what it waited for, how long, and what it saw last.
#[derive(Debug)]
pub struct TimedOut {
    pub what: String,
    pub waited: Duration,
    pub last_seen: String,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "waited {:?} for {}; last seen:\n{}",
            self.waited, self.what, self.last_seen
        )
    }
}

/// How long a wait lasts and how often it looks.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    within: Duration,
    every: Duration,
}

impl Patience {
    /// [`WAIT`], looking every [`INTERVAL`].
    pub const DEFAULT: Patience = Patience {
        within: WAIT,
        every: INTERVAL,
    };

    /// Gives up after `within` instead (never shorter than a test needs).
    pub const fn within(self, within: Duration) -> Self {
        Patience { within, ..self }
    }

    /// Looks every `every` instead: `Duration::ZERO` when each look itself waits (reads the
    /// next frame of a socket) or sets its own pace.
    pub const fn every(self, every: Duration) -> Self {
        Patience { every, ..self }
    }

    /// Looks until `look` is ready and returns its value; fails the test on time-out, naming
    /// `what` was awaited and the last state seen.
    pub async fn until<T>(self, what: &str, look: impl AsyncFnMut() -> Look<T>) -> T {
        self.try_until(what, look)
            .await
            .unwrap_or_else(|timed_out| panic!("{timed_out}"))
    }

    /// [`Patience::until`], handing the time-out back to a caller that adds to it.
    pub async fn try_until<T>(
        self,
        what: &str,
        mut look: impl AsyncFnMut() -> Look<T>,
    ) -> Result<T, TimedOut> {
        let deadline = tokio::time::Instant::now() + self.within;
        loop {
            match look().await {
                Look::Ready(value) => return Ok(value),
                Look::NotYet(seen) if tokio::time::Instant::now() >= deadline => {
                    return Err(TimedOut {
                        what: what.to_string(),
                        waited: self.within,
                        last_seen: seen,
                    });
                }
                Look::NotYet(_) => tokio::time::sleep(self.every).await,
            }
        }
    }
}

/// Looks every [`INTERVAL`] until `look` is ready, for up to [`WAIT`]; returns its value.
pub async fn until<T>(what: &str, look: impl AsyncFnMut() -> Look<T>) -> T {
    Patience::DEFAULT.until(what, look).await
}

#[tokio::test]
async fn a_wait_returns_what_it_waited_for_and_a_time_out_says_what_and_what_was_seen() {
    let mut looks = 0;
    let third = until("the third look", async || {
        looks += 1;
        Look::ready_if(looks == 3, looks)
    })
    .await;
    assert_eq!(third, 3);

    let short = Patience::DEFAULT.within(Duration::from_millis(50));
    let timed_out = short
        .try_until("a look that never succeeds", async || {
            Look::<()>::NotYet("still nothing".to_string())
        })
        .await
        .expect_err("it never succeeds");
    assert_eq!(
        timed_out.to_string(),
        "waited 50ms for a look that never succeeds; last seen:\nstill nothing"
    );
}
