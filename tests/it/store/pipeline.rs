//! The pipeline through the library API on every engine: import and VEE, billing pull and ack.

use meterd::billing;
use meterd::ingest::accept_reads;
use meterd::model::{ReadStatus, Rule};
use meterd::store::StoreError;
use meterd::store::prelude::*;
use meterd::vee::VeeConfig;

use super::*;

pub fn an_impossible_value_is_not_the_next_reads_previous(e: &dyn Engine) {
    let s = e.store();
    let mut m = meter("M1");
    m.dials = 4; // shows 0..=9999
    add_meter(&*s, &m);
    let cfg = VeeConfig::default();
    accept_reads(
        &*s,
        &cfg,
        vec![
            read("M1", "2025-01-01T00:00:00Z", 1000),
            read("M1", "2025-02-01T00:00:00Z", 13007),
        ],
    )
    .unwrap();
    let rep = accept_reads(&*s, &cfg, vec![read("M1", "2025-03-01T00:00:00Z", 1600)]).unwrap();
    assert_eq!(rep.flagged, 0, "{rep:?}");
    let r = s.begin_read().unwrap().read(rep.read_ids[0]).unwrap().unwrap();
    assert_eq!(
        r.consumption,
        Some(q(600)),
        "measured from 1000, not from the overflow 13007"
    );
}

pub fn duplicates_within_one_call_and_unknown_meters(e: &dyn Engine) {
    let s = e.store();
    let cfg = VeeConfig::default();
    let rep = accept_reads(
        &*s,
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

pub fn reimporting_stores_nothing_twice_and_vee_flags_jumps(e: &dyn Engine) {
    let s = e.store();
    for m in ["M1", "M2"] {
        add_meter(&*s, &meter(m));
    }
    let file = || {
        let mut reads: Vec<_> = (1..=6)
            .map(|m| read("M1", &format!("2025-0{m}-01T00:00:00Z"), 1000 + m * 100 + m * m))
            .collect();
        // Usage varies a little month to month (the same usage every month is flagged too).
        reads.extend((1..=6).map(|m| read("M2", &format!("2025-0{m}-01T00:00:00Z"), 1000 + m * 100 + m * m)));
        // A month with fifty times the usual usage.
        reads.push(read("M2", "2025-07-01T00:00:00Z", 6736));
        reads
    };
    let cfg = VeeConfig::default();
    let first = accept_reads(&*s, &cfg, file()).unwrap();
    assert_eq!((first.imported, first.duplicates_skipped), (13, 0));
    assert_eq!(first.by_rule.get(&Rule::HighUsage), Some(&1), "{first:?}");
    let again = accept_reads(&*s, &cfg, file()).unwrap();
    assert_eq!((again.imported, again.duplicates_skipped), (0, 13));
    drop(s);
    let s = e.reopen();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.count_reads().unwrap(), 13);
    let flagged = txn.reads_with_status(ReadStatus::Flagged, 10).unwrap();
    assert_eq!(
        flagged
            .iter()
            .map(|r| (r.read.meter_id.as_str(), r.read.value))
            .collect::<Vec<_>>(),
        [("M2", q(6736))]
    );
    assert!(flagged[0].has_flag(Rule::HighUsage));
    assert_eq!(flagged[0].consumption, Some(q(5100)));
}

pub fn batches_respect_max_and_never_share_a_read(e: &dyn Engine) {
    let s = e.store();
    add_meter(&*s, &meter("M1"));
    let reads = (1..=5)
        .map(|m| read("M1", &format!("2025-0{m}-01T00:00:00Z"), 1000 + m * 100 + m * m))
        .collect();
    accept_reads(&*s, &VeeConfig::default(), reads).unwrap();
    let now = t("2025-06-01T00:00:00Z");
    let a = billing::next_batch(&*s, "cis", 2, now).unwrap().unwrap();
    assert_eq!(a.reads.len(), 2);
    assert_eq!(billing::next_batch(&*s, "cis", 2, now).unwrap().unwrap().batch, a.batch);
    // Another client gets other reads.
    let b = billing::next_batch(&*s, "other", 10, now).unwrap().unwrap();
    assert_eq!(b.reads.len(), 3);
    assert!(b.batch.read_ids.iter().all(|id| !a.batch.read_ids.contains(id)));
    billing::ack_batch(&*s, a.batch.id, now).unwrap();
    assert_eq!(
        billing::ack_batch(&*s, a.batch.id, now).unwrap(),
        billing::AckOutcome::AlreadyAcked
    );
    assert!(billing::next_batch(&*s, "cis", 2, now).unwrap().is_none());
    assert!(matches!(
        billing::ack_batch(&*s, 77, now),
        Err(StoreError::NotFound { .. })
    ));
}

pub fn pull_and_ack_bill_each_read_once(e: &dyn Engine) {
    let s = e.store();
    for m in ["M1", "M2", "M3"] {
        add_meter(&*s, &meter(m));
    }
    let reads = ["M1", "M2", "M3"]
        .map(|m| read(m, "2025-01-01T00:00:00Z", 1000))
        .to_vec();
    let imported = accept_reads(&*s, &VeeConfig::default(), reads).unwrap().read_ids;
    let now = t("2025-06-01T00:00:00Z");
    let doc = billing::pull(&*s, "cis", 10, now).unwrap().unwrap();
    assert_eq!(doc.contents.lines.len(), 3);
    assert_eq!(doc.batch.created_at, now);
    // Pulled again before the ack: the same batch, not another.
    drop(s);
    let s = e.reopen();
    assert_eq!(billing::pull(&*s, "cis", 10, now).unwrap().unwrap().batch, doc.batch);
    let acked_at = t("2025-06-01T00:05:00Z");
    assert_eq!(
        billing::ack_batch(&*s, doc.batch.id, acked_at).unwrap(),
        billing::AckOutcome::Acked { reads: 3 }
    );
    let txn = s.begin_read().unwrap();
    let batch = txn.batch(doc.batch.id).unwrap().unwrap();
    assert_eq!(batch.acked_at, Some(acked_at));
    assert_eq!(txn.open_batch("cis").unwrap(), None);
    let exported = txn.reads_with_status(ReadStatus::Exported, 10).unwrap();
    assert_eq!(
        exported.iter().map(|r| (r.id, r.batch)).collect::<Vec<_>>(),
        imported.iter().map(|id| (*id, Some(doc.batch.id))).collect::<Vec<_>>()
    );
    assert_eq!(
        txn.batch_contents(doc.batch.id).unwrap().as_ref(),
        Some(&doc.contents),
        "what the batch carried"
    );
    drop(txn);
    assert!(billing::pull(&*s, "cis", 10, now).unwrap().is_none(), "billed once");
}
