//! Reads: ids, history per meter, the status index, and the transaction contract.

use jiff::Timestamp;
use meterd::ingest::{accept_in, accept_reads};
use meterd::model::ReadStatus;
use meterd::store::prelude::*;
use meterd::store::{HistoryQuery, StoreError};
use meterd::vee::VeeConfig;

use super::*;

fn all(from: Timestamp) -> HistoryQuery<'static> {
    HistoryQuery {
        meter_id: "M1",
        from,
        to: Timestamp::MAX,
    }
}

pub fn reads_survive_reopen_with_stable_ids_and_indexes(e: &dyn Engine) {
    let s = e.store();
    add_meter(&*s, &meter("M1"));
    let cfg = VeeConfig::default();
    let r = accept_reads(
        &*s,
        &cfg,
        vec![
            read("M1", "2025-02-01T00:00:00Z", 1300),
            read("M1", "2025-01-01T00:00:00Z", 1000),
        ],
    )
    .unwrap();
    assert_eq!(r.imported, 2);
    drop(s);
    let s = e.reopen();
    let txn = s.begin_read().unwrap();
    let all_reads = txn.all_reads().unwrap();
    assert_eq!(
        all_reads.iter().map(|r| r.read.value).collect::<Vec<_>>(),
        [q(1000), q(1300)]
    );
    assert_eq!(
        r.read_ids,
        all_reads.iter().map(|r| r.id).collect::<Vec<_>>(),
        "ids in chronological order"
    );
    assert_eq!(all_reads[1].consumption, Some(q(300)));
    assert_eq!(txn.reads_with_status(ReadStatus::Validated, 10).unwrap().len(), 2);
    let h = txn.meter_histories(&[all(t("2025-01-15T00:00:00Z"))]).unwrap();
    // The window plus the previous read before it.
    assert_eq!(h[0].len(), 2);
    assert_eq!(h[0][0].read_at, t("2025-01-01T00:00:00Z"));
}

pub fn read_ids_increase_and_are_never_reused_across_reopen(e: &dyn Engine) {
    let s = e.store();
    let first = insert(
        &*s,
        &[
            stored("M1", "2025-01-01T00:00:00Z", 1, ReadStatus::Validated),
            stored("M1", "2025-01-02T00:00:00Z", 2, ReadStatus::Validated),
        ],
    );
    assert!(first[0] < first[1], "{first:?}");
    // A dropped transaction: its id may come again or not, but never below a committed one.
    {
        let mut txn = s.begin_write().unwrap();
        txn.insert_read(&stored("M1", "2025-01-03T00:00:00Z", 3, ReadStatus::Validated))
            .unwrap();
    }
    drop(s);
    let s = e.reopen();
    let mut txn = s.begin_write().unwrap();
    let id = txn
        .insert_read(&stored("M1", "2025-01-04T00:00:00Z", 4, ReadStatus::Validated))
        .unwrap();
    txn.commit().unwrap();
    assert!(id > first[1], "{id} after {first:?}");
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.count_reads().unwrap(), 3);
    let r = txn.read(id).unwrap().unwrap();
    assert_eq!((r.id, r.read.value), (id, q(4)), "the stored read carries its id");
}

pub fn missing_reads_are_none_and_replacing_one_is_not_found(e: &dyn Engine) {
    let s = e.store();
    let ids = insert(&*s, &[stored("M1", "2025-01-01T00:00:00Z", 1, ReadStatus::Validated)]);
    let mut txn = s.begin_write().unwrap();
    assert_eq!(txn.read(ids[0] + 1000).unwrap(), None);
    let mut ghost = txn.read(ids[0]).unwrap().unwrap();
    ghost.id += 1000;
    assert!(matches!(txn.replace_reads(&[ghost]), Err(StoreError::NotFound { .. })));
    drop(txn);
    let txn = s.begin_read().unwrap();
    assert_eq!(
        txn.meter_reads("nobody", Timestamp::MIN, Timestamp::MAX).unwrap(),
        vec![]
    );
    assert_eq!(
        txn.meter_histories(&[HistoryQuery {
            meter_id: "nobody",
            from: Timestamp::MIN,
            to: Timestamp::MAX
        }])
        .unwrap(),
        vec![vec![]]
    );
}

pub fn meter_reads_are_end_exclusive_and_ordered(e: &dyn Engine) {
    let s = e.store();
    let ids = insert(
        &*s,
        &[
            stored("M1", "2025-03-01T00:00:00Z", 3, ReadStatus::Validated),
            stored("M1", "2025-01-01T00:00:00Z", 1, ReadStatus::Validated),
            stored("M2", "2025-02-01T00:00:00Z", 9, ReadStatus::Validated),
            stored("M1", "2025-02-01T00:00:00Z", 2, ReadStatus::Validated),
            // Same time as the one before: ties by id.
            stored("M1", "2025-02-01T00:00:00Z", 22, ReadStatus::Validated),
        ],
    );
    let txn = s.begin_read().unwrap();
    let got = txn
        .meter_reads("M1", t("2025-01-01T00:00:00Z"), t("2025-03-01T00:00:00Z"))
        .unwrap();
    assert_eq!(
        got.iter().map(|r| r.id).collect::<Vec<_>>(),
        [ids[1], ids[3], ids[4]],
        "from inclusive, to exclusive, oldest first, ties by id, other meters out"
    );
    assert_eq!(
        txn.all_reads()
            .unwrap()
            .iter()
            .map(|r| (r.read.meter_id.as_str(), r.read.value))
            .collect::<Vec<_>>(),
        [("M1", q(1)), ("M1", q(2)), ("M1", q(22)), ("M1", q(3)), ("M2", q(9))],
        "by meter then time"
    );
}

