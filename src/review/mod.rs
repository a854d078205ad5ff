//! What clerks do with the reads and interval days VEE held back: the queue, the actions (accept, edit,
//! estimate, reject with a re-read service order, note, undo), the supervisors' four-eyes
//! approval of large adjustments (approve, decline), the audit trail, the reports and the
//! terminal UI.
//!
//! Every clerk action is a plain function over `&dyn Store` ([`act`]); the CLI commands and
//! the TUI (through [`ReviewBackend`]) both call it. Each action runs in one write
//! transaction that first checks the read's revision the clerk saw (optimistic concurrency:
//! a stale action is refused with who did what, never silently overwritten), then changes the
//! read, appends the hash-chained audit entry and re-validates the meter's next read.

mod actions;
mod approval;
mod audit;
mod backend;
pub mod chart;
mod days;
mod detail;
mod error;
mod estimate;
pub mod interval_chart;
pub mod interval_words;
mod queue;
pub mod reports;
pub mod tui;
pub mod usage;
mod vee_inputs;

pub use actions::{Action, ActionOutcome, ActionRequest, act, complete_order, record_meter_change};
pub use approval::{ApprovalItem, approval_needed, approvals, consumption_change};
pub use audit::{VerifyProblem, VerifyReport, verify};
pub use backend::{LocalBackend, ReviewBackend};
pub use days::{
    DayAction, DayActionRequest, DayDetail, DayOutcome, DayQueueItem, IntervalValue, MAX_QUEUE_DAYS, act_on_day,
    day_detail, day_severity, days_awaiting_approval, parse_interval_values,
};
pub use detail::{Period, ReadDetail, UndoInfo, detail, revision};
pub use error::ReviewError;
pub use estimate::{EstimatePreview, cpuc_estimate, preview_estimate};
pub use queue::{QueueFilter, QueueItem, QueueView, queue_view, severity};
pub use vee_inputs::{VeeInputs, vee_inputs};

use crate::model::{ReadStatus, StoredRead};
use crate::store::{Result, Store};

/// The reads awaiting review (status `flagged`), by meter then time.
pub fn queue(store: &dyn Store) -> Result<Vec<StoredRead>> {
    let mut reads = store.begin_read()?.reads_with_status(ReadStatus::Flagged, usize::MAX)?;
    reads.sort_by(|a, b| {
        a.read
            .meter_id
            .cmp(&b.read.meter_id)
            .then(a.read.read_at.cmp(&b.read.read_at))
    });
    Ok(reads)
}
