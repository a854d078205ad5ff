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
}

impl ReviewError {
    /// Whether another clerk got there first (the TUI reloads the read).
    pub fn is_conflict(&self) -> bool {
        matches!(self, ReviewError::Conflict(_))
    }

    /// A stable name of the kind, for carrying the error over a wire (control socket).
    pub fn kind(&self) -> &'static str {
        match self {
            ReviewError::Store(_) => "store",
            ReviewError::NotFound(_) => "not_found",
            ReviewError::Conflict(_) => "conflict",
            ReviewError::Refused(_) => "refused",
        }
    }

    /// Rebuild an error from [`kind`](Self::kind) and its message on the other side of a wire
    /// (a remote backend): conflicts stay conflicts, so the TUI reloads the read.
    pub fn from_wire(kind: &str, message: String) -> Self {
        match kind {
            "conflict" => ReviewError::Conflict(message),
            _ => ReviewError::Refused(message),
        }
    }
}
