//! Four-eyes approval of large adjustments: a clerk's edit or estimate that changes a read's
//! consumption by more than its service's threshold (`[vee.water] approval_threshold`,
//! `approval_threshold_percent`) leaves the read `pending_approval` (the proposed value on the
//! read, not billable) until a supervisor other than its author approves or declines it
//! ([`Action::Approve`](super::Action::Approve), [`Action::Decline`](super::Action::Decline)).
//!
//! Who may approve is a role the caller checks ([`Action::needs_supervisor`](super::Action::needs_supervisor));
//! that the approver is not the author is checked here, on the audit entry's clerk name, so it
//! holds whatever names clerks (the OS user, a socket peer's identity, `--on-behalf-of`).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::detail::revision;
use crate::model::{AuditAction, AuditEntry, Meter, Quantity, ReadId, ReadStatus, Service, StoredRead};
use crate::store::{ReadTxn, Result, Store};
use crate::vee::VeeConfig;

/// The change of an adjustment from `old` to `new` (signed) and the consumption it is measured
/// from: the consumption's change, or the value's when either side has no consumption (a
/// meter's first read).
pub fn consumption_change(old: &StoredRead, new: &StoredRead) -> (Quantity, Quantity) {
    let (from, to) = match (old.consumption, new.consumption) {
        (Some(a), Some(b)) => (a, b),
        _ => (old.read.value, new.read.value),
    };
    // Values fit in a register of ≤ 12 dials, so this does not overflow; if it did, the change
    // is as large as it gets (and surely needs approval).
    let change = to.checked_sub(from).unwrap_or(Quantity::from_micros(i64::MAX));
    (change, from)
}

/// Why changing `old` into `new` needs a supervisor's approval under the thresholds of the
/// meter's service, or `None`. A read of a meter not in the store has no service, hence no
/// threshold (billing cannot bill it either).
pub fn approval_needed(
    config: &VeeConfig,
    meter: Option<&Meter>,
    old: &StoredRead,
    new: &StoredRead,
) -> Option<String> {
    let service = meter?.service;
    let (change, base) = consumption_change(old, new);
    config
        .factors(service)
        .approval_needed(change, base)
        .map(|why| format!("{service}: {why}"))
}

/// Whether the person acting (`actor`, a clerk name as the audit trail records it) is the
/// author of an entry (`author`): the same name, trimmed, case-insensitive (refusing more is
/// the safe side of four eyes). A name is the OS user, or `alice (entered by root)` when an
/// admin entered alice's decision: then alice is the author, and root acting as himself counts
/// as the author too (he typed the adjustment; approving it would be his second pair of eyes
/// on his own work). Entering another person's decision (`bob (entered by root)`) is bob's.
pub(super) fn same_person(actor: &str, author: &str) -> bool {
    let (actor_name, actor_enterer) = clerk_parts(actor);
    let (author_name, author_enterer) = clerk_parts(author);
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    same(actor_name, author_name) || (actor_enterer.is_none() && author_enterer.is_some_and(|e| same(actor_name, e)))
}

/// `alice (entered by root)` → (`alice`, Some(`root`)); `alice` → (`alice`, None).
fn clerk_parts(clerk: &str) -> (&str, Option<&str>) {
    let clerk = clerk.trim();
    match clerk.strip_suffix(')').and_then(|c| c.split_once(" (entered by ")) {
        Some((name, by)) => (name.trim(), Some(by.trim())),
        None => (clerk, None),
    }
}

/// The audit entry of the adjustment a `pending_approval` read waits with: its latest edit or
/// estimate (only re-validations can follow it while it waits), if that made it pending.
pub(super) fn pending_adjustment(txn: &dyn ReadTxn, read_id: ReadId) -> Result<Option<AuditEntry>> {
    Ok(txn
        .read_audit(read_id)?
        .into_iter()
        .rev()
        .find(|e| matches!(e.action, AuditAction::Edit | AuditAction::Estimate))
        .filter(|e| e.new_status == ReadStatus::PendingApproval))
}

/// One read in the supervisors' approvals queue (`meterd review approvals`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalItem {
    pub read_id: ReadId,
    /// The read's revision: approve and decline carry it (`--rev`).
    pub rev: u64,
    pub meter_id: String,
    pub service: Option<Service>,
    pub route: String,
    pub unit: String,
    /// `edit` or `estimate`.
    pub action: AuditAction,
    /// The read before the adjustment.
    pub old_value: Quantity,
    pub old_consumption: Option<Quantity>,
    pub old_status: ReadStatus,
    /// The proposed read (the read's value now).
    pub value: Quantity,
    pub consumption: Option<Quantity>,
    /// |proposed − old| consumption (value, for a meter's first read).
    pub change: Quantity,
    /// The clerk who made the adjustment (cannot approve it).
    pub author: String,
    #[serde(with = "crate::model::time_serde")]
    pub at: Timestamp,
    pub reason: String,
    /// The adjustment's audit entry.
    pub entry: u64,
}

