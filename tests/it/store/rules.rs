//! The rules (src/store/rules.rs) through `Rules`, on every engine: audit chain, notes of a
//! billed read changed, watermark, interval window, open batches, billing state.

use meterd::billing;
use meterd::ingest::accept_reads;
use meterd::model::billing::BilledReadChange;
use meterd::model::{BatchStatus, IntervalRead, ReadStatus};
use meterd::store::prelude::*;
use meterd::store::{HistoryQuery, StoreError};
use meterd::vee::VeeConfig;

use super::review::audit_entry;
use super::*;

pub fn the_audit_chain_links_and_verifies(e: &dyn Engine) {
    let s = e.store();
    let ids = insert(
        &*s,
        &[
            stored("M1", "2025-01-01T00:00:00Z", 10, ReadStatus::Flagged),
            stored("M2", "2025-01-01T00:00:00Z", 20, ReadStatus::Flagged),
        ],
    );
    // One clerk's edit: the audit entry with the read as it was, then the change.
    let edit = |id: u64, value: i64, at: &str, commit: bool| {
        let mut txn = s.begin_write().unwrap();
        let before = txn.read(id).unwrap().unwrap();
        let entry = txn
            .append_audit(audit_entry(&before, value, at), Some(&before))
            .unwrap();
        let mut after = before.clone();
        after.read.value = q(value);
        after.status = ReadStatus::Edited;
        txn.update_read(&after, t(at)).unwrap();
        if commit {
            txn.commit().unwrap();
        }
        entry
    };
    let e1 = edit(ids[0], 11, "2025-06-01T00:00:00Z", true);
    let dropped = edit(ids[1], 99, "2025-06-01T00:01:00Z", false);
    assert_eq!(dropped.seq, 2);
    let e2 = edit(ids[1], 21, "2025-06-01T00:02:00Z", true);
    drop(s);
    let s = e.reopen();
    let e3 = {
        let mut txn = s.begin_write().unwrap();
        let before = txn.read(ids[0]).unwrap().unwrap();
        let entry = txn
            .append_audit(audit_entry(&before, 12, "2025-06-01T00:03:00Z"), Some(&before))
            .unwrap();
        let mut after = before;
        after.read.value = q(12);
        txn.update_read(&after, t("2025-06-01T00:03:00Z")).unwrap();
        txn.commit().unwrap();
        entry
    };
    assert_eq!(
        [e1.seq, e2.seq, e3.seq],
        [1, 2, 3],
        "the dropped transaction's entry left no gap"
    );
    assert_eq!(e1.prev_hash, [0; meterd::model::HASH_LEN]);
    assert_eq!(e2.prev_hash, e1.hash);
    assert_eq!(e3.prev_hash, e2.hash);
    for entry in [&e1, &e2, &e3] {
        assert_eq!(entry.hash, entry.compute_hash());
    }
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.audit_len().unwrap(), 3);
    let scan: Vec<_> = txn.audit_scan().unwrap().into_iter().map(|(_, v)| v.unwrap()).collect();
    assert_eq!(scan, [e1, e2, e3]);
    drop(txn);
    let report = meterd::review::verify(&*s).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!((report.recorded, report.found), (3, 3));
}

pub fn a_changed_billed_read_opens_one_change_at_the_callers_time(e: &dyn Engine) {
    let s = e.store();
    let mut billed = stored("M1", "2025-01-01T00:00:00Z", 1000, ReadStatus::Exported);
    billed.batch = Some(3);
    let unbilled = stored("M2", "2025-01-01T00:00:00Z", 500, ReadStatus::Validated);
    let ids = insert(&*s, &[billed, unbilled]);
    let old = s.begin_read().unwrap().read(ids[0]).unwrap().unwrap();
    let edited = |r: &meterd::model::StoredRead, v: i64| {
        let mut r = r.clone();
        r.read.value = q(v);
        r.status = ReadStatus::Edited;
        r
    };
    // A dropped transaction leaves no note.
    {
        let mut txn = s.begin_write().unwrap();
        txn.update_read(&edited(&old, 1100), t("2025-06-01T00:00:00Z")).unwrap();
        assert!(txn.billed_read_change(ids[0]).unwrap().is_some(), "own write");
    }
    assert_eq!(s.begin_read().unwrap().billed_read_change(ids[0]).unwrap(), None);
    let mut txn = s.begin_write().unwrap();
    // A status change that does not change what billing has: no note.
    let mut same = old.clone();
    same.status = ReadStatus::Accepted;
    txn.update_read(&same, t("2025-06-01T00:00:00Z")).unwrap();
    assert_eq!(txn.billed_read_change(ids[0]).unwrap(), None);
    let now = t("2025-06-02T00:00:00Z");
    txn.update_read(&edited(&same, 1100), now).unwrap();
    // Changed again while the first is due: still the one note, of the first change.
    let again = txn.read(ids[0]).unwrap().unwrap();
    txn.update_reads(&[edited(&again, 1200)], t("2025-06-03T00:00:00Z"))
        .unwrap();
    // A read billing never had: no note.
    let u = txn.read(ids[1]).unwrap().unwrap();
    txn.update_read(&edited(&u, 600), now).unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    let change = txn.billed_read_change(ids[0]).unwrap().unwrap();
    assert_eq!(change, BilledReadChange::opened(&same, None, now));
    assert_eq!(change.at, now, "the caller's time");
    assert_eq!(change.billed.map(|b| b.value), Some(q(1000)));
    assert_eq!(txn.billed_read_changes().unwrap(), [change]);
}

