//! What every event stream (`/v1/ws`, `/v1/stream`, `/ws`, `/events`) is guarded by beyond
//! its protocol: a deadline on each write to the client, and a cap on the lists a
//! subscription filter may carry.
//!
//! The socket itself fails a write blocked past the send timeout (`crate::server`); the
//! sessions also bound each send with the same timeout, so a session never waits on a client
//! longer than that whichever notices first, and count the close with its reason.

use std::future::Future;
use std::time::Duration;

use crate::event::FieldError;
use crate::hub::Filter;

/// Why a send did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFailure {
    /// The client went away (or the socket failed otherwise).
    Gone,
    /// The client stopped reading: the send waited past the send timeout.
    Stalled,
}

/// Runs one send (or flush) with the send timeout.
///
/// A plain function returning the future, not an `async fn`: an `async fn` keeps its `send`
/// argument beside the timeout it moved into (rust-lang/rust#62958), which made a `/v1/ws`
/// session's event delivery, and so every idle session's task, a few hundred bytes larger.
pub fn send_within<T, E>(
    limit: Duration,
    send: impl Future<Output = Result<T, E>>,
) -> impl Future<Output = Result<T, SendFailure>>
where
    E: std::error::Error + 'static,
{
    use futures_util::FutureExt;
    tokio::time::timeout(limit, send).map(|outcome| match outcome {
        Err(_) => Err(SendFailure::Stalled),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) if timed_out(&error) => Err(SendFailure::Stalled),
        Ok(Err(_)) => Err(SendFailure::Gone),
    })
}

/// Whether a send error is the socket's own send timeout (an `io::Error` of kind `TimedOut`
/// somewhere in its chain).
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = error.source();
    }
    false
}

/// The first filter list longer than `max`, as a field error naming it.
pub fn oversized_filter(filter: &Filter, max: usize) -> Option<FieldError> {
    [
        ("event_types", &filter.event_types),
        ("categories", &filter.categories),
        ("sources", &filter.sources),
    ]
    .into_iter()
    .find(|(_, list)| list.len() > max)
    .map(|(field, list)| FieldError {
        index: None,
        field: field.into(),
        message: format!(
            "at most {max} values per filter list (SWITCHYARD_MAX_FILTER_VALUES); got {}",
            list.len()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_send_that_never_completes_is_stalled_after_the_limit() {
        let never = std::future::pending::<Result<(), std::io::Error>>();
        assert_eq!(
            send_within(Duration::from_secs(10), never).await,
            Err(SendFailure::Stalled)
        );
    }

    #[tokio::test]
    async fn a_socket_timeout_is_stalled_and_other_errors_are_gone() {
        let timed = async { Err::<(), _>(std::io::Error::from(std::io::ErrorKind::TimedOut)) };
        assert_eq!(
            send_within(Duration::from_secs(1), timed).await,
            Err(SendFailure::Stalled)
        );
        let reset =
            async { Err::<(), _>(std::io::Error::from(std::io::ErrorKind::ConnectionReset)) };
        assert_eq!(
            send_within(Duration::from_secs(1), reset).await,
            Err(SendFailure::Gone)
        );
    }

    #[test]
    fn a_filter_list_past_the_cap_is_named() {
        let filter = Filter {
            sources: (0..4).map(|n| n.to_string()).collect(),
            ..Filter::default()
        };
        assert!(oversized_filter(&filter, 4).is_none());
        let error = oversized_filter(&filter, 3).expect("too long");
        assert_eq!(error.field, "sources");
        assert!(error.message.contains("got 4"), "{}", error.message);
    }
}
