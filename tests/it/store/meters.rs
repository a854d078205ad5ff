//! Meters: the register.

use meterd::model::ReadStatus;
use meterd::store::prelude::*;
use meterd::vee::VeeConfig;

use super::*;

pub fn meters_are_stored_replaced_and_listed_by_id(e: &dyn Engine) {
    let s = e.store();
    assert_eq!(s.begin_read().unwrap().meter("M1").unwrap(), None);
    for id in ["M2", "M10", "M1"] {
        add_meter(&*s, &meter(id));
    }
    let mut changed = meter("M2");
    changed.address = "2 Side St".into();
    add_meter(&*s, &changed);
    drop(s);
    let s = e.reopen();
    let txn = s.begin_read().unwrap();
    assert_eq!(
        txn.meters()
            .unwrap()
            .iter()
            .map(|m| m.meter_id.as_str())
            .collect::<Vec<_>>(),
        ["M1", "M10", "M2"],
        "by meter id, replaced not duplicated"
    );
    assert_eq!(txn.meter("M2").unwrap(), Some(changed));
    assert_eq!(txn.meter("M3").unwrap(), None);
}

pub fn many_meters_match_one_lookup_each(e: &dyn Engine) {
    let s = e.store();
    let ids: Vec<String> = (0..300).map(|i| format!("M{i:04}")).collect();
    let mut txn = s.begin_write().unwrap();
    for id in &ids {
        txn.put_meter(&meter(id)).unwrap();
    }
    txn.commit().unwrap();
    meterd::ingest::accept_reads(
        &*s,
        &VeeConfig::default(),
        ids.iter().map(|m| read(m, "2025-01-01T00:00:00Z", 1000)).collect(),
    )
    .unwrap();
    // Every 40th read held: far apart in the status index, so the walk seeks between them.
    let mut txn = s.begin_write().unwrap();
    for mut r in txn
        .reads_with_status(ReadStatus::Validated, 1000)
        .unwrap()
        .into_iter()
        .step_by(40)
    {
        r.status = ReadStatus::Flagged;
        txn.update_read(&r, t("2025-06-01T00:00:00Z")).unwrap();
    }
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    for status in [ReadStatus::Flagged, ReadStatus::Validated] {
        let walked = txn.reads_with_status(status, 1000).unwrap();
        assert_eq!(walked.len(), if status == ReadStatus::Flagged { 8 } else { 292 });
        for r in &walked {
            assert_eq!(Some(r), txn.read(r.id).unwrap().as_ref());
            assert_eq!(r.status, status);
        }
    }
    // Sorted ids, dense, sparse and unknown (before, between and after the stored ones).
    let mut asked: Vec<&str> = vec![
        "A-unknown",
        "M0000",
        "M0001",
        "M0002",
        "M0003x",
        "M0100",
        "M0299",
        "Z-unknown",
    ];
    asked.extend(ids.iter().skip(150).step_by(37).map(String::as_str));
    asked.sort_unstable();
    let many = txn.meters_by_id(&asked).unwrap();
    let one_each: Vec<_> = asked.iter().map(|id| txn.meter(id).unwrap()).collect();
    assert_eq!(many, one_each);
    assert_eq!(many.iter().filter(|m| m.is_none()).count(), 3);
    // In the order asked, not sorted.
    let unsorted = txn.meters_by_id(&["M0299", "nope", "M0000"]).unwrap();
    assert_eq!(
        unsorted
            .iter()
            .map(|m| m.as_ref().map(|m| m.meter_id.as_str()))
            .collect::<Vec<_>>(),
        [Some("M0299"), None, Some("M0000")]
    );
    assert_eq!(txn.meters().unwrap().len(), 300);
}

pub fn lock_meters_skips_unknown_ids_and_changes_nothing(e: &dyn Engine) {
    let s = e.store();
    add_meter(&*s, &meter("M1"));
    add_meter(&*s, &meter("M2"));
    let mut txn = s.begin_write().unwrap();
    txn.lock_meters(&["M2", "ghost", "M1"]).unwrap();
    txn.lock_meters(&[]).unwrap();
    // Still usable after locking; the lock ends with the transaction.
    txn.put_meter(&meter("M3")).unwrap();
    txn.commit().unwrap();
    let mut txn = s.begin_write().unwrap();
    txn.lock_meters(&["M1"]).unwrap();
    drop(txn);
    assert_eq!(s.begin_read().unwrap().meters().unwrap().len(), 3);
}
