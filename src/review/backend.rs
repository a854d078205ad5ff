//! The narrow interface the TUI works through: the store on this machine ([`LocalBackend`]), or
//! the daemon that holds it (`api::remote::RemoteBackend`, one typed request per operation).

use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;

use super::{
    ActionOutcome, ActionRequest, ApprovalItem, DayActionRequest, DayDetail, DayOutcome, EstimatePreview, QueueFilter,
    QueueView, ReadDetail, ReviewError,
};
use crate::model::ReadId;
use crate::model::interval::DayKey;
use crate::store::{QuarantineLimits, Store, StoreTarget};
use crate::vee::VeeConfig;
use crate::vee::interval::IntervalConfig;

/// What the review TUI needs from the store.
pub trait ReviewBackend {
    /// `review list --json [--route R] [--rule X] [--service S]`.
    fn queue(&self, filter: &QueueFilter) -> Result<QueueView, ReviewError>;
    /// `review approvals --json`: the reads awaiting a supervisor's approval.
    fn approvals(&self) -> Result<Vec<ApprovalItem>, ReviewError>;
    /// `review show ID --json`.
    fn detail(&self, read_id: ReadId) -> Result<ReadDetail, ReviewError>;
    /// `review estimate ID --dry-run --json`.
    fn preview_estimate(&self, read_id: ReadId) -> Result<EstimatePreview, ReviewError>;
    /// `review accept|edit|estimate|reject|note|undo|approve|decline ID --rev N …`
    /// (approve and decline need the supervisor role where roles are checked).
    fn act(&self, req: &ActionRequest) -> Result<ActionOutcome, ReviewError>;
    /// `review day METER CHANNEL DATE --json`: an interval day with its chart's data.
    fn day_detail(&self, key: &DayKey) -> Result<DayDetail, ReviewError>;
    /// `review accept-day|edit-day|estimate-day|reject-day METER CHANNEL DATE --rev N …`.
    fn act_on_day(&self, req: &DayActionRequest) -> Result<DayOutcome, ReviewError>;
}

/// The store on this machine, opened for each operation and closed again, so that several
/// clerks' TUIs (and CLI commands) take turns: redb lets one process open it at a time. An
/// open refused because another process holds the store is retried for a moment.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    pub data_dir: PathBuf,
    pub vee: VeeConfig,
    /// How long to keep retrying a store another process holds.
    pub wait: Duration,
    /// The clock (tests fix it so snapshots are stable).
    pub now: fn() -> Timestamp,
    /// A server store (`[store] url`), used instead of the embedded one in `data_dir`.
    pub server: Option<StoreTarget>,
    /// `[intervals]`: the time zone, holidays and rules a re-estimate or edit of a day runs.
    pub intervals: IntervalConfig,
}

impl LocalBackend {
    pub fn new(data_dir: PathBuf, vee: VeeConfig) -> Self {
        LocalBackend {
            data_dir,
            vee,
            wait: Duration::from_secs(5),
            now: Timestamp::now,
            server: None,
            intervals: IntervalConfig::default(),
        }
    }

    /// On the store `target` names (a server's, or the embedded one in its data directory).
    pub fn on(target: StoreTarget, data_dir: PathBuf, vee: VeeConfig) -> Self {
        let server = target.is_server().then_some(target);
        LocalBackend {
            server,
            ..LocalBackend::new(data_dir, vee)
        }
    }

    fn with_store<T>(&self, f: impl FnOnce(&dyn Store) -> Result<T, ReviewError>) -> Result<T, ReviewError> {
        let target = match &self.server {
            Some(server) => server.clone(),
            None => StoreTarget::embedded(&self.data_dir).waiting(self.wait),
        };
        // Review writes add no quarantine entries; the limits are the daemon's business.
        f(crate::store::open(&target, QuarantineLimits::default())?.as_ref())
    }
}

impl ReviewBackend for LocalBackend {
    fn queue(&self, filter: &QueueFilter) -> Result<QueueView, ReviewError> {
        self.with_store(|s| Ok(super::queue_view(s, filter)?))
    }

    fn approvals(&self) -> Result<Vec<ApprovalItem>, ReviewError> {
        self.with_store(|s| Ok(super::approvals(s)?))
    }

    fn detail(&self, read_id: ReadId) -> Result<ReadDetail, ReviewError> {
        self.with_store(|s| super::detail(s, read_id))
    }

    fn preview_estimate(&self, read_id: ReadId) -> Result<EstimatePreview, ReviewError> {
        self.with_store(|s| super::preview_estimate(s, read_id, self.vee.estimate_limit))
    }

    fn act(&self, req: &ActionRequest) -> Result<ActionOutcome, ReviewError> {
        self.with_store(|s| super::act(s, &self.vee, req, (self.now)()))
    }

    fn day_detail(&self, key: &DayKey) -> Result<DayDetail, ReviewError> {
        self.with_store(|s| super::day_detail(s, &self.intervals, key))
    }

    fn act_on_day(&self, req: &DayActionRequest) -> Result<DayOutcome, ReviewError> {
        self.with_store(|s| super::act_on_day(s, &self.intervals, &self.vee, req, (self.now)()))
    }
}
