//! The clerk actions. Each one is one write transaction: check the revision the clerk saw,
//! change the read, append the audit entry (with the read as it was, for undo), re-validate
//! the meter's next read, commit.
//!
//! An edit or estimate past the service's approval threshold leaves the read
//! `pending_approval`; a supervisor other than its author approves or declines it
//! ([`super::approval`]).

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::ReviewError;
use super::approval::{approval_needed, pending_adjustment, same_person};
use super::detail::{revision, undoable};
use super::estimate::{EstimatePreview, estimate_from};
use super::vee_inputs::vee_inputs;
use crate::model::Quantity;
use crate::model::limits::{self, Field};
use crate::model::{
    AuditAction, AuditEntry, HASH_LEN, MeterChange, OrderStatus, ReadId, ReadStatus, ReadType, Rule, ServiceOrder,
    StoredRead, to_store_precision,
};
use crate::store::{Rules, Store, StoreError, WriteTxn};
use crate::vee::{self, VeeConfig};

/// Who re-validation entries are recorded as.
pub const VEE_CLERK: &str = "vee";

/// What a clerk does to a read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Accept as is (the reason is optional).
    Accept { reason: String },
    /// Set the value; a reason is required. The original stays in the audit trail (and, for a
    /// read billing already had, in its [`BilledReadChange`](crate::model::billing::BilledReadChange)).
    Edit { value: Quantity, reason: String },
    /// Estimate from average daily usage (CPUC rounding); the read becomes `estimated`.
    Estimate { reason: String },
    /// Reject the read and send a reader back: a re-read service order due on `due`.
    Reject { reason: String, due: Date },
    /// A note on the read; changes nothing.
    Note { text: String },
    /// Undo the read's last change, when it was a clerk's accept, edit, estimate or reject. An
    /// adjustment awaiting approval only its author may undo; an approve or decline is not
    /// undone (a later edit changes the read again, with its own audit entry).
    Undo,
    /// Approve the adjustment a `pending_approval` read waits with: it becomes `edited` or
    /// `estimated` (billable). **The caller must hold the supervisor role** (see
    /// [`Action::needs_supervisor`]); the approver must not be the adjustment's author (checked
    /// here on the audit entry's clerk name) and must name the revision seen.
    Approve { note: String },
    /// Decline it: the read goes back to its value before the adjustment, `flagged`, with the
    /// supervisor's reason (required). Same role, author and revision rules as `Approve`.
    Decline { reason: String },
}

impl Action {
    /// The clerk's text the action carries (a reason, a note), if any.
    pub fn text(&self) -> Option<&str> {
        match self {
            Action::Accept { reason }
            | Action::Edit { reason, .. }
            | Action::Estimate { reason }
            | Action::Reject { reason, .. }
            | Action::Decline { reason } => Some(reason),
            Action::Note { text } => Some(text),
            Action::Approve { note } => Some(note),
            Action::Undo => None,
        }
    }

    pub fn audit_action(&self) -> AuditAction {
        match self {
            Action::Accept { .. } => AuditAction::Accept,
            Action::Edit { .. } => AuditAction::Edit,
            Action::Estimate { .. } => AuditAction::Estimate,
            Action::Reject { .. } => AuditAction::Reject,
            Action::Note { .. } => AuditAction::Note,
            Action::Undo => AuditAction::Undo,
            Action::Approve { .. } => AuditAction::Approve,
            Action::Decline { .. } => AuditAction::Decline,
        }
    }

    /// Whether only a supervisor may take this action (four-eyes approval). The role is the
    /// caller's to check (the control socket maps its peers to roles); [`act`] checks only that
    /// the supervisor is not the author.
    pub fn needs_supervisor(&self) -> bool {
        matches!(self, Action::Approve { .. } | Action::Decline { .. })
    }
}