pub fn meter_reads_before_is_newest_first_and_limited(e: &dyn Engine) {
    let s = e.store();
    insert(
        &*s,
        &(1..=5)
            .map(|m| stored("M1", &format!("2025-0{m}-01T00:00:00Z"), m, ReadStatus::Validated))
            .chain([stored("M2", "2025-02-15T00:00:00Z", 99, ReadStatus::Validated)])
            .collect::<Vec<_>>(),
    );
    let txn = s.begin_read().unwrap();
    let got = txn.meter_reads_before("M1", t("2025-04-01T00:00:00Z"), 2).unwrap();
    assert_eq!(
        got.iter().map(|r| r.read.value).collect::<Vec<_>>(),
        [q(3), q(2)],
        "strictly before, newest first, at most the limit"
    );
    assert_eq!(
        txn.meter_reads_before("M1", t("2025-01-01T00:00:00Z"), 10).unwrap(),
        vec![]
    );
    assert_eq!(txn.meter_reads_before("M1", Timestamp::MAX, 0).unwrap(), vec![]);
    assert_eq!(txn.meter_reads_before("M1", Timestamp::MAX, 10).unwrap().len(), 5);
}

pub fn reads_with_status_are_oldest_id_first_and_limited(e: &dyn Engine) {
    let s = e.store();
    let ids = insert(
        &*s,
        &[
            stored("M2", "2025-01-01T00:00:00Z", 1, ReadStatus::Flagged),
            stored("M1", "2025-03-01T00:00:00Z", 2, ReadStatus::Validated),
            stored("M1", "2025-01-01T00:00:00Z", 3, ReadStatus::Flagged),
            stored("M3", "2024-01-01T00:00:00Z", 4, ReadStatus::Flagged),
        ],
    );
    let txn = s.begin_read().unwrap();
    let f = txn.reads_with_status(ReadStatus::Flagged, 2).unwrap();
    assert_eq!(f.iter().map(|r| r.id).collect::<Vec<_>>(), [ids[0], ids[2]]);
    assert_eq!(txn.reads_with_status(ReadStatus::Flagged, 0).unwrap(), vec![]);
    assert_eq!(txn.reads_with_status(ReadStatus::Exported, 10).unwrap(), vec![]);
}

pub fn counts_by_status_follow_updates(e: &dyn Engine) {
    let s = e.store();
    let ids = insert(
        &*s,
        &[
            stored("M1", "2025-01-01T00:00:00Z", 1, ReadStatus::Flagged),
            stored("M1", "2025-02-01T00:00:00Z", 2, ReadStatus::Validated),
            stored("M1", "2025-03-01T00:00:00Z", 3, ReadStatus::Validated),
        ],
    );
    let mut txn = s.begin_write().unwrap();
    let mut r = txn.read(ids[0]).unwrap().unwrap();
    r.status = ReadStatus::Accepted;
    txn.update_read(&r, t("2025-06-01T00:00:00Z")).unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    let mut counts = txn.count_reads_by_status().unwrap();
    counts.retain(|(_, n)| *n > 0);
    counts.sort_by_key(|(st, _)| format!("{st:?}"));
    assert_eq!(counts, [(ReadStatus::Accepted, 1), (ReadStatus::Validated, 2)]);
    assert_eq!(txn.count_reads().unwrap(), 3);
}

pub fn update_read_moves_it_between_status_and_history_indexes(e: &dyn Engine) {
    let s = e.store();
    add_meter(&*s, &meter("M1"));
    accept_reads(
        &*s,
        &VeeConfig::default(),
        vec![read("M1", "2025-01-01T00:00:00Z", 1000)],
    )
    .unwrap();
    let mut txn = s.begin_write().unwrap();
    let mut r = txn.reads_with_status(ReadStatus::Validated, 1).unwrap().remove(0);
    r.status = ReadStatus::Rejected;
    txn.update_read(&r, t("2025-06-01T00:00:00Z")).unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert!(txn.reads_with_status(ReadStatus::Validated, 10).unwrap().is_empty());
    assert_eq!(txn.reads_with_status(ReadStatus::Rejected, 10).unwrap()[0].id, r.id);
    let h = txn.meter_histories(&[all(Timestamp::MIN)]).unwrap();
    assert_eq!(h[0][0].status, ReadStatus::Rejected);
    // A rejected read is not the previous read of the next one: no consumption against it.
    drop(txn);
    let rep = accept_reads(
        &*s,
        &VeeConfig::default(),
        vec![read("M1", "2025-02-01T00:00:00Z", 900)],
    )
    .unwrap();
    assert_eq!(rep.flagged, 0);
    assert_eq!(
        s.begin_read()
            .unwrap()
            .read(rep.read_ids[0])
            .unwrap()
            .unwrap()
            .consumption,
        None
    );
}

