//! The PostgreSQL engine's billing and review areas against redb's: the same operations on a
//! RedbStore and a PgStore give equal answers from every method of both areas, through the
//! trait methods and through billing pull/ack and clerk actions; the audit chain verifies on
//! PostgreSQL; `store check` on PostgreSQL finds nothing on a sound store and names damage.
//! The server: the tests' private cluster (`common::pg`), a fresh database per test.

use jiff::civil::date;
use meterd::billing::{self, AckOutcome};
use meterd::ingest::accept_in;
use meterd::model::billing::{ApiToken, Billed, BilledReadChange};
use meterd::model::{BatchStatus, Meter, MeterChange, OrderStatus, Quantity, ReadStatus, ServiceOrder};
use meterd::review::{Action, ActionRequest, act};
use meterd::store::postgres::{PgStore, SslMode, StoreConfig};
use meterd::store::{ReadTxn, RedbStore, Store, StoreError};
use meterd::vee::VeeConfig;

use crate::store::{read, t};

/// A fresh database on the tests' private server; its URL.
fn database() -> String {
    crate::common::pg::database()
}

fn psql(url: &str, sql: &str) -> String {
    crate::common::pg::psql(crate::common::pg::dbname(url), sql)
}

fn pg(url: &str) -> PgStore {
    PgStore::open(&StoreConfig {
        url: Some(url.to_owned()),
        sslmode: SslMode::Disable,
        ..StoreConfig::default()
    })
    .unwrap()
}

/// The battery's meter (`tests/it/store`) on `route`.
fn meter(id: &str, route: &str) -> Meter {
    Meter {
        route: route.into(),
        ..crate::store::meter(id)
    }
}

