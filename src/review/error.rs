//! Why a clerk action was refused.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("read {0} not found")]
    NotFound(u64),
    /// Another clerk changed the read since this one loaded it.
    #[error("{0}")]
    Conflict(String),
    /// The action does not apply to the read in its current state.
    #[error("{0}")]
    Refused(String),
    /// The store cannot be reached: the daemon is not answering, refused the user, or failed
    /// (the review screen says so in its body and offers to retry).
    #[error("{0}")]
    Unavailable(String),
}

impl ReviewError {
    /// Whether another clerk got there first (the TUI reloads the read).
    pub fn is_conflict(&self) -> bool {
        matches!(self, ReviewError::Conflict(_))
    }
}
