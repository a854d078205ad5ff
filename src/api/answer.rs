//! The answers to the review screen's typed requests, computed against a store (the daemon
//! runs them for a client), and the way back from a [`Reply::Failed`] to a [`ReviewError`].

use jiff::Timestamp;

use super::identity::Caller;
use super::proto::{FailureKind, Reply, Request};
use crate::config::Config;
use crate::review::{self, ActionRequest, ReviewError};
use crate::store::Store;

/// Answers a review request for `caller` (the clerk of an action is always the caller).
pub fn review(
    store: &dyn Store,
    config: &Config,
    caller: &Caller,
    on_behalf_of: Option<&str>,
    request: Request,
) -> Reply {
    let result = match request {
        Request::ReviewQueue { filter } => review::queue_view(store, &filter)
            .map(|q| Reply::Queue(Box::new(q)))
            .map_err(ReviewError::from),
        Request::ReviewApprovals => review::approvals(store)
            .map(Reply::Approvals)
            .map_err(ReviewError::from),
        Request::ReviewDetail { read_id } => review::detail(store, read_id).map(|d| Reply::Detail(Box::new(d))),
        Request::ReviewPreview { read_id } => {
            review::preview_estimate(store, read_id, config.vee.estimate_limit).map(|p| Reply::Preview(Box::new(p)))
        }
        Request::ReviewAct {
            read_id,
            seen_rev,
            action,
        } => {
            let req = ActionRequest {
                read_id,
                seen_rev,
                clerk: caller.clerk(on_behalf_of),
                action,
            };
            review::act(store, &config.vee, &req, Timestamp::now()).map(|o| Reply::Acted(Box::new(o)))
        }
        Request::Command(_) | Request::Reload => Err(ReviewError::Refused("not a review request".into())),
    };
    result.unwrap_or_else(|e| failure(&e))
}

/// A review error as a reply.
pub fn failure(e: &ReviewError) -> Reply {
    let kind = match e {
        ReviewError::Conflict(_) => FailureKind::Conflict,
        ReviewError::Refused(_) => FailureKind::Refused,
        ReviewError::NotFound(_) => FailureKind::NotFound,
        ReviewError::Store(_) | ReviewError::Unavailable(_) => FailureKind::Internal,
    };
    Reply::Failed {
        kind,
        message: e.to_string(),
    }
}

/// The error a [`Reply::Failed`] stands for, on the client's side.
pub fn error(kind: FailureKind, message: String) -> ReviewError {
    match kind {
        FailureKind::Conflict => ReviewError::Conflict(message),
        FailureKind::Refused | FailureKind::NotFound => ReviewError::Refused(message),
        FailureKind::Internal => ReviewError::Unavailable(message),
    }
}