/// Meters and reads, the same on each store (received at one fixed time).
fn seed(s: &dyn Store) {
    let reads = vec![
        read("M1", "2025-01-01T00:00:00Z", 1000),
        read("M1", "2025-02-01T00:00:00Z", 1300),
        read("M1", "2025-03-01T00:00:00Z", 1600),
        read("M2", "2025-01-01T00:00:00Z", 500),
        read("M2", "2025-02-01T00:00:00Z", 650),
        read("M2", "2025-03-01T00:00:00Z", 9_000_000),
    ];
    // PostgreSQL makes a month's partition outside the transaction and asks for a retry.
    for _ in 0..3 {
        let mut txn = s.begin_write().unwrap();
        txn.put_meter(&meter("M1", "R1")).unwrap();
        txn.put_meter(&meter("M2", "R2")).unwrap();
        match accept_in(
            txn.as_mut(),
            &VeeConfig::default(),
            reads.clone(),
            t("2025-03-02T00:00:00Z"),
        ) {
            Ok(_) => return txn.commit().unwrap(),
            Err(StoreError::Retry(_)) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("seeding kept asking for a retry");
}

/// Direct writes of the two areas.
fn direct_writes(s: &dyn Store) {
    let mut txn = s.begin_write().unwrap();
    for (name, byte) in [("zeta", 1u8), ("Alpha", 2), ("alpha", 3)] {
        txn.put_api_token(&ApiToken {
            name: name.into(),
            sha256: [byte; 32],
            created_at: t("2025-01-05T10:00:00Z"),
            revoked_at: None,
        })
        .unwrap();
    }
    // Replacing: revoked.
    txn.put_api_token(&ApiToken {
        name: "zeta".into(),
        sha256: [9; 32],
        created_at: t("2025-01-05T10:00:00Z"),
        revoked_at: Some(t("2025-01-06T10:00:00.123456Z")),
    })
    .unwrap();
    for (at, removal) in [("2025-02-10T00:00:00Z", Some(1400)), ("2025-01-10T00:00:00Z", None)] {
        txn.put_meter_change(&MeterChange {
            meter_id: "M1".into(),
            at: t(at),
            old_serial: "S1".into(),
            new_serial: "S2".into(),
            old_dials: 6,
            new_dials: 8,
            install_read: Quantity::from_micros(1_500_000),
            removal_read: removal.map(|v| Quantity::from_units(v).unwrap()),
        })
        .unwrap();
    }
    let order = ServiceOrder {
        id: 0,
        meter_id: "M2".into(),
        read_id: 5,
        route: "R2".into(),
        sequence: 4_000_000_000,
        address: "2 Elm St".into(),
        reason: "dial smudged".into(),
        due: date(2025, 3, 9),
        status: OrderStatus::Open,
        created_at: t("2025-03-02T00:00:00Z"),
        created_by: "ann".into(),
        closed_at: None,
        closed_by: None,
        outcome: String::new(),
    };
    let first = txn.put_service_order(&order).unwrap();
    let second = txn.put_service_order(&order).unwrap();
    assert_ne!(first, second);
    let mut closed = order.clone();
    closed.id = first;
    closed.status = OrderStatus::Cancelled;
    closed.closed_at = Some(t("2025-03-03T00:00:00Z"));
    closed.closed_by = Some("bob".into());
    closed.outcome = "not needed".into();
    assert_eq!(txn.put_service_order(&closed).unwrap(), first);
    let billed = Billed {
        batch: 77,
        value: Quantity::from_units(12).unwrap(),
        read_at: t("2024-12-01T00:00:00Z"),
        withdrawn: false,
    };
    // A read given twice: the last one counts.
    txn.put_billed(&[
        (900, billed),
        (901, billed),
        (
            900,
            Billed {
                withdrawn: true,
                ..billed
            },
        ),
    ])
    .unwrap();
    txn.put_billed(&[]).unwrap();
    for (read_id, b) in [(901, Some(billed)), (902, None), (903, None)] {
        txn.put_billed_read_change(&BilledReadChange {
            read_id,
            meter_id: "M9".into(),
            billed: b,
            original_status: ReadStatus::Validated,
            original_consumption: Some(Quantity::from_units(3).unwrap()),
            reason: b.map(|_| "keyed wrong".into()),
            by: Some("ann".into()),
            at: t("2025-01-07T00:00:00Z"),
            audit_seq: b.map(|_| 1_000),
            correction_due: b.is_some(),
        })
        .unwrap();
    }
    txn.remove_billed_read_change(903).unwrap();
    txn.remove_billed_read_change(904).unwrap();
    txn.commit().unwrap();
}

/// Billing and clerk actions through meterd's own functions; what they answered, as text.
fn workflow(s: &dyn Store) -> Vec<String> {
    let mut out = Vec::new();
    let now = t("2025-03-05T00:00:00Z");
    let first = billing::pull(s, "c1", 3, now).unwrap().expect("a batch");
    let again = billing::pull(s, "c1", 3, now).unwrap().expect("the same batch");
    assert_eq!(first, again, "re-asking before ack returns the same batch");
    out.push(format!("{first:?}"));
    out.push(format!("{:?}", billing::ack_batch(s, first.batch.id, now).unwrap()));
    assert_eq!(
        billing::ack_batch(s, first.batch.id, now).unwrap(),
        AckOutcome::AlreadyAcked
    );
    out.push(format!("{:?}", billing::pull(s, "c2", 1, now).unwrap()));
    let cfg = VeeConfig::default();
    let billed_read = first.batch.read_ids[0];
    let mut run = |read_id, clerk: &str, action: Action, at: &str| {
        let r = act(
            s,
            &cfg,
            &ActionRequest {
                read_id,
                seen_rev: None,
                clerk: clerk.into(),
                action,
            },
            t(at),
        );
        out.push(format!(
            "{:?}",
            r.map(|o| (o.entry, o.order, o.read, o.revalidated))
                .map_err(|e| e.to_string())
        ));
    };
    run(
        billed_read,
        "ann",
        Action::Edit {
            value: Quantity::from_units(1010).unwrap(),
            reason: "keyed wrong".into(),
        },
        "2025-03-06T00:00:00Z",
    );
    run(
        6,
        "ann",
        Action::Note {
            text: "look again".into(),
        },
        "2025-03-06T00:01:00Z",
    );
    run(
        6,
        "ann",
        Action::Reject {
            reason: "impossible".into(),
            due: date(2025, 3, 20),
        },
        "2025-03-06T00:02:00Z",
    );
    run(6, "ann", Action::Undo, "2025-03-06T00:03:00Z");
    run(
        6,
        "bob",
        Action::Accept {
            reason: "checked".into(),
        },
        "2025-03-06T00:04:00Z",
    );
    // The correction of the edited read goes to the next batch.
    let next = billing::pull(s, "c1", 10, t("2025-03-07T00:00:00Z")).unwrap();
    out.push(format!("{next:?}"));
    if let Some(n) = next {
        out.push(format!(
            "{:?}",
            billing::ack_batch(s, n.batch.id, t("2025-03-07T00:00:00Z")).unwrap()
        ));
    }
    out.push(format!(
        "{:?}",
        billing::ack_batch(s, 999, now).map_err(|e| e.to_string())
    ));
    out
}

/// Every query of the billing and review areas, as text.
fn answers(s: &dyn Store) -> Vec<String> {
    let txn = s.begin_read().unwrap();
    let q: &dyn ReadTxn = txn.as_ref();
    let mut out = Vec::new();
    let mut put = |what: String, v: String| out.push(format!("{what}: {v}"));
    for id in 0..6 {
        put(format!("batch {id}"), format!("{:?}", q.batch(id).unwrap()));
        put(
            format!("batch_contents {id}"),
            format!("{:?}", q.batch_contents(id).unwrap()),
        );
    }
    for c in ["c1", "c2", "c3"] {
        put(format!("open_batch {c}"), format!("{:?}", q.open_batch(c).unwrap()));
    }
    for st in [None, Some(BatchStatus::Open), Some(BatchStatus::Acked)] {
        put(format!("batches {st:?}"), format!("{:?}", q.batches(st).unwrap()));
    }
    for r in (0..10).chain(899..905) {
        put(format!("billed {r}"), format!("{:?}", q.billed(r).unwrap()));
        put(
            format!("billed_read_change {r}"),
            format!("{:?}", q.billed_read_change(r).unwrap()),
        );
        put(format!("read_audit {r}"), format!("{:?}", q.read_audit(r).unwrap()));
    }
    put(
        "billed_read_changes".into(),
        format!("{:?}", q.billed_read_changes().unwrap()),
    );
    put("api_tokens".into(), format!("{:?}", q.api_tokens().unwrap()));
    let len = q.audit_len().unwrap();
    put("audit_len".into(), len.to_string());
    put("audit_scan".into(), format!("{:?}", q.audit_scan().unwrap()));
    for seq in 0..=len + 1 {
        put(
            format!("undo_snapshot {seq}"),
            format!("{:?}", q.undo_snapshot(seq).unwrap()),
        );
    }
    for m in ["M1", "M2", "M9"] {
        put(format!("meter_audit {m}"), format!("{:?}", q.meter_audit(m).unwrap()));
        put(
            format!("meter_changes {m}"),
            format!("{:?}", q.meter_changes(m).unwrap()),
        );
    }
    put("service_orders".into(), format!("{:?}", q.service_orders().unwrap()));
    for id in 0..5 {
        put(
            format!("service_order {id}"),
            format!("{:?}", q.service_order(id).unwrap()),
        );
    }
    put("all_reads".into(), format!("{:?}", q.all_reads().unwrap()));
    out
}

fn assert_same(redb: &[String], pg: &[String]) {
    assert_eq!(redb.len(), pg.len());
    for (r, p) in redb.iter().zip(pg) {
        assert_eq!(r, p, "redb and PostgreSQL differ");
    }
}

#[test]
fn billing_and_review_answer_on_postgresql_as_on_redb() {
    let dir = tempfile::tempdir().unwrap();
    let redb = RedbStore::open_dir(dir.path()).unwrap();
    let url = database();
    let pgs = pg(&url);
    let stores: [&dyn Store; 2] = [&redb, &pgs];

    for s in stores {
        seed(s);
    }
    assert_same(&answers(&redb), &answers(&pgs));
    for s in stores {
        direct_writes(s);
    }
    assert_same(&answers(&redb), &answers(&pgs));
    let done: Vec<Vec<String>> = stores.iter().map(|s| workflow(*s)).collect();
    assert_same(&done[0], &done[1]);
    let after = answers(&pgs);
    assert_same(&answers(&redb), &after);
    // The workflow did what it was for: a batch acked, a correction, an audit chain with an
    // undo snapshot, a re-read order.
    let text = after.join("\n");
    assert!(text.contains("status: Acked"), "no acked batch");
    assert!(text.contains("corrections: [Correction"), "no correction sent");
    assert!(text.contains("audit_len: 5"), "audit length");
    assert!(text.contains("undo_snapshot 3: Some("), "no undo snapshot");

    for s in stores {
        let report = meterd::review::verify(s).unwrap();
        assert!(report.ok(), "{report:?}");
        assert_eq!((report.recorded, report.found), (5, 5));
    }
}

#[test]
fn store_check_on_postgresql_counts_rows_and_names_damage() {
    let url = database();
    let s = pg(&url);
    seed(&s);
    workflow(&s);
    let report = s.check().unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let rows = |table: &str| report.tables.iter().find(|t| t.table == table).map(|t| t.rows);
    assert_eq!(rows("reads"), Some(6));
    assert_eq!(rows("audit"), Some(5));
    assert_eq!(rows("undo_snapshots"), Some(4));
    assert_eq!(rows("batches"), Some(3));

    // Damage the server's own constraints let through.
    psql(&url, "UPDATE reads SET batch_id = 999 WHERE id = 2");
    psql(
        &url,
        "INSERT INTO batches VALUES (50, 'c3', '{}', 'acked', now(), now())",
    );
    psql(&url, "UPDATE open_batches SET batch_id = 50 WHERE client = 'c2'");
    psql(
        &url,
        "DELETE FROM undo_snapshots WHERE seq = 3; DELETE FROM audit WHERE seq = 3",
    );
    psql(&url, "INSERT INTO billed VALUES (424242, 1, 0, now(), false)");
    psql(&url, "UPDATE billed SET batch_id = 4242 WHERE read_id = 1");
    let report = s.check().unwrap();
    let found: Vec<String> = report
        .problems
        .iter()
        .map(|p| format!("{}: {}", p.table, p.what))
        .collect();
    let has = |s: &str| found.iter().any(|p| p.contains(s));
    assert!(has("reads: read 2 names batch 999"), "{found:?}");
    assert!(
        has("open_batches: client c2's open batch 50 is acked and belongs to client c3"),
        "{found:?}"
    );
    assert!(has("audit: entries 3 to 3 are missing"), "{found:?}");
    assert!(has("billed: billed read 424242 is not a read"), "{found:?}");
    assert!(has("billed: billed read 1 names batch 4242"), "{found:?}");
}

#[test]
fn two_instances_pulling_for_a_new_client_hand_out_one_batch() {
    let url = database();
    let first = pg(&url);
    seed(&first);
    let now = t("2025-03-05T00:00:00Z");
    // The seed has four billable reads: one per round.
    for round in 0..4 {
        let client = format!("new{round}");
        let pulled: Vec<_> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let (url, client) = (url.clone(), client.clone());
                    sc.spawn(move || billing::pull(&pg(&url), &client, 1, now).map(|d| d.map(|d| d.batch.id)))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // The one that waited on the client's row either sees the batch made meanwhile or is
        // refused (rules: "has batch N open"); never a second batch.
        let ids: Vec<u64> = pulled
            .iter()
            .filter_map(|p| p.as_ref().ok().copied().flatten())
            .collect();
        assert!(
            !ids.is_empty() && ids.iter().all(|i| *i == ids[0]),
            "round {round}: {pulled:?}"
        );
        for p in &pulled {
            if let Err(e) = p {
                assert!(matches!(e, StoreError::Conflict(_)), "round {round}: {e}");
            }
        }
        let txn = first.begin_read().unwrap();
        let of_client = txn
            .batches(None)
            .unwrap()
            .into_iter()
            .filter(|b| b.client == client)
            .count();
        assert_eq!(of_client, 1, "round {round}");
        drop(txn);
        billing::ack_batch(&first, ids[0], now).unwrap();
    }
}

/// The locks the rules rely on: a second writer's `lock_open_batch` (for a client with no row
/// yet) and `audit_tail` wait for the first writer's commit and then see what it wrote.
#[test]
fn lock_open_batch_and_audit_tail_wait_for_the_first_writer() {
    use std::sync::mpsc;
    use std::time::Duration;
    let url = database();
    let a = pg(&url);
    // The client's row exists already (batch NULL): the wait below is the row lock's.
    let mut first = a.begin_write().unwrap();
    assert_eq!(first.lock_open_batch("fresh").unwrap(), None);
    first.commit().unwrap();
    let mut txn = a.begin_write().unwrap();
    assert_eq!(txn.lock_open_batch("fresh").unwrap(), None);
    assert_eq!(txn.audit_tail().unwrap(), (0, [0; 32]));
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let url = url.clone();
        std::thread::spawn(move || {
            let b = pg(&url);
            let mut txn = b.begin_write().unwrap();
            let open = txn.lock_open_batch("fresh").unwrap();
            let tail = txn.audit_tail().unwrap();
            tx.send((open, tail)).unwrap();
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(rx.try_recv().is_err(), "the second writer did not wait");
    let id = txn.next_batch_id().unwrap();
    txn.put_batch(&meterd::model::Batch {
        id,
        client: "fresh".into(),
        read_ids: vec![],
        status: BatchStatus::Open,
        created_at: t("2025-03-05T00:00:00Z"),
        acked_at: None,
    })
    .unwrap();
    txn.set_open_batch("fresh", Some(id)).unwrap();
    let mut entry = meterd::model::AuditEntry {
        seq: 1,
        at: t("2025-03-05T00:00:00Z"),
        clerk: "ann".into(),
        action: meterd::model::AuditAction::Note,
        read_id: 1,
        meter_id: "M1".into(),
        old_value: Quantity::from_units(1).unwrap(),
        new_value: Quantity::from_units(1).unwrap(),
        old_status: ReadStatus::Flagged,
        new_status: ReadStatus::Flagged,
        reason: "n".into(),
        prev_hash: [0; 32],
        hash: [0; 32],
        day: None,
    };
    entry.hash = entry.compute_hash();
    txn.insert_audit(&entry, None).unwrap();
    txn.commit().unwrap();
    let (open, tail) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    waiter.join().unwrap();
    assert_eq!(open, Some(id));
    assert_eq!(tail, (1, entry.hash));
}