pub fn a_billed_read_change_stays_after_its_correction_went_out(e: &dyn Engine) {
    let s = e.store();
    add_meter(&*s, &meter("M1"));
    accept_reads(
        &*s,
        &VeeConfig::default(),
        vec![read("M1", "2025-01-01T00:00:00Z", 1000)],
    )
    .unwrap();
    let now = t("2025-06-01T00:00:00Z");
    let b1 = billing::next_batch(&*s, "cis", 10, now).unwrap().unwrap();
    billing::ack_batch(&*s, b1.batch.id, now).unwrap();
    let id = b1.reads[0].id;
    let edit = |value: i64, reason: &str| {
        let mut txn = s.begin_write().unwrap();
        billing::note_change(txn.as_mut(), id, reason, Some("ann"), now).unwrap();
        let mut r = txn.read(id).unwrap().unwrap();
        r.read.value = q(value);
        r.status = ReadStatus::Edited;
        txn.update_read(&r, now).unwrap();
        txn.commit().unwrap();
    };
    let pending = || {
        let body = meterd::metrics::metrics_body(&*s).unwrap();
        body.lines()
            .find_map(|l| l.strip_prefix("meterd_billing_corrections_pending "))
            .unwrap()
            .to_owned()
    };
    edit(1100, "dial misread");
    let change = s.begin_read().unwrap().billed_read_change(id).unwrap().unwrap();
    assert!(change.correction_due);
    assert_eq!(change.billed.map(|b| (b.batch, b.value)), Some((b1.batch.id, q(1000))));
    assert_eq!(
        (change.original_status, change.reason.as_deref()),
        (ReadStatus::Exported, Some("dial misread"))
    );
    assert_eq!(pending(), "1");

    // The correction goes out once; the record stays, no longer due.
    let b2 = billing::pull(&*s, "cis", 10, now).unwrap().unwrap();
    assert_eq!(b2.contents.corrections.len(), 1);
    billing::ack_batch(&*s, b2.batch.id, now).unwrap();
    let sent = s.begin_read().unwrap().billed_read_change(id).unwrap().unwrap();
    assert_eq!(
        sent,
        BilledReadChange {
            correction_due: false,
            ..change
        }
    );
    assert_eq!(pending(), "0");
    assert!(billing::pull(&*s, "cis", 10, now).unwrap().is_none());

    // Changed again: a new correction against what billing has now (the corrected value).
    edit(1200, "still wrong");
    let again = s.begin_read().unwrap().billed_read_change(id).unwrap().unwrap();
    assert!(again.correction_due);
    assert_eq!(again.billed.map(|b| (b.batch, b.value)), Some((b2.batch.id, q(1100))));
    let b3 = billing::pull(&*s, "cis", 10, now).unwrap().unwrap();
    let c = &b3.contents.corrections[0];
    assert_eq!((c.original_batch, c.old_value), (b2.batch.id, q(1100)));
}

pub fn the_watermark_never_lowers(e: &dyn Engine) {
    let s = e.store();
    let mut txn = s.begin_write().unwrap();
    txn.set_cradle_watermark("HH-1", 10).unwrap();
    txn.set_cradle_watermark("HH-1", 5).unwrap();
    assert_eq!(txn.cradle_watermark("HH-1").unwrap(), Some(10));
    txn.commit().unwrap();
    drop(s);
    let s = e.reopen();
    let mut txn = s.begin_write().unwrap();
    txn.set_cradle_watermark("HH-1", 0).unwrap();
    txn.set_cradle_watermark("HH-2", 3).unwrap();
    txn.commit().unwrap();
    assert_eq!(s.begin_read().unwrap().cradle_watermark("HH-1").unwrap(), Some(10));
    let mut txn = s.begin_write().unwrap();
    txn.set_cradle_watermark("HH-1", 11).unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.cradle_watermark("HH-1").unwrap(), Some(11));
    assert_eq!(txn.cradle_watermark("HH-2").unwrap(), Some(3));
}

