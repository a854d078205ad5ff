//! Everything a clerk looks at for one read (`review show ID --json`, the TUI's detail pane).

use serde::{Deserialize, Serialize};

use super::ReviewError;
use crate::model::billing::BilledReadChange;
use crate::model::{AuditAction, AuditEntry, Meter, Quantity, ReadId, ReadStatus, ServiceOrder, StoredRead};
use crate::store::{ReadTxn, Result, Store};

/// Periods the consumption chart shows.
pub const CHART_PERIODS: usize = 13;

/// One bar of the consumption chart: the period ending at a read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub read_id: ReadId,
    #[serde(with = "crate::model::time_serde")]
    pub read_at: jiff::Timestamp,
    pub consumption: Option<Quantity>,
    pub status: ReadStatus,
    pub estimated: bool,
    /// The read under review.
    pub current: bool,
}

/// What `undo` would revert: the read's last change, when it was a clerk's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoInfo {
    pub seq: u64,
    pub action: AuditAction,
    pub clerk: String,
}

/// A read with its meter, history chart, audit trail, service orders and, when a clerk edited it
/// after it was exported, that change (what billing had).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadDetail {
    pub read: StoredRead,
    /// The read's revision: the sequence number of its last change in the audit trail (0 =
    /// never changed). Actions carry the revision the clerk saw.
    pub rev: u64,
    pub meter: Option<Meter>,
    /// Up to 13 periods ending with the read under review, oldest first.
    pub periods: Vec<Period>,
    pub audit: Vec<AuditEntry>,
    pub orders: Vec<ServiceOrder>,
    pub correction: Option<BilledReadChange>,
    pub undo: Option<UndoInfo>,
}

/// The read's revision and its last change entry.
pub fn revision(txn: &dyn ReadTxn, read_id: ReadId) -> Result<(u64, Option<AuditEntry>)> {
    let last = txn
        .read_audit(read_id)?
        .into_iter()
        .rev()
        .find(|e| e.action.changes_read());
    Ok((last.as_ref().map_or(0, |e| e.seq), last))
}

pub fn detail(store: &dyn Store, read_id: ReadId) -> Result<ReadDetail, ReviewError> {
    let txn = store.begin_read()?;
    detail_in(txn.as_ref(), read_id)
}

pub(super) fn detail_in(txn: &dyn ReadTxn, read_id: ReadId) -> Result<ReadDetail, ReviewError> {
    let read = txn.read(read_id)?.ok_or(ReviewError::NotFound(read_id))?;
    let meter = txn.meter(&read.read.meter_id)?;
    let audit = txn.read_audit(read_id)?;
    let (rev, last) = revision(txn, read_id)?;
    let undo = last.filter(|e| undoable(e.action)).map(|e| UndoInfo {
        seq: e.seq,
        action: e.action,
        clerk: e.clerk,
    });
    let orders = txn
        .service_orders()?
        .into_iter()
        .filter(|o| o.read_id == read_id)
        .collect();
    let correction = txn.billed_read_change(read_id)?.filter(|c| c.audit_seq.is_some());
    let periods = periods(txn, &read)?;
    Ok(ReadDetail {
        read,
        rev,
        meter,
        periods,
        audit,
        orders,
        correction,
        undo,
    })
}

pub(super) fn undoable(action: AuditAction) -> bool {
    matches!(
        action,
        AuditAction::Accept | AuditAction::Edit | AuditAction::Estimate | AuditAction::Reject
    )
}

/// The last 13 periods of the meter up to and including `read` (its history: no rejected
/// reads, no conflicting duplicates; the read itself always).
fn periods(txn: &dyn ReadTxn, read: &StoredRead) -> Result<Vec<Period>> {
    let mut before = txn.meter_reads_before(&read.read.meter_id, read.read.read_at, 4 * CHART_PERIODS)?;
    before.retain(|r| r.summary().is_history());
    before.truncate(CHART_PERIODS - 1);
    before.reverse();
    let period = |r: &StoredRead, current: bool| Period {
        read_id: r.id,
        read_at: r.read.read_at,
        consumption: r.consumption,
        status: r.status,
        estimated: r.is_estimate(),
        current,
    };
    let mut out: Vec<Period> = before.iter().map(|r| period(r, false)).collect();
    out.push(period(read, true));
    Ok(out)
}