pub fn histories_of_many_meters_at_once(e: &dyn Engine) {
    let s = e.store();
    insert(
        &*s,
        &[
            stored("M1", "2025-01-01T00:00:00Z", 1, ReadStatus::Validated),
            stored("M1", "2025-02-01T00:00:00Z", 2, ReadStatus::Validated),
            stored("M1", "2025-03-01T00:00:00Z", 3, ReadStatus::Validated),
            stored("M2", "2025-02-10T00:00:00Z", 7, ReadStatus::Validated),
        ],
    );
    let txn = s.begin_read().unwrap();
    let h = txn
        .meter_histories(&[
            HistoryQuery {
                meter_id: "M1",
                from: t("2025-02-01T00:00:00Z"),
                to: t("2025-03-01T00:00:00Z"),
            },
            HistoryQuery {
                meter_id: "ghost",
                from: Timestamp::MIN,
                to: Timestamp::MAX,
            },
            HistoryQuery {
                meter_id: "M2",
                from: t("2025-03-01T00:00:00Z"),
                to: Timestamp::MAX,
            },
        ])
        .unwrap();
    assert_eq!(h.len(), 3, "one answer per query, in order");
    assert_eq!(
        h[0].iter().map(|r| r.read_at).collect::<Vec<_>>(),
        [t("2025-01-01T00:00:00Z"), t("2025-02-01T00:00:00Z")],
        "the previous read, then the window (end exclusive)"
    );
    assert!(h[1].is_empty());
    assert_eq!(
        h[2].iter().map(|r| r.read_at).collect::<Vec<_>>(),
        [t("2025-02-10T00:00:00Z")],
        "only the previous read"
    );
}

pub fn a_write_transaction_sees_its_own_writes(e: &dyn Engine) {
    let s = e.store();
    let mut txn = s.begin_write().unwrap();
    txn.put_meter(&meter("M1")).unwrap();
    let id = txn
        .insert_read(&stored("M1", "2025-01-01T00:00:00Z", 5, ReadStatus::Flagged))
        .unwrap();
    assert!(txn.meter("M1").unwrap().is_some());
    assert_eq!(txn.read(id).unwrap().unwrap().read.value, q(5));
    assert_eq!(txn.reads_with_status(ReadStatus::Flagged, 10).unwrap().len(), 1);
    assert_eq!(txn.meter_reads("M1", Timestamp::MIN, Timestamp::MAX).unwrap().len(), 1);
    let mut r = txn.read(id).unwrap().unwrap();
    r.status = ReadStatus::Accepted;
    txn.update_read(&r, t("2025-06-01T00:00:00Z")).unwrap();
    assert!(txn.reads_with_status(ReadStatus::Flagged, 10).unwrap().is_empty());
    assert_eq!(txn.count_reads().unwrap(), 1);
    txn.commit().unwrap();
    assert_eq!(
        s.begin_read().unwrap().read(id).unwrap().unwrap().status,
        ReadStatus::Accepted
    );
}

pub fn nothing_of_a_dropped_write_transaction_is_stored(e: &dyn Engine) {
    let s = e.store();
    add_meter(&*s, &meter("M1"));
    let mut txn = s.begin_write().unwrap();
    let r = accept_in(
        txn.as_mut(),
        &VeeConfig::default(),
        vec![read("M1", "2025-01-01T00:00:00Z", 1)],
        t("2025-06-01T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(r.imported, 1);
    txn.put_meter(&meter("M2")).unwrap();
    txn.mark_seen("scm", b"k", t("2025-06-01T00:00:00Z")).unwrap();
    drop(txn); // no commit
    drop(s);
    let s = e.reopen();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.count_reads().unwrap(), 0);
    assert_eq!(txn.meter("M2").unwrap(), None);
    assert_eq!(txn.seen("scm", b"k").unwrap(), None);
}

/// The contract (src/store/mod.rs): a read transaction is a snapshot.
pub fn a_read_transaction_sees_what_was_committed_before_it_began(e: &dyn Engine) {
    let s = e.store();
    add_meter(&*s, &meter("M1"));
    let before = s.begin_read().unwrap();
    assert!(before.meter("M1").unwrap().is_some());
    let mut w = s.begin_write().unwrap();
    w.put_meter(&meter("M2")).unwrap();
    w.insert_read(&stored("M1", "2025-01-01T00:00:00Z", 1, ReadStatus::Validated))
        .unwrap();
    w.commit().unwrap();
    assert_eq!(before.meter("M2").unwrap(), None, "a snapshot: later commits unseen");
    assert_eq!(before.count_reads().unwrap(), 0);
    assert_eq!(before.meters().unwrap().len(), 1);
    drop(before);
    let after = s.begin_read().unwrap();
    assert!(after.meter("M2").unwrap().is_some());
    assert_eq!(after.count_reads().unwrap(), 1);
}
