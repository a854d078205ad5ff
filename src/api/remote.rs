//! The review screen's backend over the control socket: what [`LocalBackend`](crate::review::LocalBackend)
//! does against the store, asked of the daemon that holds it.
//!
//! One connection, opened on first use and again after it broke. Reads (queue, detail,
//! preview) are retried once on a fresh connection; an action is not (it may have been done):
//! the clerk is told to reload and look.

use std::cell::RefCell;
use std::path::PathBuf;

use super::answer;
use super::client::{self, CallError, Connection};
use super::proto::{Reply, Request};
use crate::model::ReadId;
use crate::model::interval::DayKey;
use crate::review::{
    ActionOutcome, ActionRequest, ApprovalItem, DayActionRequest, DayDetail, DayOutcome, EstimatePreview, QueueFilter,
    QueueView, ReadDetail, ReviewBackend, ReviewError,
};

pub struct RemoteBackend {
    socket: PathBuf,
    on_behalf_of: Option<String>,
    conn: RefCell<Option<Connection>>,
}

impl RemoteBackend {
    /// A backend over `socket`, with a connection already made (or none yet).
    pub fn new(socket: PathBuf, on_behalf_of: Option<String>, conn: Option<Connection>) -> Self {
        RemoteBackend {
            socket,
            on_behalf_of,
            conn: RefCell::new(conn),
        }
    }

    fn connect(&self) -> Result<Connection, ReviewError> {
        match client::connect(&self.socket) {
            Ok(Some(c)) => Ok(c),
            Ok(None) => Err(ReviewError::Unavailable(format!(
                "no meterd daemon answers on {}: it is not running (any more). Start it, or quit and run `meterd review` again to work on the store directly.",
                self.socket.display()
            ))),
            Err(e) => Err(ReviewError::Unavailable(format!("{e:#}"))),
        }
    }

    fn call(&self, request: Request, retry: bool) -> Result<Reply, ReviewError> {
        let mut slot = self.conn.borrow_mut();
        let fresh = slot.is_none();
        let conn = match slot.as_mut() {
            Some(c) => c,
            None => slot.insert(self.connect()?),
        };
        match conn.call(request.clone(), self.on_behalf_of.as_deref()) {
            Ok(reply) => Ok(reply),
            Err(CallError::Refused(m)) => Err(ReviewError::Refused(m)),
            Err(CallError::Broken(e)) => {
                *slot = None;
                drop(slot);
                if retry && !fresh {
                    // The daemon may have closed an idle connection, or restarted.
                    return self.call(request, false);
                }
                Err(ReviewError::Unavailable(format!("{e:#}")))
            }
        }
    }
}

fn unexpected(reply: Reply) -> ReviewError {
    match reply {
        Reply::Failed { kind, message } => answer::error(kind, message),
        other => ReviewError::Unavailable(format!("the meterd daemon answered {other:?}")),
    }
}

impl ReviewBackend for RemoteBackend {
    fn queue(&self, filter: &QueueFilter) -> Result<QueueView, ReviewError> {
        match self.call(Request::ReviewQueue { filter: filter.clone() }, true)? {
            Reply::Queue(q) => Ok(*q),
            other => Err(unexpected(other)),
        }
    }

    fn approvals(&self) -> Result<Vec<ApprovalItem>, ReviewError> {
        match self.call(Request::ReviewApprovals, true)? {
            Reply::Approvals(a) => Ok(a),
            other => Err(unexpected(other)),
        }
    }

    fn detail(&self, read_id: ReadId) -> Result<ReadDetail, ReviewError> {
        match self.call(Request::ReviewDetail { read_id }, true)? {
            Reply::Detail(d) => Ok(*d),
            other => Err(unexpected(other)),
        }
    }

    fn preview_estimate(&self, read_id: ReadId) -> Result<EstimatePreview, ReviewError> {
        match self.call(Request::ReviewPreview { read_id }, true)? {
            Reply::Preview(p) => Ok(*p),
            other => Err(unexpected(other)),
        }
    }

    fn day_detail(&self, key: &DayKey) -> Result<DayDetail, ReviewError> {
        match self.call(Request::ReviewDay { key: key.clone() }, true)? {
            Reply::Day(d) => Ok(*d),
            other => Err(unexpected(other)),
        }
    }

    fn act_on_day(&self, req: &DayActionRequest) -> Result<DayOutcome, ReviewError> {
        let request = Request::ReviewDayAct {
            key: req.key.clone(),
            seen_rev: req.seen_rev,
            action: req.action.clone(),
        };
        // Not retried: the action may have been done before the connection broke.
        match self.call(request, false) {
            Ok(Reply::DayActed(o)) => Ok(*o),
            Ok(other) => Err(unexpected(other)),
            Err(ReviewError::Unavailable(m)) => Err(ReviewError::Unavailable(format!(
                "{m}; the action may or may not have been done: press g to reload and look"
            ))),
            Err(e) => Err(e),
        }
    }

    fn act(&self, req: &ActionRequest) -> Result<ActionOutcome, ReviewError> {
        let request = Request::ReviewAct {
            read_id: req.read_id,
            seen_rev: req.seen_rev,
            action: req.action.clone(),
        };
        match self.call(request, false) {
            Ok(Reply::Acted(o)) => Ok(*o),
            Ok(other) => Err(unexpected(other)),
            Err(ReviewError::Unavailable(m)) => Err(ReviewError::Unavailable(format!(
                "{m}; the action may or may not have been done: press g to reload and look"
            ))),
            Err(e) => Err(e),
        }
    }
}
