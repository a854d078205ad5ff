//! The store and the pipeline through the library API, on real redb files.

use jiff::Timestamp;
use meterd::billing;
use meterd::ingest::{accept_in, accept_reads};
use meterd::model::{
    Meter, MeterStatus, Origin, OriginKind, Quantity, QuarantineEntry, Read, ReadStatus, ReadType, Rule, Service,
};
use meterd::store::{HistoryQuery, RedbStore, Rules, Store, StoreError};
use meterd::vee::VeeConfig;

fn store() -> (tempfile::TempDir, RedbStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = RedbStore::open_dir(dir.path()).unwrap();
    (dir, s)
}

fn meter(id: &str) -> Meter {
    Meter {
        meter_id: id.into(),
        account: "A".into(),
        route: "R1".into(),
        sequence: 1,
        service: Service::Water,
        unit: "gal".into(),
        dials: 8,
        decimals: 0,
        multiplier: Quantity::from_units(1).unwrap(),
        status: MeterStatus::Active,
        address: "1 Main St".into(),
        notes: String::new(),
    }
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn read(id: &str, at: &str, value: i64) -> Read {
    Read {
        meter_id: id.into(),
        read_at: t(at),
        value: Quantity::from_units(value).unwrap(),
        raw: value.to_string(),
        read_type: ReadType::Gateway,
        codes: vec![],
        reader: Some("gw-1".into()),
        origin: Origin {
            kind: OriginKind::Gateway,
            source: "meters/+/scm".into(),
            locator: "pkid 7".into(),
        },
    }
}

fn add_meter(s: &RedbStore, m: &Meter) {
    let mut txn = s.begin_write().unwrap();
    txn.put_meter(m).unwrap();
    txn.commit().unwrap();
}

#[test]
fn reads_survive_reopen_with_stable_ids_and_indexes() {
    let (dir, s) = store();
    add_meter(&s, &meter("M1"));
    let cfg = VeeConfig::default();
    let r = accept_reads(
        &s,
        &cfg,
        vec![
            read("M1", "2025-02-01T00:00:00Z", 1300),
            read("M1", "2025-01-01T00:00:00Z", 1000),
        ],
    )
    .unwrap();
    assert_eq!(r.imported, 2);
    drop(s);
    let s = RedbStore::open_dir(dir.path()).unwrap();
    let txn = s.begin_read().unwrap();
    let all = txn.all_reads().unwrap();
    assert_eq!(
        all.iter().map(|r| r.read.value).collect::<Vec<_>>(),
        [Quantity::from_units(1000).unwrap(), Quantity::from_units(1300).unwrap()]
    );
    assert_eq!(
        r.read_ids,
        all.iter().map(|r| r.id).collect::<Vec<_>>(),
        "ids in chronological order"
    );
    assert_eq!(all[1].consumption, Some(Quantity::from_units(300).unwrap()));
    assert_eq!(txn.reads_with_status(ReadStatus::Validated, 10).unwrap().len(), 2);
    let h = txn
        .meter_histories(&[HistoryQuery {
            meter_id: "M1",
            from: t("2025-01-15T00:00:00Z"),
            to: Timestamp::MAX,
        }])
        .unwrap();
    // The window plus the previous read before it.
    assert_eq!(h[0].len(), 2);
    assert_eq!(h[0][0].read_at, t("2025-01-01T00:00:00Z"));
}

#[test]
fn update_read_moves_it_between_status_and_history_indexes() {
    let (_dir, s) = store();
    add_meter(&s, &meter("M1"));
    accept_reads(
        &s,
        &VeeConfig::default(),
        vec![read("M1", "2025-01-01T00:00:00Z", 1000)],
    )
    .unwrap();
    let mut txn = s.begin_write().unwrap();
    let mut r = txn.reads_with_status(ReadStatus::Validated, 1).unwrap().remove(0);
    r.status = ReadStatus::Rejected;
    txn.update_read(&r, Timestamp::now()).unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert!(txn.reads_with_status(ReadStatus::Validated, 10).unwrap().is_empty());
    assert_eq!(txn.reads_with_status(ReadStatus::Rejected, 10).unwrap()[0].id, r.id);
    let h = txn
        .meter_histories(&[HistoryQuery {
            meter_id: "M1",
            from: Timestamp::MIN,
            to: Timestamp::MAX,
        }])
        .unwrap();
    assert_eq!(h[0][0].status, ReadStatus::Rejected);
    // A rejected read is not the previous read of the next one: no consumption against it.
    drop(txn);
    let rep = accept_reads(&s, &VeeConfig::default(), vec![read("M1", "2025-02-01T00:00:00Z", 900)]).unwrap();
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

#[test]
fn billing_state_moves_reads_in_bulk_and_refuses_a_stale_copy() {
    let (_dir, s) = store();
    for m in ["M1", "M2", "M3"] {
        add_meter(&s, &meter(m));
    }
    let reads = ["M1", "M2", "M3"]
        .map(|m| read(m, "2025-01-01T00:00:00Z", 1000))
        .to_vec();
    accept_reads(&s, &VeeConfig::default(), reads).unwrap();
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
        txn.update_read(&r, Timestamp::now()).unwrap();
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
    drop(txn);
    // With fresh copies: status, batch, status index and history summaries all move.
    held.remove(1);
    let mut txn = s.begin_write().unwrap();
    let mut fresh: Vec<_> = held.iter().map(|r| txn.read(r.id).unwrap().unwrap()).collect();
    txn.set_billing_state(&mut fresh, ReadStatus::Batched, 7).unwrap();
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
            from: Timestamp::MIN,
            to: Timestamp::MAX,
        }])
        .unwrap();
    assert_eq!(h[0][0].status, ReadStatus::Batched);
    // A read in another batch is refused too.
    drop(txn);
    let mut txn = s.begin_write().unwrap();
    let mut again = vec![txn.read(held[0].id).unwrap().unwrap()];
    assert!(matches!(
        txn.set_billing_state(&mut again, ReadStatus::Exported, 8),
        Err(StoreError::Conflict(_))
    ));
}