/// An action on one read by one clerk, with the revision the clerk saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRequest {
    pub read_id: ReadId,
    /// The read's revision when the clerk looked at it (`ReadDetail::rev`). `None` skips the
    /// check (a script acting on purpose); the TUI always sends it.
    pub seen_rev: Option<u64>,
    pub clerk: String,
    pub action: Action,
}

/// What an action did (all of it committed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionOutcome {
    pub read: StoredRead,
    pub entry: AuditEntry,
    pub order: Option<ServiceOrder>,
    pub estimate: Option<EstimatePreview>,
    /// Entries of the meter's next read, re-validated because this one changed.
    pub revalidated: Vec<AuditEntry>,
    pub warnings: Vec<String>,
}

impl ActionOutcome {
    /// One line for the clerk.
    pub fn summary(&self) -> String {
        let e = &self.entry;
        let mut s = match e.action {
            AuditAction::Note => format!("note added to read {}", e.read_id),
            _ if e.old_value != e.new_value => format!(
                "read {}: {} {} → {}, {} → {}",
                e.read_id,
                e.action.as_str(),
                e.old_value,
                e.new_value,
                e.old_status,
                e.new_status
            ),
            _ => format!(
                "read {}: {} ({} → {})",
                e.read_id,
                e.action.as_str(),
                e.old_status,
                e.new_status
            ),
        };
        if let Some(o) = &self.order {
            s.push_str(&format!("; service order {} due {}", o.id, o.due));
        }
        for r in &self.revalidated {
            s.push_str(&format!("; next read {} re-validated: {}", r.read_id, r.new_status));
        }
        s
    }
}

/// Describe an audit entry for a refusal: "edit by ann at …: 912 → 612, flagged → edited".
fn describe(e: &AuditEntry) -> String {
    let mut s = format!(
        "{} by {} at {} (entry {})",
        e.action.as_str(),
        e.clerk,
        e.at.strftime("%Y-%m-%d %H:%M:%S"),
        e.seq
    );
    if e.old_value != e.new_value {
        s.push_str(&format!(": {} → {}", e.old_value, e.new_value));
    }
    if e.old_status != e.new_status {
        s.push_str(&format!(", {} → {}", e.old_status, e.new_status));
    }
    if !e.reason.is_empty() {
        s.push_str(&format!(", \"{}\"", e.reason));
    }
    s
}

/// Run one clerk action (see [`Action`]) in one durable transaction.
pub fn act(
    store: &dyn Store,
    vee_config: &VeeConfig,
    req: &ActionRequest,
    now: Timestamp,
) -> Result<ActionOutcome, ReviewError> {
    let now = to_store_precision(now);
    crate::store::write_within(store, crate::store::INTERACTIVE_DEADLINE, |txn| {
        let outcome = act_in(txn, vee_config, req, now)?;
        Ok(outcome)
    })
}

