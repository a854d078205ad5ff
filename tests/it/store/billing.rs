//! Billing storage: batches, open batches, contents, what was billed, changes, API tokens.

use meterd::model::billing::{ApiToken, BatchContents, Billed, BilledReadChange};
use meterd::model::{Batch, BatchStatus, ReadStatus};
use meterd::store::prelude::*;

use super::*;

fn batch(id: u64, client: &str, status: BatchStatus) -> Batch {
    Batch {
        id,
        client: client.into(),
        read_ids: vec![id * 10, id * 10 + 1],
        status,
        created_at: t("2025-06-01T00:00:00Z"),
        acked_at: None,
    }
}

pub fn batches_are_stored_listed_and_ids_increase_across_reopen(e: &dyn Engine) {
    let s = e.store();
    let mut txn = s.begin_write().unwrap();
    let a = txn.next_batch_id().unwrap();
    let b = txn.next_batch_id().unwrap();
    assert!(b > a, "{a} then {b}");
    txn.put_batch(&batch(a, "cis", BatchStatus::Acked)).unwrap();
    txn.put_batch(&batch(b, "cis", BatchStatus::Open)).unwrap();
    assert_eq!(
        txn.batch(b).unwrap(),
        Some(batch(b, "cis", BatchStatus::Open)),
        "own writes"
    );
    txn.commit().unwrap();
    drop(s);
    let s = e.reopen();
    let mut txn = s.begin_write().unwrap();
    let c = txn.next_batch_id().unwrap();
    assert!(c > b, "never reused after reopen: {c} after {b}");
    let mut replaced = batch(a, "cis", BatchStatus::Acked);
    replaced.acked_at = Some(t("2025-06-02T00:00:00Z"));
    txn.put_batch(&replaced).unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.batch(a).unwrap(), Some(replaced.clone()));
    assert_eq!(txn.batch(c).unwrap(), None, "an id taken but not used is no batch");
    assert_eq!(
        txn.batches(None).unwrap().iter().map(|b| b.id).collect::<Vec<_>>(),
        [a, b],
        "oldest first"
    );
    assert_eq!(
        txn.batches(Some(BatchStatus::Open)).unwrap(),
        [batch(b, "cis", BatchStatus::Open)]
    );
    assert_eq!(txn.batches(Some(BatchStatus::Acked)).unwrap(), [replaced]);
}

pub fn open_batches_per_client(e: &dyn Engine) {
    let s = e.store();
    let mut txn = s.begin_write().unwrap();
    assert_eq!(txn.lock_open_batch("cis").unwrap(), None);
    txn.put_batch(&batch(1, "cis", BatchStatus::Open)).unwrap();
    txn.set_open_batch("cis", Some(1)).unwrap();
    assert_eq!(txn.lock_open_batch("cis").unwrap(), Some(1));
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.open_batch("cis").unwrap().map(|b| b.id), Some(1));
    assert_eq!(txn.open_batch("other").unwrap(), None, "per client");
    drop(txn);
    let mut txn = s.begin_write().unwrap();
    txn.set_open_batch("cis", None).unwrap();
    txn.commit().unwrap();
    assert_eq!(s.begin_read().unwrap().open_batch("cis").unwrap(), None);
}

pub fn batch_contents_billed_and_changes_are_stored(e: &dyn Engine) {
    let s = e.store();
    let ids = insert(&*s, &[stored("M1", "2025-01-01T00:00:00Z", 5, ReadStatus::Exported)]);
    let r = s.begin_read().unwrap().read(ids[0]).unwrap().unwrap();
    let billed = Billed {
        batch: 3,
        value: q(5),
        read_at: t("2025-01-01T00:00:00Z"),
        withdrawn: false,
    };
    let change = BilledReadChange::opened(&r, None, t("2025-06-03T00:00:00Z"));
    let mut txn = s.begin_write().unwrap();
    assert_eq!(txn.batch_contents(3).unwrap(), None);
    // Contents belong to a stored batch (the server engine holds it to that by a foreign key).
    txn.put_batch(&batch(3, "cis", BatchStatus::Acked)).unwrap();
    txn.put_batch_contents(3, &BatchContents::default()).unwrap();
    txn.put_billed(&[(ids[0], billed)]).unwrap();
    txn.put_billed_read_change(&change).unwrap();
    txn.commit().unwrap();
    drop(s);
    let s = e.reopen();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.batch_contents(3).unwrap(), Some(BatchContents::default()));
    assert_eq!(txn.billed(ids[0]).unwrap(), Some(billed));
    assert_eq!(txn.billed(ids[0] + 1).unwrap(), None);
    assert_eq!(txn.billed_read_change(ids[0]).unwrap(), Some(change.clone()));
    assert_eq!(txn.billed_read_changes().unwrap(), std::slice::from_ref(&change));
    drop(txn);
    let mut txn = s.begin_write().unwrap();
    let sent = BilledReadChange {
        correction_due: false,
        ..change
    };
    txn.put_billed_read_change(&sent).unwrap();
    assert_eq!(txn.billed_read_change(ids[0]).unwrap(), Some(sent), "replaced");
    txn.remove_billed_read_change(ids[0]).unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.billed_read_change(ids[0]).unwrap(), None);
    assert!(txn.billed_read_changes().unwrap().is_empty());
}

pub fn api_tokens_by_name(e: &dyn Engine) {
    let s = e.store();
    let token = |name: &str, b: u8| ApiToken {
        name: name.into(),
        sha256: [b; 32],
        created_at: t("2025-06-01T00:00:00Z"),
        revoked_at: None,
    };
    let mut txn = s.begin_write().unwrap();
    txn.put_api_token(&token("zeta", 1)).unwrap();
    txn.put_api_token(&token("alpha", 2)).unwrap();
    let mut revoked = token("zeta", 1);
    revoked.revoked_at = Some(t("2025-06-02T00:00:00Z"));
    txn.put_api_token(&revoked).unwrap();
    txn.commit().unwrap();
    assert_eq!(
        s.begin_read().unwrap().api_tokens().unwrap(),
        [token("alpha", 2), revoked]
    );
}