#[test]
fn many_meters_and_reads_by_status_match_one_lookup_each() {
    let (_dir, s) = store();
    let ids: Vec<String> = (0..300).map(|i| format!("M{i:04}")).collect();
    for id in &ids {
        add_meter(&s, &meter(id));
    }
    accept_reads(
        &s,
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
        txn.update_read(&r, Timestamp::now()).unwrap();
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
}

#[test]
fn an_impossible_value_is_not_the_next_reads_previous() {
    let (_dir, s) = store();
    let mut m = meter("M1");
    m.dials = 4; // shows 0..=9999
    add_meter(&s, &m);
    let cfg = VeeConfig::default();
    accept_reads(
        &s,
        &cfg,
        vec![
            read("M1", "2025-01-01T00:00:00Z", 1000),
            read("M1", "2025-02-01T00:00:00Z", 13007),
        ],
    )
    .unwrap();
    let rep = accept_reads(&s, &cfg, vec![read("M1", "2025-03-01T00:00:00Z", 1600)]).unwrap();
    assert_eq!(rep.flagged, 0, "{rep:?}");
    let r = s.begin_read().unwrap().read(rep.read_ids[0]).unwrap().unwrap();
    assert_eq!(
        r.consumption,
        Some(Quantity::from_units(600).unwrap()),
        "measured from 1000, not from the overflow 13007"
    );
}

#[test]
fn nothing_of_an_uncommitted_transaction_is_stored() {
    let (_dir, s) = store();
    add_meter(&s, &meter("M1"));
    let mut txn = s.begin_write().unwrap();
    let r = accept_in(
        txn.as_mut(),
        &VeeConfig::default(),
        vec![read("M1", "2025-01-01T00:00:00Z", 1)],
        Timestamp::now(),
    )
    .unwrap();
    assert_eq!(r.imported, 1);
    drop(txn); // no commit
    assert_eq!(s.begin_read().unwrap().count_reads().unwrap(), 0);
}

#[test]
fn duplicates_within_one_call_and_unknown_meters() {
    let (_dir, s) = store();
    let cfg = VeeConfig::default();
    let rep = accept_reads(
        &s,
        &cfg,
        vec![
            read("GHOST", "2025-01-01T00:00:00Z", 5),
            read("GHOST", "2025-01-01T00:00:00Z", 5),
            read("GHOST", "2025-01-01T00:00:00Z", 6),
        ],
    )
    .unwrap();
    assert_eq!((rep.imported, rep.duplicates_skipped, rep.flagged), (2, 1, 2));
    assert_eq!(rep.by_rule[&Rule::UnknownMeter], 2);
    assert_eq!(rep.by_rule[&Rule::Duplicate], 1);
}

#[test]
fn quarantine_and_seen_keys_are_durable() {
    let (dir, s) = store();
    let mut txn = s.begin_write().unwrap();
    let q = QuarantineEntry {
        source: "meters/gw1".into(),
        reason: "CRC check failed".into(),
        payload: vec![0xde, 0xad],
        received_at: t("2025-01-01T00:00:00Z"),
    };
    let id = txn.quarantine(&q).unwrap();
    assert!(txn.mark_seen("scm", b"123:456", t("2025-01-01T00:00:00Z")).unwrap());
    assert!(!txn.mark_seen("scm", b"123:456", t("2025-01-01T00:01:00Z")).unwrap());
    assert!(txn.mark_seen("scm", b"999", t("2025-01-02T00:00:00Z")).unwrap());
    assert!(txn.mark_seen("idm", b"123:456", t("2025-01-01T00:00:00Z")).unwrap());
    txn.commit().unwrap();
    drop(s);
    let s = RedbStore::open_dir(dir.path()).unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.quarantined().unwrap(), vec![(id, q)]);
    assert_eq!(txn.seen("scm", b"123:456").unwrap(), Some(t("2025-01-01T00:00:00Z")));
    drop(txn);
    let mut txn = s.begin_write().unwrap();
    assert_eq!(txn.forget_seen_before("scm", t("2025-01-01T12:00:00Z")).unwrap(), 1);
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.seen("scm", b"123:456").unwrap(), None);
    assert!(txn.seen("scm", b"999").unwrap().is_some());
    assert!(
        txn.seen("idm", b"123:456").unwrap().is_some(),
        "other namespaces untouched"
    );
    drop(txn);
    // Heard again after it expired: a new first sighting, which expires in its turn.
    let mut txn = s.begin_write().unwrap();
    assert!(txn.mark_seen("scm", b"123:456", t("2025-01-03T00:00:00Z")).unwrap());
    assert_eq!(
        txn.forget_seen_before("scm", t("2025-01-02T12:00:00Z")).unwrap(),
        1,
        "only 999"
    );
    assert_eq!(txn.forget_seen_before("scm", t("2025-01-04T00:00:00Z")).unwrap(), 1);
    assert_eq!(txn.seen("scm", b"123:456").unwrap(), None);
    txn.commit().unwrap();
}