fn act_in(
    txn: &mut dyn WriteTxn,
    vee_config: &VeeConfig,
    req: &ActionRequest,
    now: Timestamp,
) -> Result<ActionOutcome, ReviewError> {
    let id = req.read_id;
    let read = txn.read(id)?.ok_or(ReviewError::NotFound(id))?;
    let (rev, last) = revision(&*txn, id)?;
    if let (Some(seen), false) = (req.seen_rev, matches!(req.action, Action::Note { .. }))
        && seen != rev
    {
        let what = last
            .as_ref()
            .map(describe)
            .unwrap_or_else(|| "an unrecorded change".into());
        return Err(ReviewError::Conflict(format!(
            "read {id} changed since you loaded it: {what}; nothing done, look again"
        )));
    }
    let refuse_status = |allowed: &str| {
        let mut msg = format!("read {id} is {}, {allowed}", read.status);
        if let Some(e) = &last {
            msg.push_str(&format!(" (last change: {})", describe(e)));
        }
        ReviewError::Refused(msg)
    };
    let clerk = req.clerk.trim().to_owned();
    if clerk.is_empty() {
        return Err(ReviewError::Refused("the clerk's name is empty".into()));
    }
    // The control socket checks a client's texts already; the review screen without a daemon
    // reaches here directly, and the audit trail keeps the text for good.
    limits::check_opt(Field::Note, "the reason", req.action.text())
        .and_then(|()| limits::check(Field::Name, "the clerk's name", &clerk))
        .map_err(|e| ReviewError::Refused(e.to_string()))?;
    if req.action.needs_supervisor() && req.seen_rev.is_none() {
        // An approval is of what the supervisor looked at, never of whatever is there now.
        return Err(ReviewError::Refused(format!(
            "approving or declining read {id} needs the revision you looked at (--rev, from `review approvals`)"
        )));
    }
    let is_pending = read.status == ReadStatus::PendingApproval;
    if is_pending
        && matches!(
            req.action,
            Action::Accept { .. } | Action::Edit { .. } | Action::Estimate { .. } | Action::Reject { .. }
        )
    {
        return Err(refuse_status(
            "its adjustment awaits a supervisor's approval (review approve or decline; its author may undo it)",
        ));
    }
    if req.action.needs_supervisor() && !is_pending {
        return Err(refuse_status("no adjustment of it awaits approval"));
    }

    let mut new = read.clone();
    let mut order = None;
    let mut estimate = None;
    let mut warnings = Vec::new();
    // The edit of an exported read opens the record the review screen shows.
    let mut shows_change = false;
    let reason;
    match &req.action {
        Action::Accept { reason: r } => {
            if read.status != ReadStatus::Flagged {
                return Err(refuse_status("not held for review"));
            }
            new.status = ReadStatus::Accepted;
            reason = if r.trim().is_empty() {
                "accepted as read".to_owned()
            } else {
                r.trim().to_owned()
            };
        }
        Action::Edit { value, reason: r } => {
            if r.trim().is_empty() {
                return Err(ReviewError::Refused("a reason is required to edit a read".into()));
            }
            match read.status {
                ReadStatus::Rejected => return Err(refuse_status("undo the reject before editing it")),
                ReadStatus::Batched => {
                    return Err(refuse_status(&format!(
                        "in billing batch {} that billing has not acknowledged yet; edit it after the ack (a correction then goes in the next batch)",
                        read.batch.map(|b| b.to_string()).unwrap_or_else(|| "?".into())
                    )));
                }
                _ => {}
            }
            if *value == read.read.value {
                return Err(ReviewError::Refused(format!(
                    "read {id} already has the value {value}; accept it instead"
                )));
            }
            if value.is_negative() {
                return Err(ReviewError::Refused(format!(
                    "a register value cannot be negative: {value}"
                )));
            }
            new.read.value = *value;
            let inputs = vee_inputs(&*txn, &new, vee_config.estimate_limit)?;
            if let Some(m) = &inputs.meter
                && *value >= m.modulus()
            {
                return Err(ReviewError::Refused(format!(
                    "{value} does not fit meter {}'s {} dials ({} decimals)",
                    m.meter_id, m.dials, m.decimals
                )));
            }
            let outcome = vee::validate(&inputs.as_meter_history(), &new.read, vee_config);
            new.consumption = outcome.consumption;
            new.flags = outcome.flags;
            new.status = ReadStatus::Edited;
            if let Some(why) = approval_needed(vee_config, inputs.meter.as_ref(), &read, &new) {
                new.status = ReadStatus::PendingApproval;
                warnings.push(awaits_approval(&why));
            }
            if read.status == ReadStatus::Exported && txn.billed_read_change(id)?.is_none_or(|c| c.audit_seq.is_none())
            {
                shows_change = true;
                warnings.push(format!(
                    "read {id} went to billing in batch {}: a correction record keeps the original {}",
                    read.batch.map(|b| b.to_string()).unwrap_or_else(|| "?".into()),
                    read.read.value
                ));
            }
            reason = r.trim().to_owned();
        }
        Action::Estimate { reason: r } => {
            if read.status != ReadStatus::Flagged {
                return Err(refuse_status("not held for review"));
            }
            let inputs = vee_inputs(&*txn, &read, vee_config.estimate_limit)?;
            let e = estimate_from(&read, &inputs)?;
            new.read.value = e.value;
            new.read.read_type = ReadType::Estimate;
            let outcome = vee::validate(&inputs.as_meter_history(), &new.read, vee_config);
            new.consumption = outcome.consumption;
            new.flags = outcome.flags;
            new.status = ReadStatus::Estimated;
            if let Some(why) = approval_needed(vee_config, inputs.meter.as_ref(), &read, &new) {
                new.status = ReadStatus::PendingApproval;
                warnings.push(awaits_approval(&why));
            }
            if new.has_flag(Rule::EstimateLimit) {
                warnings.push(format!(
                    "meter {} already has {} estimates in a row (limit {}): send a reader",
                    read.read.meter_id, e.prior_estimates, vee_config.estimate_limit
                ));
            }
            let base = format!(
                "ADU {} × {} days = {} → {} register units on {}",
                e.adu, e.days, e.usage, e.register_units, e.previous_value
            );
            reason = if r.trim().is_empty() {
                base
            } else {
                format!("{}; {base}", r.trim())
            };
            estimate = Some(e);
        }
        Action::Reject { reason: r, due } => {
            if r.trim().is_empty() {
                return Err(ReviewError::Refused("a reason is required to reject a read".into()));
            }
            if !matches!(read.status, ReadStatus::Flagged | ReadStatus::Validated) {
                return Err(refuse_status("only held or validated reads can be rejected"));
            }
            new.status = ReadStatus::Rejected;
            let meter = txn.meter(&read.read.meter_id)?;
            let mut o = ServiceOrder {
                id: 0,
                meter_id: read.read.meter_id.clone(),
                read_id: id,
                route: meter.as_ref().map(|m| m.route.clone()).unwrap_or_default(),
                sequence: meter.as_ref().map_or(0, |m| m.sequence),
                address: meter.as_ref().map(|m| m.address.clone()).unwrap_or_default(),
                reason: r.trim().to_owned(),
                due: *due,
                status: OrderStatus::Open,
                created_at: now,
                created_by: clerk.clone(),
                closed_at: None,
                closed_by: None,
                outcome: String::new(),
            };
            o.id = txn.put_service_order(&o)?;
            reason = format!("{} (re-read service order {} due {})", r.trim(), o.id, due);
            order = Some(o);
        }
        Action::Note { text } => {
            if text.trim().is_empty() {
                return Err(ReviewError::Refused("the note is empty".into()));
            }
            reason = text.trim().to_owned();
        }
        Action::Undo => {
            let Some(e) = last.as_ref().filter(|e| undoable(e.action)) else {
                return Err(ReviewError::Refused(match &last {
                    Some(e) => format!(
                        "the last change of read {id} was {}: nothing a clerk can undo",
                        describe(e)
                    ),
                    None => format!("read {id} has no change to undo"),
                }));
            };
            if read.status != e.new_status {
                return Err(ReviewError::Refused(format!(
                    "read {id} is {} since {} (it went on to billing); edit it instead of undoing",
                    read.status,
                    describe(e)
                )));
            }
            if is_pending && !same_person(&clerk, &e.clerk) {
                // Withdrawing a request for approval is its author's; a supervisor declines.
                return Err(ReviewError::Refused(format!(
                    "read {id} awaits approval of {}: only {} can undo it; a supervisor declines it instead",
                    describe(e),
                    e.clerk
                )));
            }
            new = txn.undo_snapshot(e.seq)?.ok_or_else(|| StoreError::Corrupt {
                what: "undo snapshot",
                detail: format!("audit entry {} has no snapshot", e.seq),
            })?;
            if e.action == AuditAction::Reject {
                for mut o in txn
                    .service_orders()?
                    .into_iter()
                    .filter(|o| o.read_id == id && o.status == OrderStatus::Open)
                {
                    o.status = OrderStatus::Cancelled;
                    o.closed_at = Some(now);
                    o.closed_by = Some(clerk.clone());
                    o.outcome = format!("reject undone by {clerk}");
                    txn.put_service_order(&o)?;
                    order = Some(o);
                }
            }
            // The edit the review screen showed the change for is undone (billing still hears
            // of it if a correction is due: the read is back to what billing has).
            if let Some(mut c) = txn.billed_read_change(id)?.filter(|c| c.audit_seq == Some(e.seq)) {
                c.audit_seq = None;
                txn.put_billed_read_change(&c)?;
            }
            reason = format!("undo of entry {}: {}", e.seq, describe(e));
        }
        Action::Approve { note } => {
            let e = pending_of(&*txn, id)?;
            if same_person(&clerk, &e.clerk) {
                return Err(ReviewError::Refused(format!(
                    "read {id}: {clerk} made the adjustment awaiting approval ({}); another supervisor must approve it",
                    describe(&e)
                )));
            }
            new.status = if e.action == AuditAction::Estimate {
                ReadStatus::Estimated
            } else {
                ReadStatus::Edited
            };
            let approved = format!("approved {} of entry {} by {}", e.action.as_str(), e.seq, e.clerk);
            reason = if note.trim().is_empty() {
                approved
            } else {
                format!("{}; {approved}", note.trim())
            };
        }
        Action::Decline { reason: r } => {
            if r.trim().is_empty() {
                return Err(ReviewError::Refused(
                    "a reason is required to decline an adjustment".into(),
                ));
            }
            let e = pending_of(&*txn, id)?;
            if same_person(&clerk, &e.clerk) {
                return Err(ReviewError::Refused(format!(
                    "read {id}: {clerk} made the adjustment awaiting approval ({}); another supervisor must decline it (or undo it yourself)",
                    describe(&e)
                )));
            }
            let before = txn.undo_snapshot(e.seq)?.ok_or_else(|| StoreError::Corrupt {
                what: "undo snapshot",
                detail: format!("audit entry {} has no snapshot", e.seq),
            })?;
            // Back to the read as it came before the adjustment (value, read type), judged by
            // VEE against the history as it is now (an earlier read may have changed since).
            new.read = before.read;
            let inputs = vee_inputs(&*txn, &new, vee_config.estimate_limit)?;
            let outcome = vee::validate(&inputs.as_meter_history(), &new.read, vee_config);
            new.consumption = outcome.consumption;
            new.flags = outcome.flags;
            new.status = ReadStatus::Flagged;
            // Billing is back to what it has (if it had the read): the review screen stops
            // showing the declined edit as a change (as after an undo).
            if let Some(mut c) = txn.billed_read_change(id)?.filter(|c| c.audit_seq == Some(e.seq)) {
                c.audit_seq = None;
                txn.put_billed_read_change(&c)?;
            }
            reason = format!(
                "{} (declined {} of entry {} by {})",
                r.trim(),
                e.action.as_str(),
                e.seq,
                e.clerk
            );
        }
    }

    let changed = new != read;
    if changed {
        // A read billing already has: the correction it will get carries the clerk's reason.
        if crate::model::billing::BilledReadChange::changes_what_was_billed(&read, &new) {
            crate::billing::note_change(&mut *txn, id, &reason, Some(&clerk), now)?;
        }
        txn.update_read(&new, now)?;
    }
    let draft = AuditEntry {
        seq: 0,
        at: now,
        clerk,
        action: req.action.audit_action(),
        read_id: id,
        meter_id: read.read.meter_id.clone(),
        old_value: read.read.value,
        new_value: new.read.value,
        old_status: read.status,
        new_status: new.status,
        reason,
        prev_hash: [0; HASH_LEN],
        hash: [0; HASH_LEN],
        day: None,
    };
    let entry = txn.append_audit(draft, req.action.audit_action().changes_read().then_some(&read))?;
    if shows_change && let Some(mut c) = txn.billed_read_change(id)? {
        c.audit_seq = Some(entry.seq);
        txn.put_billed_read_change(&c)?;
    }
    let mut revalidated = Vec::new();
    if new.read.value != read.read.value || new.status != read.status {
        revalidate_next(txn, vee_config, &new, now, &mut revalidated, &mut warnings)?;
    }
    Ok(ActionOutcome {
        read: new,
        entry,
        order,
        estimate,
        revalidated,
        warnings,
    })
}

