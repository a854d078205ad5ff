//! Review storage: service orders, meter changes, audit entries by read and meter, undo.

use meterd::model::{AuditAction, AuditEntry, MeterChange, OrderStatus, ReadStatus, ServiceOrder};
use meterd::store::prelude::*;

use super::*;

pub fn audit_entry(read: &meterd::model::StoredRead, new_value: i64, at: &str) -> AuditEntry {
    AuditEntry {
        seq: 0,
        at: t(at),
        clerk: "ann".into(),
        action: AuditAction::Edit,
        read_id: read.id,
        meter_id: read.read.meter_id.clone(),
        old_value: read.read.value,
        new_value: q(new_value),
        old_status: read.status,
        new_status: ReadStatus::Edited,
        reason: "dial misread".into(),
        prev_hash: [0; meterd::model::HASH_LEN],
        hash: [0; meterd::model::HASH_LEN],
        day: None,
    }
}

fn order(id: u64, meter: &str) -> ServiceOrder {
    ServiceOrder {
        id,
        meter_id: meter.into(),
        read_id: 1,
        route: "R1".into(),
        sequence: 1,
        address: "1 Main St".into(),
        reason: "re-read".into(),
        due: "2025-06-05".parse().unwrap(),
        status: OrderStatus::Open,
        created_at: t("2025-06-01T00:00:00Z"),
        created_by: "ann".into(),
        closed_at: None,
        closed_by: None,
        outcome: String::new(),
    }
}

pub fn service_orders_get_fresh_ids_and_are_replaced(e: &dyn Engine) {
    let s = e.store();
    let mut txn = s.begin_write().unwrap();
    let a = txn.put_service_order(&order(0, "M1")).unwrap();
    let b = txn.put_service_order(&order(0, "M2")).unwrap();
    assert!(a > 0 && b > a, "{a} {b}");
    let mut done = order(a, "M1");
    done.status = OrderStatus::Completed;
    assert_eq!(txn.put_service_order(&done).unwrap(), a, "replaced, same id");
    txn.commit().unwrap();
    drop(s);
    let s = e.reopen();
    let mut txn = s.begin_write().unwrap();
    let c = txn.put_service_order(&order(0, "M3")).unwrap();
    assert!(c > b, "never reused across reopen");
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.service_order(a).unwrap(), Some(done));
    assert_eq!(txn.service_order(c + 1).unwrap(), None);
    assert_eq!(
        txn.service_orders().unwrap().iter().map(|o| o.id).collect::<Vec<_>>(),
        [a, b, c]
    );
}

pub fn meter_changes_oldest_first(e: &dyn Engine) {
    let s = e.store();
    let change = |meter: &str, at: &str, serial: &str| MeterChange {
        meter_id: meter.into(),
        at: t(at),
        old_serial: "old".into(),
        new_serial: serial.into(),
        old_dials: 6,
        new_dials: 8,
        install_read: q(0),
        removal_read: Some(q(123)),
    };
    let mut txn = s.begin_write().unwrap();
    txn.put_meter_change(&change("M1", "2025-03-01T00:00:00Z", "b"))
        .unwrap();
    txn.put_meter_change(&change("M1", "2025-01-01T00:00:00Z", "a"))
        .unwrap();
    txn.put_meter_change(&change("M2", "2025-02-01T00:00:00Z", "z"))
        .unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(
        txn.meter_changes("M1").unwrap(),
        [
            change("M1", "2025-01-01T00:00:00Z", "a"),
            change("M1", "2025-03-01T00:00:00Z", "b")
        ]
    );
    assert!(txn.meter_changes("M3").unwrap().is_empty());
}

pub fn audit_entries_by_read_and_meter_with_undo_snapshots(e: &dyn Engine) {
    let s = e.store();
    let ids = insert(
        &*s,
        &[
            stored("M1", "2025-01-01T00:00:00Z", 10, ReadStatus::Flagged),
            stored("M2", "2025-01-01T00:00:00Z", 20, ReadStatus::Flagged),
            stored("M1", "2025-02-01T00:00:00Z", 30, ReadStatus::Flagged),
        ],
    );
    let mut txn = s.begin_write().unwrap();
    let reads: Vec<_> = ids.iter().map(|id| txn.read(*id).unwrap().unwrap()).collect();
    let e1 = txn
        .append_audit(audit_entry(&reads[0], 11, "2025-06-01T00:00:00Z"), Some(&reads[0]))
        .unwrap();
    let e2 = txn
        .append_audit(audit_entry(&reads[1], 21, "2025-06-01T00:01:00Z"), Some(&reads[1]))
        .unwrap();
    let e3 = txn
        .append_audit(audit_entry(&reads[2], 31, "2025-06-01T00:02:00Z"), None)
        .unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.audit_len().unwrap(), 3);
    assert_eq!(txn.read_audit(ids[0]).unwrap(), std::slice::from_ref(&e1));
    assert_eq!(txn.read_audit(ids[0] + 100).unwrap(), vec![]);
    assert_eq!(txn.meter_audit("M1").unwrap(), [e1.clone(), e3.clone()]);
    assert_eq!(txn.meter_audit("M2").unwrap(), std::slice::from_ref(&e2));
    assert_eq!(txn.undo_snapshot(e1.seq).unwrap(), Some(reads[0].clone()));
    assert_eq!(txn.undo_snapshot(e3.seq).unwrap(), None, "none kept");
    assert_eq!(txn.undo_snapshot(99).unwrap(), None);
    let scan = txn.audit_scan().unwrap();
    assert_eq!(
        scan.into_iter().map(|(k, v)| (k, v.unwrap())).collect::<Vec<_>>(),
        [(e1.seq, e1), (e2.seq, e2), (e3.seq, e3)]
    );
}

/// An interval day's entry (read id 0, the day in `day`) is in the same chain, found by meter
/// and in the scan, and never by read.
pub fn a_day_entry_is_in_the_chain_and_found_by_meter(e: &dyn Engine) {
    let s = e.store();
    let ids = insert(&*s, &[stored("M1", "2025-01-01T00:00:00Z", 10, ReadStatus::Flagged)]);
    let mut txn = s.begin_write().unwrap();
    let read = txn.read(ids[0]).unwrap().unwrap();
    let e1 = txn
        .append_audit(audit_entry(&read, 11, "2025-06-01T00:00:00Z"), Some(&read))
        .unwrap();
    let mut day = audit_entry(&read, 24, "2025-06-01T00:01:00Z");
    day.read_id = 0;
    day.old_status = ReadStatus::Flagged;
    day.day = Some(meterd::model::DayAudit {
        channel: "E1".into(),
        date: "2025-03-04".parse().unwrap(),
        rev: 2,
        changes: vec![meterd::model::IntervalChange {
            interval: 19,
            old: Some(q(20)),
            new: None,
            old_quality: Some(meterd::model::interval::Quality::Estimated),
            old_method: Some(meterd::model::interval::Method::Linear),
            old_source: Some(1),
        }],
    });
    let e2 = txn.append_audit(day, None).unwrap();
    txn.commit().unwrap();
    assert_eq!(e2.prev_hash, e1.hash);
    assert_eq!(e2.hash, e2.compute_hash());
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.meter_audit("M1").unwrap(), [e1.clone(), e2.clone()]);
    assert_eq!(txn.read_audit(ids[0]).unwrap(), std::slice::from_ref(&e1));
    assert_eq!(txn.read_audit(0).unwrap(), vec![]);
    let scan: Vec<_> = txn.audit_scan().unwrap().into_iter().map(|(_, v)| v.unwrap()).collect();
    assert_eq!(scan, [e1, e2]);
}
