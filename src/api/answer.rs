//! The answers to the review screen's typed requests, computed against a store (the daemon
//! runs them for a client), and the way back from a [`Reply::Failed`] to a [`ReviewError`].

use jiff::Timestamp;

use super::frame::MAX_FRAME;
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
            .map(|mut q| {
                // Days get a quarter of the frame, reads what the days leave.
                let days = fit(&mut q.days, LIST_BUDGET / 4);
                fit(&mut q.items, LIST_BUDGET - days);
                Reply::Queue(Box::new(q))
            })
            .map_err(ReviewError::from),
        Request::ReviewApprovals => review::approvals(store)
            .map(|mut a| {
                fit(&mut a, LIST_BUDGET);
                Reply::Approvals(a)
            })
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
        Request::ReviewDay { key } => {
            review::day_detail(store, &config.intervals, &key).map(|d| Reply::Day(Box::new(d)))
        }
        Request::ReviewDayAct { key, seen_rev, action } => {
            let req = review::DayActionRequest {
                key,
                seen_rev,
                clerk: caller.clerk(on_behalf_of),
                action,
            };
            review::act_on_day(store, &config.intervals, &config.vee, &req, Timestamp::now())
                .map(|o| Reply::DayActed(Box::new(o)))
        }
        Request::Command(_) | Request::Reload => Err(ReviewError::Refused("not a review request".into())),
    };
    result.unwrap_or_else(|e| failure(&e))
}

/// What a list in a reply may take of a frame; the rest is the envelope's (the queue's counts
/// per rule and total are a few hundred bytes).
const LIST_BUDGET: usize = MAX_FRAME - (64 << 10);

/// Shortens a list (worst first, as the queue is sorted) until the reply fits in one frame: a
/// queue of thousands of held reads (a gateway flooding unknown meters) would otherwise not
/// reach the screen at all. The clerk still sees the total held and "showing N".
/// Each item is measured once: its JSON plus the comma, inside the list's brackets. Returns
/// the bytes the kept list takes (about).
fn fit<T: serde::Serialize>(items: &mut Vec<T>, budget: usize) -> usize {
    let mut size = 2;
    let mut kept = 2;
    let keep = items
        .iter()
        .take_while(|item| {
            size += serde_json::to_vec(item).map_or(0, |v| v.len()) + 1;
            if size <= budget {
                kept = size;
            }
            size <= budget
        })
        .count();
    items.truncate(keep);
    kept
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_too_large_for_a_frame_is_shortened_from_the_end() {
        let mut items: Vec<String> = (0..10_000).map(|i| format!("{i:0>200}")).collect();
        fit(&mut items, LIST_BUDGET);
        let size = serde_json::to_vec(&items).unwrap().len();
        assert!(size <= LIST_BUDGET && size > LIST_BUDGET / 2, "{size}");
        assert_eq!(items[0], format!("{:0>200}", 0), "the worst first are kept");
        let mut small = vec![1, 2, 3];
        fit(&mut small, LIST_BUDGET);
        assert_eq!(small, [1, 2, 3]);
    }
}