/// VEE again for the meter's next read: its consumption starts from this read's value (or
/// from the one before, when this read was rejected).
fn revalidate_next(
    txn: &mut dyn WriteTxn,
    vee_config: &VeeConfig,
    changed: &StoredRead,
    now: Timestamp,
    entries: &mut Vec<AuditEntry>,
    warnings: &mut Vec<String>,
) -> Result<(), ReviewError> {
    let from = changed
        .read
        .read_at
        .checked_add(SignedDuration::from_micros(1))
        .unwrap_or(Timestamp::MAX);
    let Some(next) = txn
        .meter_reads(&changed.read.meter_id, from, Timestamp::MAX)?
        .into_iter()
        .find(|r| r.summary().is_history())
    else {
        return Ok(());
    };
    let inputs = vee_inputs(&*txn, &next, vee_config.estimate_limit)?;
    let outcome = vee::validate(&inputs.as_meter_history(), &next.read, vee_config);
    let mut updated = next.clone();
    match next.status {
        ReadStatus::Validated | ReadStatus::Flagged => {
            updated.status = outcome.status;
            updated.flags = outcome.flags;
            updated.consumption = outcome.consumption;
        }
        // A pending adjustment is billed with the consumption it will have once approved.
        ReadStatus::Accepted | ReadStatus::Edited | ReadStatus::Estimated | ReadStatus::PendingApproval => {
            updated.consumption = outcome.consumption
        }
        _ => {
            if outcome.consumption != next.consumption {
                warnings.push(format!(
                    "the next read {} is {} with consumption {}; from the changed read it would be {}: billing needs a correction",
                    next.id,
                    next.status,
                    opt(next.consumption),
                    opt(outcome.consumption)
                ));
            }
            return Ok(());
        }
    }
    if updated == next {
        return Ok(());
    }
    txn.update_read(&updated, now)?;
    let rules = |r: &StoredRead| r.flags.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>().join(",");
    let draft = AuditEntry {
        seq: 0,
        at: now,
        clerk: VEE_CLERK.into(),
        action: AuditAction::Revalidate,
        read_id: next.id,
        meter_id: next.read.meter_id.clone(),
        old_value: next.read.value,
        new_value: updated.read.value,
        old_status: next.status,
        new_status: updated.status,
        reason: format!(
            "previous read {} changed: consumption {} → {}, flags [{}] → [{}]",
            changed.id,
            opt(next.consumption),
            opt(updated.consumption),
            rules(&next),
            rules(&updated)
        ),
        prev_hash: [0; HASH_LEN],
        hash: [0; HASH_LEN],
        day: None,
    };
    entries.push(txn.append_audit(draft, Some(&next))?);
    Ok(())
}