/// The reads awaiting approval, oldest request first.
pub fn approvals(store: &dyn Store) -> Result<Vec<ApprovalItem>> {
    let txn = store.begin_read()?;
    let reads = txn.reads_with_status(ReadStatus::PendingApproval, usize::MAX)?;
    let ids: Vec<&str> = reads.iter().map(|r| r.read.meter_id.as_str()).collect();
    let meters = txn.meters_by_id(&ids)?;
    let mut out = Vec::with_capacity(reads.len());
    for (read, meter) in reads.iter().zip(meters) {
        let Some(e) = pending_adjustment(txn.as_ref(), read.id)? else {
            // Made pending by no clerk's adjustment: cannot happen through meterd, and there is
            // nothing to approve or decline (no author, no value to go back to).
            continue;
        };
        let before = txn.undo_snapshot(e.seq)?;
        // Without a snapshot (none is missing through meterd), the entry's numbers stand in.
        let old = before.unwrap_or_else(|| {
            let mut r = read.clone();
            r.read.value = e.old_value;
            r.status = e.old_status;
            r.consumption = None;
            r
        });
        let (change, _) = consumption_change(&old, read);
        let (rev, _) = revision(txn.as_ref(), read.id)?;
        out.push(ApprovalItem {
            read_id: read.id,
            rev,
            meter_id: read.read.meter_id.clone(),
            service: meter.as_ref().map(|m| m.service),
            route: meter.as_ref().map(|m| m.route.clone()).unwrap_or_default(),
            unit: meter.as_ref().map(|m| m.unit.clone()).unwrap_or_default(),
            action: e.action,
            old_value: old.read.value,
            old_consumption: old.consumption,
            old_status: old.status,
            value: read.read.value,
            consumption: read.consumption,
            change: Quantity::from_micros(change.micros().saturating_abs()),
            author: e.clerk,
            at: e.at,
            reason: e.reason,
            entry: e.seq,
        });
    }
    out.sort_by(|a, b| a.at.cmp(&b.at).then(a.read_id.cmp(&b.read_id)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MeterStatus, Origin, Read, ReadType};

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    fn stored(value: &str, consumption: Option<&str>) -> StoredRead {
        StoredRead {
            id: 1,
            read: Read {
                meter_id: "W-1".into(),
                read_at: Timestamp::from_second(1_700_000_000).unwrap(),
                value: q(value),
                raw: value.into(),
                read_type: ReadType::Manual,
                codes: vec![],
                reader: None,
                origin: Origin::file_line("f", 1),
            },
            status: ReadStatus::Flagged,
            flags: vec![],
            consumption: consumption.map(q),
            received_at: Timestamp::from_second(1_700_000_000).unwrap(),
            batch: None,
        }
    }

    fn meter(service: Service) -> Meter {
        Meter {
            meter_id: "W-1".into(),
            account: "A".into(),
            route: "R".into(),
            sequence: 1,
            service,
            unit: "gal".into(),
            dials: 6,
            decimals: 0,
            multiplier: q("10"),
            status: MeterStatus::Active,
            address: String::new(),
            notes: String::new(),
        }
    }

    #[test]
    fn the_change_is_of_consumption_or_of_the_value_without_a_previous_read() {
        let (c, base) = consumption_change(&stored("14220", Some("912")), &stored("13608", Some("300")));
        assert_eq!((c, base), (q("-612"), q("912")));
        // A meter's first read has no consumption: the value's change counts.
        let (c, base) = consumption_change(&stored("500", None), &stored("560", None));
        assert_eq!((c, base), (q("60"), q("500")));
    }

    #[test]
    fn thresholds_apply_per_service_in_register_units() {
        let mut config = VeeConfig::default();
        config.water.approval_threshold = Some(q("50"));
        config.gas.approval_threshold = Some(q("1000"));
        let (old, new) = (stored("14220", Some("912")), stored("13608", Some("300")));
        let why = approval_needed(&config, Some(&meter(Service::Water)), &old, &new).unwrap();
        assert!(why.starts_with("water: consumption change 612"), "{why}");
        assert_eq!(approval_needed(&config, Some(&meter(Service::Gas)), &old, &new), None);
        // The multiplier (billing units) plays no part: 612 register units, not 6120.
        config.gas.approval_threshold = Some(q("612"));
        assert_eq!(approval_needed(&config, Some(&meter(Service::Gas)), &old, &new), None);
        assert_eq!(
            approval_needed(&config, Some(&meter(Service::Electric)), &old, &new),
            None
        );
        assert_eq!(approval_needed(&config, None, &old, &new), None);
    }

    #[test]
    fn the_author_is_the_same_person_whatever_the_case_or_spaces() {
        assert!(same_person("ann", " Ann "));
        assert!(!same_person("ann", "anne"));
    }

    #[test]
    fn an_admin_who_entered_an_adjustment_is_its_author_too() {
        // root typed ann's adjustment: ann is its author, and so is root acting as himself.
        assert!(same_person("ann", "ann (entered by root)"));
        assert!(same_person("root", "ann (entered by root)"));
        assert!(same_person("ann (entered by carol)", "ann (entered by root)"));
        // Entering bob's decision on paper is bob's approval, not root's.
        assert!(!same_person("bob (entered by root)", "ann (entered by root)"));
        assert!(!same_person("bob", "ann (entered by root)"));
    }
}