pub fn the_interval_window_is_60_seconds_inclusive(e: &dyn Engine) {
    let s = e.store();
    let at = |secs: i64| IntervalRead {
        end: t("2025-01-01T01:00:00Z") + jiff::SignedDuration::from_secs(secs),
        number: 1,
        consumption: 5,
    };
    let mut txn = s.begin_write().unwrap();
    assert!(txn.put_interval_read("M1", &at(0)).unwrap());
    assert!(
        !txn.put_interval_read("M1", &at(60)).unwrap(),
        "60 s later: the same interval"
    );
    assert!(
        !txn.put_interval_read("M1", &at(-60)).unwrap(),
        "60 s earlier: the same"
    );
    assert!(txn.put_interval_read("M2", &at(0)).unwrap(), "another meter");
    txn.commit().unwrap();
    let mut txn = s.begin_write().unwrap();
    assert!(
        txn.put_interval_read("M1", &at(61)).unwrap(),
        "61 s later: another interval"
    );
    assert!(txn.put_interval_read("M1", &at(-61)).unwrap(), "61 s earlier: another");
    assert!(
        !txn.put_interval_read("M1", &at(121)).unwrap(),
        "60 s after the one at 61"
    );
    assert!(!txn.put_interval_read("M1", &at(30)).unwrap());
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.count_interval_reads().unwrap(), 4);
    assert_eq!(
        txn.interval_reads("M1", jiff::Timestamp::MIN, jiff::Timestamp::MAX)
            .unwrap(),
        [at(-61), at(0), at(61)]
    );
}

pub fn many_interval_reads_at_once_keep_the_window(e: &dyn Engine) {
    let s = e.store();
    let at = |secs: i64, consumption: u64| IntervalRead {
        end: t("2025-01-01T01:00:00Z") + jiff::SignedDuration::from_secs(secs),
        number: 1,
        consumption,
    };
    let mut txn = s.begin_write().unwrap();
    assert!(txn.put_interval_read("M1", &at(0, 1)).unwrap());
    // Against the stored one (60 s: the same), against each other (30 after 300: the same),
    // and new ones 5 minutes apart.
    let stored = txn
        .put_interval_reads("M1", &[at(60, 2), at(300, 3), at(330, 4), at(600, 5), at(-300, 6)])
        .unwrap();
    assert_eq!(stored, 3);
    assert_eq!(txn.put_interval_reads("M1", &[]).unwrap(), 0);
    txn.commit().unwrap();
    assert_eq!(
        s.begin_read()
            .unwrap()
            .interval_reads("M1", jiff::Timestamp::MIN, jiff::Timestamp::MAX)
            .unwrap(),
        [at(-300, 6), at(0, 1), at(300, 3), at(600, 5)]
    );
}

pub fn one_open_batch_per_client_until_acked(e: &dyn Engine) {
    let s = e.store();
    let mut txn = s.begin_write().unwrap();
    let b1 = txn.create_batch("cis", vec![1, 2], t("2025-06-01T00:00:00Z")).unwrap();
    assert_eq!(
        (b1.client.as_str(), b1.read_ids.as_slice(), b1.status, b1.created_at),
        ("cis", &[1, 2][..], BatchStatus::Open, t("2025-06-01T00:00:00Z"))
    );
    assert!(matches!(
        txn.create_batch("cis", vec![3], t("2025-06-01T00:01:00Z")),
        Err(StoreError::Conflict(_))
    ));
    let other = txn.create_batch("other", vec![4], t("2025-06-01T00:02:00Z")).unwrap();
    assert!(other.id > b1.id);
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.open_batch("cis").unwrap(), Some(b1.clone()));
    assert_eq!(txn.batch(b1.id).unwrap(), Some(b1.clone()));
    drop(txn);
    // Still open after a reopen.
    drop(s);
    let s = e.reopen();
    let mut txn = s.begin_write().unwrap();
    assert!(matches!(
        txn.create_batch("cis", vec![3], t("2025-06-01T00:03:00Z")),
        Err(StoreError::Conflict(_))
    ));
    let mut acked = b1.clone();
    acked.status = BatchStatus::Acked;
    acked.acked_at = Some(t("2025-06-02T00:00:00Z"));
    txn.update_batch(&acked).unwrap();
    assert_eq!(txn.open_batch("cis").unwrap(), None);
    txn.commit().unwrap();
    let mut txn = s.begin_write().unwrap();
    let b2 = txn.create_batch("cis", vec![3], t("2025-06-03T00:00:00Z")).unwrap();
    assert!(b2.id > other.id);
    // Updating the open batch keeps it open.
    let mut more = b2.clone();
    more.read_ids.push(9);
    txn.update_batch(&more).unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.batch(b1.id).unwrap(), Some(acked));
    assert_eq!(txn.open_batch("cis").unwrap(), Some(more));
    assert_eq!(txn.open_batch("other").unwrap(), Some(other));
}