/// The warning of an adjustment left awaiting approval.
fn awaits_approval(why: &str) -> String {
    format!("{why}: the read awaits a supervisor's approval (meterd review approvals)")
}

/// The adjustment a pending read waits with, or why there is none to approve or decline.
fn pending_of(txn: &dyn WriteTxn, id: ReadId) -> Result<AuditEntry, ReviewError> {
    pending_adjustment(txn, id)?.ok_or_else(|| {
        ReviewError::Refused(format!(
            "read {id} is pending_approval but no edit or estimate in its audit trail made it so (see `meterd audit verify`); nothing done"
        ))
    })
}

fn opt(q: Option<Quantity>) -> String {
    q.map(|q| q.to_string()).unwrap_or_else(|| "-".into())
}

/// Close a re-read service order: the reader went back.
pub fn complete_order(
    store: &dyn Store,
    id: u64,
    clerk: &str,
    outcome: &str,
    now: Timestamp,
) -> Result<ServiceOrder, ReviewError> {
    crate::store::write_within(store, crate::store::INTERACTIVE_DEADLINE, |txn| {
        let mut o = txn
            .service_order(id)?
            .ok_or_else(|| ReviewError::Refused(format!("service order {id} not found")))?;
        if o.status != OrderStatus::Open {
            return Err(ReviewError::Refused(format!(
                "service order {id} is already {} (by {} at {})",
                o.status.as_str(),
                o.closed_by.as_deref().unwrap_or("?"),
                o.closed_at.map(|t| t.to_string()).unwrap_or_default()
            )));
        }
        o.status = OrderStatus::Completed;
        o.closed_at = Some(to_store_precision(now));
        o.closed_by = Some(clerk.to_owned());
        o.outcome = outcome.to_owned();
        txn.put_service_order(&o)?;
        Ok(o)
    })
}

