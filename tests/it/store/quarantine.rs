//! Quarantine: entries, resolution, retention limits and purge.

use meterd::model::{QuarantineEntry, Resolution};
use meterd::store::prelude::*;
use meterd::store::{QuarantineLimits, StoreError};

use super::*;

fn entry(source: &str, at: &str, payload: &[u8]) -> QuarantineEntry {
    QuarantineEntry {
        source: source.into(),
        reason: "CRC check failed".into(),
        payload: payload.to_vec(),
        received_at: t(at),
    }
}

pub fn quarantine_is_durable_and_resolved_once(e: &dyn Engine) {
    let s = e.store();
    let mut txn = s.begin_write().unwrap();
    let q1 = entry("meters/gw1", "2025-01-01T00:00:00Z", &[0xde, 0xad]);
    let q2 = entry("meters/gw2", "2025-01-02T00:00:00Z", &[1, 2, 3]);
    let a = txn.quarantine(&q1).unwrap();
    let b = txn.quarantine(&q2).unwrap();
    assert!(b > a);
    txn.commit().unwrap();
    drop(s);
    let s = e.reopen();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.quarantined().unwrap(), vec![(a, q1.clone()), (b, q2)]);
    let stored = txn.quarantine_entry(a).unwrap().unwrap();
    assert_eq!((stored.entry, stored.size, stored.resolution), (q1, 2, None));
    assert_eq!(txn.quarantine_entry(b + 1).unwrap(), None);
    assert_eq!(txn.quarantine_entries().unwrap().len(), 2);
    let usage = txn.quarantine_usage().unwrap();
    assert_eq!(usage.entries, 2);
    assert!(usage.bytes > 0);
    drop(txn);
    let res = Resolution {
        at: t("2025-01-03T00:00:00Z"),
        by: "ann".into(),
        reads: vec![5],
        outcome: "1 read stored".into(),
    };
    let mut txn = s.begin_write().unwrap();
    txn.resolve_quarantine(a, &res).unwrap();
    assert!(matches!(txn.resolve_quarantine(a, &res), Err(StoreError::Conflict(_))));
    assert!(matches!(
        txn.resolve_quarantine(b + 100, &res),
        Err(StoreError::NotFound { .. })
    ));
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.quarantine_entry(a).unwrap().unwrap().resolution, Some(res));
    drop(txn);
    // A later id after reopen, never a reused one.
    drop(s);
    let s = e.reopen();
    let mut txn = s.begin_write().unwrap();
    let c = txn
        .quarantine(&entry("meters/gw1", "2025-01-04T00:00:00Z", b"x"))
        .unwrap();
    assert!(c > b);
}

pub fn the_byte_limit_removes_the_oldest_and_summarises_them(e: &dyn Engine) {
    let s = e.store();
    // Entries of equal stored size; the engine says what one takes.
    let mut txn = s.begin_write().unwrap();
    let first = txn
        .quarantine(&entry("meters/gw1", "2025-01-01T00:00:00Z", &[1; 100]))
        .unwrap();
    txn.commit().unwrap();
    let one = s.begin_read().unwrap().quarantine_usage().unwrap().bytes;
    e.set_quarantine_limits(QuarantineLimits {
        max_bytes: one * 5 / 2, // two fit, three do not
        max_age: None,
        ..QuarantineLimits::default()
    });
    let mut txn = s.begin_write().unwrap();
    let second = txn
        .quarantine(&entry("meters/gw1", "2025-01-02T00:00:00Z", &[2; 100]))
        .unwrap();
    let third = txn
        .quarantine(&entry("meters/gw1", "2025-01-03T00:00:00Z", &[3; 100]))
        .unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(
        txn.quarantined().unwrap().iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [second, third],
        "the oldest ({first}) removed"
    );
    assert_eq!(txn.quarantine_usage().unwrap().entries, 2);
    assert_eq!(txn.quarantine_usage().unwrap().bytes, 2 * one);
    let summary = txn.quarantine_summary().unwrap();
    assert_eq!(summary.len(), 1, "{summary:?}");
    assert_eq!(
        (
            summary[0].source.as_str(),
            summary[0].count,
            summary[0].oldest,
            summary[0].newest
        ),
        ("meters/gw1", 1, t("2025-01-01T00:00:00Z"), t("2025-01-01T00:00:00Z"))
    );
}

pub fn the_age_limit_and_purge(e: &dyn Engine) {
    let s = e.store();
    e.set_quarantine_limits(QuarantineLimits {
        max_age: Some(jiff::SignedDuration::from_hours(24)),
        ..QuarantineLimits::default()
    });
    let mut txn = s.begin_write().unwrap();
    for day in 1..=3 {
        txn.quarantine(&entry("meters/gw1", &format!("2025-01-0{day}T00:00:00Z"), b"x"))
            .unwrap();
    }
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(
        txn.quarantined()
            .unwrap()
            .iter()
            .map(|(_, q)| q.received_at)
            .collect::<Vec<_>>(),
        [t("2025-01-02T00:00:00Z"), t("2025-01-03T00:00:00Z")],
        "more than a day older than the newest: removed; exactly a day: kept"
    );
    drop(txn);
    let mut txn = s.begin_write().unwrap();
    assert_eq!(txn.enforce_quarantine_retention(t("2025-01-03T12:00:00Z")).unwrap(), 1);
    assert_eq!(txn.enforce_quarantine_retention(t("2025-01-03T12:00:00Z")).unwrap(), 0);
    txn.commit().unwrap();
    e.set_quarantine_limits(QuarantineLimits {
        max_age: None,
        ..QuarantineLimits::default()
    });
    let mut txn = s.begin_write().unwrap();
    txn.quarantine(&entry("meters/gw2", "2025-01-05T00:00:00Z", b"yy"))
        .unwrap();
    let removed = txn.purge_quarantine_before(t("2025-01-05T00:00:00Z")).unwrap();
    assert_eq!(removed.entries, 1, "before is exclusive");
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(
        txn.quarantined()
            .unwrap()
            .iter()
            .map(|(_, q)| q.source.as_str())
            .collect::<Vec<_>>(),
        ["meters/gw2"]
    );
    assert_eq!(txn.quarantine_usage().unwrap().entries, 1);
    let summary = txn.quarantine_summary().unwrap();
    assert_eq!(summary.iter().map(|s| s.count).sum::<u64>(), 3, "{summary:?}");
}
