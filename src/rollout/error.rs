//! Why a rollout operation or a scheduled change did not happen. Handlers turn these into
//! HTTP (`api::error`); the driver and the scheduler decide between retrying and giving up
//! with [`RolloutError::is_transient`].

use crate::event::FieldError;
use crate::flags::InvalidFields;
use crate::flagstore::WriteError;

#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// No such plan, or no such flag.
    #[error("{0}")]
    NotFound(String),
    /// The plan's (or the flag's) state does not allow the operation.
    #[error("{0}")]
    Conflict(String),
    /// A plan or schedule request with bad fields: each one, named.
    #[error("{} invalid field(s)", .0.len())]
    Invalid(Vec<FieldError>),
    /// A well-formed request that cannot be carried out as asked (a time not in the future).
    #[error("{0}")]
    Unprocessable(String),
    /// The flag write the step makes did not happen.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The control store failed (or could not be reached).
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    /// A bug or corrupt stored data.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl RolloutError {
    /// A failure rather than a refusal: trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            RolloutError::Store(_) | RolloutError::Internal(_) => true,
            RolloutError::Write(write) => write.is_transient(),
            _ => false,
        }
    }
}

impl From<InvalidFields> for RolloutError {
    fn from(InvalidFields(errors): InvalidFields) -> Self {
        RolloutError::Invalid(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_are_retried_refusals_are_final() {
        assert!(RolloutError::Store(sqlx::Error::PoolTimedOut).is_transient());
        assert!(RolloutError::Write(WriteError::Store(sqlx::Error::PoolClosed)).is_transient());
        assert!(!RolloutError::Write(WriteError::Conflict("archived".into())).is_transient());
        assert!(!RolloutError::Conflict("paused".into()).is_transient());
    }
}