#[test]
fn seen_keys_of_a_store_without_the_time_index_still_expire() {
    let (dir, s) = store();
    let mut txn = s.begin_write().unwrap();
    assert!(txn.mark_seen("scm", b"old", t("2025-01-01T00:00:00Z")).unwrap());
    txn.commit().unwrap();
    drop(s);
    // A store written before the time index existed: the keys alone.
    {
        let db = redb::Database::open(dir.path().join(meterd::store::STORE_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        assert!(
            txn.delete_table(redb::TableDefinition::<(&str, i64, &[u8]), ()>::new("seen_by_time"))
                .unwrap()
        );
        txn.commit().unwrap();
    }
    let s = RedbStore::open_dir(dir.path()).unwrap();
    let mut txn = s.begin_write().unwrap();
    assert_eq!(txn.forget_seen_before("scm", t("2025-01-02T00:00:00Z")).unwrap(), 1);
    assert_eq!(txn.seen("scm", b"old").unwrap(), None);
}

#[test]
fn batches_respect_max_and_never_share_a_read() {
    let (_dir, s) = store();
    add_meter(&s, &meter("M1"));
    let reads = (1..=5)
        .map(|m| read("M1", &format!("2025-0{m}-01T00:00:00Z"), 1000 + m * 100 + m * m))
        .collect();
    accept_reads(&s, &VeeConfig::default(), reads).unwrap();
    let now = Timestamp::now();
    let a = billing::next_batch(&s, "cis", 2, now).unwrap().unwrap();
    assert_eq!(a.reads.len(), 2);
    assert_eq!(billing::next_batch(&s, "cis", 2, now).unwrap().unwrap().batch, a.batch);
    // Another client gets other reads.
    let b = billing::next_batch(&s, "other", 10, now).unwrap().unwrap();
    assert_eq!(b.reads.len(), 3);
    assert!(b.batch.read_ids.iter().all(|id| !a.batch.read_ids.contains(id)));
    billing::ack_batch(&s, a.batch.id, now).unwrap();
    assert_eq!(
        billing::ack_batch(&s, a.batch.id, now).unwrap(),
        billing::AckOutcome::AlreadyAcked
    );
    assert!(billing::next_batch(&s, "cis", 2, now).unwrap().is_none());
    assert!(matches!(
        billing::ack_batch(&s, 77, now),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn schema_version_and_foreign_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.redb");
    drop(RedbStore::open(&path).unwrap());
    // A newer store than this build knows is refused, with both versions named.
    let newer = meterd::store::SCHEMA_VERSION + 1;
    RedbStore::set_schema_version(&path, newer).unwrap();
    let e = RedbStore::open(&path).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::SchemaVersion { found, supported: meterd::store::SCHEMA_VERSION, .. } if found == newer
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains(&format!("schema version {newer}"))
            && e.to_string()
                .contains(&format!("supports version {}", meterd::store::SCHEMA_VERSION)),
        "{e}"
    );

    let garbage = dir.path().join("garbage.redb");
    std::fs::write(&garbage, b"this is not a database at all, just text").unwrap();
    let e = RedbStore::open(&garbage).unwrap_err().to_string();
    assert!(e.contains("garbage.redb"), "{e}");
}

#[test]
fn open_waiting_waits_for_a_store_another_holder_releases() {
    let dir = tempfile::tempdir().unwrap();
    let held = RedbStore::open_dir(dir.path()).unwrap();
    // Held throughout: the wait ends with the lock error.
    let e = meterd::store::open_waiting(dir.path(), std::time::Duration::from_millis(50)).unwrap_err();
    assert!(matches!(e, StoreError::Locked { .. }), "{e}");
    // Released meanwhile: the wait ends with the store.
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(held);
    });
    meterd::store::open_waiting(dir.path(), std::time::Duration::from_secs(5)).unwrap();
    release.join().unwrap();
}

#[test]
fn a_billed_read_change_stays_after_its_correction_went_out() {
    let (_dir, s) = store();
    add_meter(&s, &meter("M1"));
    accept_reads(
        &s,
        &VeeConfig::default(),
        vec![read("M1", "2025-01-01T00:00:00Z", 1000)],
    )
    .unwrap();
    let now = Timestamp::now();
    let b1 = billing::next_batch(&s, "cis", 10, now).unwrap().unwrap();
    billing::ack_batch(&s, b1.batch.id, now).unwrap();
    let id = b1.reads[0].id;
    let edit = |value: i64, reason: &str| {
        let mut txn = s.begin_write().unwrap();
        billing::note_change(txn.as_mut(), id, reason, Some("ann"), now).unwrap();
        let mut r = txn.read(id).unwrap().unwrap();
        r.read.value = Quantity::from_units(value).unwrap();
        r.status = ReadStatus::Edited;
        txn.update_read(&r, Timestamp::now()).unwrap();
        txn.commit().unwrap();
    };
    let pending = || {
        let body = meterd::metrics::metrics_body(&s).unwrap();
        body.lines()
            .find_map(|l| l.strip_prefix("meterd_billing_corrections_pending "))
            .unwrap()
            .to_owned()
    };
    edit(1100, "dial misread");
    let change = s.begin_read().unwrap().billed_read_change(id).unwrap().unwrap();
    assert!(change.correction_due);
    assert_eq!(
        change.billed.map(|b| (b.batch, b.value)),
        Some((b1.batch.id, Quantity::from_units(1000).unwrap()))
    );
    assert_eq!(
        (change.original_status, change.reason.as_deref()),
        (ReadStatus::Exported, Some("dial misread"))
    );
    assert_eq!(pending(), "1");

    // The correction goes out once; the record stays, no longer due.
    let b2 = billing::pull(&s, "cis", 10, now).unwrap().unwrap();
    assert_eq!(b2.contents.corrections.len(), 1);
    billing::ack_batch(&s, b2.batch.id, now).unwrap();
    let sent = s.begin_read().unwrap().billed_read_change(id).unwrap().unwrap();
    assert_eq!(
        sent,
        meterd::model::billing::BilledReadChange {
            correction_due: false,
            ..change
        }
    );
    assert_eq!(pending(), "0");
    assert!(billing::pull(&s, "cis", 10, now).unwrap().is_none());

    // Changed again: a new correction against what billing has now (the corrected value).
    edit(1200, "still wrong");
    let again = s.begin_read().unwrap().billed_read_change(id).unwrap().unwrap();
    assert!(again.correction_due);
    assert_eq!(
        again.billed.map(|b| (b.batch, b.value)),
        Some((b2.batch.id, Quantity::from_units(1100).unwrap()))
    );
    let b3 = billing::pull(&s, "cis", 10, now).unwrap().unwrap();
    let c = &b3.contents.corrections[0];
    assert_eq!(
        (c.original_batch, c.old_value),
        (b2.batch.id, Quantity::from_units(1100).unwrap())
    );
}
