//! Following Postgres `LISTEN` channels for as long as the service runs: one dedicated
//! connection, reconnected with backoff (250 ms doubling to 10 s) whenever it is lost, and a
//! catch-up call on every (re)connection, because notifications sent while nobody listened
//! are gone. The flag snapshot and the API-key cache both follow their channels through
//! [`follow`]; what a notification means is theirs to say, through [`Follower`].

use std::future::Future;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgNotification};
use tokio_util::sync::CancellationToken;

/// First wait before reconnecting; doubled after each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What to do with the channels' news.
pub trait Follower: Send {
    /// The listener is (again) connected, or sqlx re-established its connection by itself:
    /// something may have been missed, so catch up from the source of truth.
    fn caught_up(&mut self) -> impl Future<Output = ()> + Send;

    /// One notification arrived.
    fn notified(&mut self, notification: PgNotification) -> impl Future<Output = ()> + Send;

    /// The periodic resync (only called when [`follow`] is given a period).
    fn resync(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// The listener could not connect (`connecting`) or lost its connection; [`follow`]
    /// retries after `retry`.
    fn disconnected(&mut self, error: &sqlx::Error, connecting: bool, retry: Duration);
}

/// Listens on `channels` until `shutdown`, handing what happens to `follower`; with
/// `resync_every`, also calls [`Follower::resync`] at that period while connected.
pub async fn follow(
    pool: &PgPool,
    channels: &[&str],
    resync_every: Option<Duration>,
    follower: &mut impl Follower,
    shutdown: &CancellationToken,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let listener = tokio::select! {
            _ = shutdown.cancelled() => return,
            listener = listen(pool, channels) => listener,
        };
        match listener {
            Ok(listener) => {
                backoff = FIRST_BACKOFF;
                match follow_connection(listener, resync_every, follower, shutdown).await {
                    None => return,
                    Some(lost) => follower.disconnected(&lost, false, backoff),
                }
            }
            Err(e) => follower.disconnected(&e, true, backoff),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Follows one connection; `None` on shutdown, the error when the connection is lost.
async fn follow_connection(
    mut listener: PgListener,
    resync_every: Option<Duration>,
    follower: &mut impl Follower,
    shutdown: &CancellationToken,
) -> Option<sqlx::Error> {
    // Whatever changed while we were not listening.
    follower.caught_up().await;
    let mut tick = resync_every.map(|period| {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick
    });
    if let Some(tick) = tick.as_mut() {
        tick.tick().await;
    }
    loop {
        let resync = async {
            match tick.as_mut() {
                Some(tick) => {
                    tick.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            notification = listener.try_recv() => match notification {
                Ok(Some(notification)) => follower.notified(notification).await,
                // The connection dropped and sqlx reconnected: notifications may be lost.
                Ok(None) => follower.caught_up().await,
                Err(e) => return Some(e),
            },
            _ = resync => follower.resync().await,
        }
    }
}

async fn listen(pool: &PgPool, channels: &[&str]) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all(channels.iter().copied()).await?;
    Ok(listener)
}