pub fn billing_state_moves_reads_in_bulk_and_refuses_a_stale_copy(e: &dyn Engine) {
    let s = e.store();
    for m in ["M1", "M2", "M3"] {
        add_meter(&*s, &meter(m));
    }
    let reads = ["M1", "M2", "M3"]
        .map(|m| read(m, "2025-01-01T00:00:00Z", 1000))
        .to_vec();
    accept_reads(&*s, &VeeConfig::default(), reads).unwrap();
    let mut held = s
        .begin_read()
        .unwrap()
        .reads_with_status(ReadStatus::Validated, 10)
        .unwrap();
    assert_eq!(held.len(), 3);
    // Meanwhile a clerk holds M2's read: the copy in `held` is stale.
    {
        let mut txn = s.begin_write().unwrap();
        let mut r = txn.read(held[1].id).unwrap().unwrap();
        r.status = ReadStatus::Flagged;
        txn.update_read(&r, t("2025-06-01T00:00:00Z")).unwrap();
        txn.commit().unwrap();
    }
    let mut txn = s.begin_write().unwrap();
    let err = txn
        .set_billing_state(&mut held.clone(), ReadStatus::Batched, 7)
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("1 of 3 reads changed since they were read")),
        "{err}"
    );
    drop(txn);
    let txn = s.begin_read().unwrap();
    assert_eq!(
        txn.reads_with_status(ReadStatus::Validated, 10).unwrap().len(),
        2,
        "nothing moved"
    );
    assert!(txn.reads_with_status(ReadStatus::Batched, 10).unwrap().is_empty());
    drop(txn);
    // With fresh copies: status, batch, status index and history summaries all move.
    held.remove(1);
    let mut txn = s.begin_write().unwrap();
    let mut fresh: Vec<_> = held.iter().map(|r| txn.read(r.id).unwrap().unwrap()).collect();
    txn.set_billing_state(&mut fresh, ReadStatus::Batched, 7).unwrap();
    assert!(
        fresh
            .iter()
            .all(|r| (r.status, r.batch) == (ReadStatus::Batched, Some(7))),
        "the caller's copies move too"
    );
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert!(txn.reads_with_status(ReadStatus::Validated, 10).unwrap().is_empty());
    let batched = txn.reads_with_status(ReadStatus::Batched, 10).unwrap();
    assert_eq!(
        batched.iter().map(|r| (r.id, r.batch)).collect::<Vec<_>>(),
        held.iter().map(|r| (r.id, Some(7))).collect::<Vec<_>>()
    );
    let h = txn
        .meter_histories(&[HistoryQuery {
            meter_id: "M3",
            from: jiff::Timestamp::MIN,
            to: jiff::Timestamp::MAX,
        }])
        .unwrap();
    assert_eq!(h[0][0].status, ReadStatus::Batched);
}

pub fn billing_state_refuses_a_read_in_another_batch(e: &dyn Engine) {
    let s = e.store();
    let ids = insert(
        &*s,
        &[
            stored("M1", "2025-01-01T00:00:00Z", 1, ReadStatus::Validated),
            stored("M2", "2025-01-01T00:00:00Z", 2, ReadStatus::Validated),
        ],
    );
    let mut txn = s.begin_write().unwrap();
    let mut first = vec![txn.read(ids[0]).unwrap().unwrap()];
    txn.set_billing_state(&mut first, ReadStatus::Batched, 7).unwrap();
    txn.commit().unwrap();
    // Both reads, one of them in batch 7: refused whole, and nothing kept once dropped.
    let mut txn = s.begin_write().unwrap();
    let mut both: Vec<_> = ids.iter().map(|id| txn.read(*id).unwrap().unwrap()).collect();
    assert!(matches!(
        txn.set_billing_state(&mut both, ReadStatus::Exported, 8),
        Err(StoreError::Conflict(_))
    ));
    drop(txn);
    let txn = s.begin_read().unwrap();
    assert_eq!(
        ids.iter()
            .map(|id| {
                let r = txn.read(*id).unwrap().unwrap();
                (r.status, r.batch)
            })
            .collect::<Vec<_>>(),
        [(ReadStatus::Batched, Some(7)), (ReadStatus::Validated, None)]
    );
    drop(txn);
    // Its own batch: the ack moves it.
    let mut txn = s.begin_write().unwrap();
    let mut again = vec![txn.read(ids[0]).unwrap().unwrap()];
    txn.set_billing_state(&mut again, ReadStatus::Exported, 7).unwrap();
    txn.commit().unwrap();
    let r = s.begin_read().unwrap().read(ids[0]).unwrap().unwrap();
    assert_eq!((r.status, r.batch), (ReadStatus::Exported, Some(7)));
}