/// Record a meter exchange; the meter's dial count becomes the new meter's.
pub fn record_meter_change(store: &dyn Store, change: &MeterChange) -> Result<(), ReviewError> {
    crate::store::write_within(store, crate::store::INTERACTIVE_DEADLINE, |txn| {
        let mut meter = txn
            .meter(&change.meter_id)?
            .ok_or_else(|| ReviewError::Refused(format!("meter {} is not in the store", change.meter_id)))?;
        if change.new_dials == 0 || change.new_dials > crate::model::MAX_DIALS || change.new_dials <= meter.decimals {
            return Err(ReviewError::Refused(format!(
                "the new meter's dial count {} does not make sense",
                change.new_dials
            )));
        }
        meter.dials = change.new_dials;
        txn.put_meter(&meter)?;
        txn.put_meter_change(change)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Origin, Read, ReadType};

    #[test]
    fn a_reason_over_its_limit_or_with_control_characters_is_refused_and_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::RedbStore::open_dir(dir.path()).unwrap();
        let read = Read {
            meter_id: "W-1".into(),
            read_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            value: Quantity::from_units(5).unwrap(),
            raw: "5".into(),
            read_type: ReadType::Manual,
            codes: vec![],
            reader: None,
            origin: Origin::file_line("f.csv", 2),
        };
        let report = crate::ingest::accept_reads(&store, &VeeConfig::default(), vec![read]).unwrap();
        let id = report.read_ids[0];
        let now = Timestamp::now();
        let ask = |action: Action| ActionRequest {
            read_id: id,
            seen_rev: None,
            clerk: "ann".into(),
            action,
        };
        for (action, needle) in [
            (
                Action::Note { text: "n".repeat(5000) },
                "the reason: 5000 bytes long; at most 4096",
            ),
            (
                Action::Accept {
                    reason: "ok\u{1b}]0;pwned\u{7}".into(),
                },
                "the reason: contains the control character U+001B",
            ),
        ] {
            match act(&store, &VeeConfig::default(), &ask(action), now) {
                Err(ReviewError::Refused(m)) => assert!(m.starts_with(needle) && m.len() < 300, "{m}"),
                other => panic!("{other:?}"),
            }
        }
        let audit_len = || store.begin_read().unwrap().audit_len().unwrap();
        let before = audit_len();
        assert_eq!(before, 0);
        assert!(
            act(
                &store,
                &VeeConfig::default(),
                &ask(Action::Note { text: "n".repeat(4096) }),
                now
            )
            .is_ok()
        );
        assert_eq!(audit_len(), 1);
    }
}
