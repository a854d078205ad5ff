//! Clerk review through the real `meterd` binary: actions, optimistic concurrency between
//! processes, corrections of exported reads, re-validation, the audit trail (and tampering
//! with it behind meterd's back), reports and service orders.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{failed, json_of, succeeded};
use crate::review_fixture::*;
use meterd::model::{AuditEntry, Quantity, ReadStatus, ReadType, Rule};
use meterd::store::{RedbStore, Store};
use redb::{ReadableDatabase, TableDefinition};
use serde_json::Value;

struct Town {
    dir: tempfile::TempDir,
}

impl Town {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        drop(town(&dir.path().join("data")));
        Town { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_meterd"));
        c.arg("--data-dir")
            .arg(self.data())
            .args(args)
            .current_dir(self.dir.path());
        c.env_remove("METERD_CONFIG")
            .env_remove("METERD_DATA_DIR")
            .env("USER", "osuser");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.run(args))
    }

    fn fails(&self, args: &[&str]) -> String {
        failed(args, self.run(args))
    }

    fn json(&self, args: &[&str]) -> Value {
        json_of(args, &self.ok(args))
    }

    fn held(&self, meter: &str) -> u64 {
        let list = self.json(&["review", "list", "--json"]);
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["meter_id"] == meter)
            .unwrap()["id"]
            .as_u64()
            .unwrap()
    }

    fn store(&self) -> RedbStore {
        RedbStore::open_dir(&self.data()).unwrap()
    }
}

#[test]
fn actions_from_the_command_line_and_the_audit_trail() {
    let t = Town::new();
    let w = t.held("W-100");
    let d = t.json(&["review", "show", &w.to_string(), "--json"]);
    assert_eq!(d["rev"], 0);
    assert_eq!(d["periods"].as_array().unwrap().len(), 13);
    assert_eq!(d["periods"][12]["current"], true);
    assert_eq!(d["read"]["flags"][0]["rule"], "high_usage");

    let err = t.fails(&["review", "edit", &w.to_string(), "13608", "--reason", " ", "--rev", "0"]);
    assert!(err.contains("a reason is required"), "{err}");
    let out = t.ok(&[
        "review",
        "edit",
        &w.to_string(),
        "13608",
        "--reason",
        "keyed 9 for 6",
        "--rev",
        "0",
    ]);
    assert!(out.contains("edit 14220 → 13608, flagged → edited"), "{out}");

    let reads = t.json(&["reads", "list", "--meter", "W-100", "--json"]);
    let edited = reads.as_array().unwrap().iter().find(|r| r["id"] == w).unwrap();
    assert_eq!(
        (
            edited["value"].as_i64(),
            edited["status"].as_str(),
            edited["consumption"].as_i64()
        ),
        (Some(13608), Some("edited"), Some(300))
    );
    assert_eq!(edited["raw"], "014220", "the source's text stays");

    // The clerk is the OS user running the command (the tests run as root), never what
    // $USER says; an admin acting for someone records both names.
    let audit = t.json(&["audit", "show", "--meter", "W-100", "--json"]);
    assert_eq!(audit[0]["clerk"], "root");
    assert_eq!(
        (audit[0]["old_value"].as_i64(), audit[0]["new_value"].as_i64()),
        (Some(14220), Some(13608))
    );
    assert_eq!(
        (audit[0]["old_status"].as_str(), audit[0]["new_status"].as_str()),
        (Some("flagged"), Some("edited"))
    );
    assert_eq!(audit[0]["reason"], "keyed 9 for 6");
    t.ok(&[
        "review",
        "note",
        &w.to_string(),
        "customer has a pool",
        "--on-behalf-of",
        "ann",
    ]);
    let text = t.ok(&["audit", "show", "--meter", "W-100"]);
    assert!(
        text.contains("ann (entered by root)") && text.contains("note") && text.contains("customer has a pool"),
        "{text}"
    );
    // A note does not make anyone's view stale: rev is still the edit's.
    let d = t.json(&["review", "show", &w.to_string(), "--json"]);
    assert_eq!(d["rev"], 1);
    t.ok(&["review", "undo", &w.to_string(), "--rev", "1", "--on-behalf-of", "ann"]);
    let d = t.json(&["review", "show", &w.to_string(), "--json"]);
    assert_eq!(
        (
            d["read"]["status"].as_str(),
            d["read"]["read"]["value"].as_i64(),
            d["rev"].as_u64()
        ),
        (Some("flagged"), Some(14220), Some(3))
    );
    assert!(t.ok(&["audit", "verify"]).contains("intact: 3 entries"));
}

#[test]
fn two_stale_actions_on_one_read_the_second_is_refused() {
    let t = Town::new();
    let w = t.held("W-100").to_string();
    t.ok(&["review", "accept", &w, "--rev", "0", "--on-behalf-of", "ann"]);
    let err = t.fails(&[
        "review",
        "edit",
        &w,
        "13608",
        "--reason",
        "typo",
        "--rev",
        "0",
        "--on-behalf-of",
        "bob",
    ]);
    assert!(
        err.contains("changed since you loaded it") && err.contains("accept by ann"),
        "{err}"
    );
    // Not overwritten.
    let d = t.json(&["review", "show", &w, "--json"]);
    assert_eq!(
        (d["read"]["status"].as_str(), d["read"]["read"]["value"].as_i64()),
        (Some("accepted"), Some(14220))
    );
    // A re-accept without --rev is refused for the state, naming the last change.
    let err = t.fails(&["review", "accept", &w, "--on-behalf-of", "bob"]);
    assert!(
        err.contains("is accepted, not held for review") && err.contains("accept by ann"),
        "{err}"
    );
}

#[test]
fn two_processes_at_once_exactly_one_wins() {
    let t = Town::new();
    let e = t.held("E-300").to_string();
    let mut a = t
        .cmd(&["review", "accept", &e, "--rev", "0", "--on-behalf-of", "ann"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut b = t
        .cmd(&[
            "review",
            "reject",
            &e,
            "--reason",
            "below previous",
            "--rev",
            "0",
            "--on-behalf-of",
            "bob",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (sa, sb) = (a.wait().unwrap(), b.wait().unwrap());
    assert!(sa.success() != sb.success(), "exactly one succeeds: ann {sa}, bob {sb}");
    let mut err = String::new();
    use std::io::Read as _;
    if sa.success() {
        b.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(err.contains("accept by ann"), "{err}");
    } else {
        a.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(err.contains("reject by bob"), "{err}");
    }
    assert_eq!(
        t.json(&["audit", "show", "--meter", "E-300", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn editing_an_exported_read_keeps_the_original_and_its_batch() {
    let t = Town::new();
    // Bill what is validated (W-100's earlier reads among them) and ack.
    let batch = t.json(&["batches", "next", "--json"]);
    let batch_id = batch["batch"]["id"].as_u64().or(batch["id"].as_u64()).unwrap();
    t.ok(&["batches", "ack", &batch_id.to_string()]);
    let reads = t.json(&["reads", "list", "--meter", "W-100", "--json"]);
    let r11 = reads
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["read_at"] == month(11).to_string())
        .unwrap()
        .clone();
    assert_eq!(r11["status"], "exported");
    let id = r11["id"].as_u64().unwrap().to_string();
    let out = t.ok(&[
        "review",
        "edit",
        &id,
        "13920",
        "--reason",
        "reader misread",
        "--on-behalf-of",
        "ann",
    ]);
    assert!(out.contains("correction record keeps the original 13308"), "{out}");
    let d = t.json(&["review", "show", &id, "--json"]);
    assert_eq!(d["read"]["status"], "edited");
    assert_eq!(d["correction"]["billed"]["value"], 13308);
    assert_eq!(d["correction"]["billed"]["batch"], batch_id);
    assert_eq!(d["correction"]["original_status"], "exported");
    assert_eq!(d["correction"]["correction_due"], true);
    // The next read (the spike) now counts from 13920: 300, no longer high: re-validated.
    let w = t.held_or_none("W-100");
    assert!(w.is_none(), "the spike was re-validated and left the queue");
    let audit = t.json(&["audit", "show", "--meter", "W-100", "--json"]);
    let re = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "revalidate")
        .unwrap();
    assert_eq!(
        (
            re["clerk"].as_str(),
            re["old_status"].as_str(),
            re["new_status"].as_str()
        ),
        (Some("vee"), Some("flagged"), Some("validated"))
    );
    assert!(re["reason"].as_str().unwrap().contains("consumption 912 → 300"), "{re}");
}

#[test]
fn undoing_the_edit_of_an_exported_read_leaves_billing_nothing_to_correct() {
    let t = Town::new();
    let batch = t.json(&["batches", "next", "--json"]);
    let batch_id = batch["batch"]["id"].as_u64().or(batch["id"].as_u64()).unwrap();
    t.ok(&["batches", "ack", &batch_id.to_string()]);
    let reads = t.json(&["reads", "list", "--meter", "W-100", "--json"]);
    let id = reads
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["read_at"] == month(11).to_string())
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    t.ok(&[
        "review",
        "edit",
        &id.to_string(),
        "13920",
        "--reason",
        "reader misread",
        "--on-behalf-of",
        "ann",
    ]);
    t.ok(&["review", "undo", &id.to_string(), "--on-behalf-of", "ann"]);
    let d = t.json(&["review", "show", &id.to_string(), "--json"]);
    assert_eq!(d["read"]["status"], "exported");
    assert!(d["correction"].is_null(), "{}", d["correction"]);
    // The read is what billing has again: its next batch corrects nothing, and the record of
    // the change is no longer due.
    let store = RedbStore::open_dir(&t.data()).unwrap();
    let doc = meterd::billing::pull(&store, "default", 10_000, jiff::Timestamp::now()).unwrap();
    assert!(doc.is_none_or(|d| d.contents.corrections.is_empty()));
    let change = store.begin_read().unwrap().billed_read_change(id).unwrap().unwrap();
    assert_eq!((change.correction_due, change.audit_seq), (false, None));
    assert_eq!(change.billed.map(|b| (b.batch, b.value)), Some((batch_id, q("13308"))));
}

impl Town {
    fn held_or_none(&self, meter: &str) -> Option<u64> {
        let list = self.json(&["review", "list", "--json"]);
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["meter_id"] == meter)
            .map(|r| r["id"].as_u64().unwrap())
    }
}

const AUDIT: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("audit");

/// Three entries: edit, note, accept on two reads.
fn town_with_audit() -> Town {
    let t = Town::new();
    let w = t.held("W-100").to_string();
    let g = t.held("G-200").to_string();
    t.ok(&[
        "review",
        "edit",
        &w,
        "13608",
        "--reason",
        "keyed 9 for 6",
        "--on-behalf-of",
        "ann",
    ]);
    t.ok(&["review", "note", &g, "meter buried", "--on-behalf-of", "bob"]);
    t.ok(&["review", "accept", &g, "--on-behalf-of", "bob"]);
    assert!(t.ok(&["audit", "verify"]).contains("intact: 3 entries"));
    t
}

fn tamper(path: &Path, f: impl FnOnce(&mut redb::Table<'_, u64, &[u8]>)) {
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(AUDIT).unwrap();
        f(&mut t);
    }
    txn.commit().unwrap();
}

fn entry(path: &Path, seq: u64) -> AuditEntry {
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(AUDIT).unwrap();
    postcard::from_bytes(t.get(seq).unwrap().unwrap().value()).unwrap()
}

#[test]
fn audit_verify_catches_a_changed_entry_and_says_where() {
    let t = town_with_audit();
    let file = t.data().join(meterd::store::STORE_FILE);
    let mut e = entry(&file, 1);
    e.new_value = Quantity::from_units(13000).unwrap();
    e.old_value = Quantity::from_units(14000).unwrap();
    tamper(&file, |tbl| {
        tbl.insert(1, postcard::to_allocvec(&e).unwrap().as_slice()).unwrap();
    });
    let out = t.run(&["audit", "verify"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("entry 1 (edit of read") && text.contains("do not match its hash"),
        "{text}"
    );
    // The read itself says 13608: the entry's value was changed, not the read.
    assert!(
        text.contains("has value 13608 but its last audit entry 1 set 13000"),
        "{text}"
    );
    assert!(
        text.contains("says old value 14000, the read before that change had 14220"),
        "{text}"
    );
    let report = t.run(&["audit", "verify", "--json"]);
    let v: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(v["problems"][0]["entry"], 1);
}

#[test]
fn audit_verify_catches_a_rehashed_entry_by_the_broken_link() {
    let t = town_with_audit();
    let file = t.data().join(meterd::store::STORE_FILE);
    // A careful forger recomputes the entry's own hash: the next entry's link still breaks.
    let mut e = entry(&file, 2);
    e.reason = "nothing to see".into();
    e.hash = e.compute_hash();
    tamper(&file, |tbl| {
        tbl.insert(2, postcard::to_allocvec(&e).unwrap().as_slice()).unwrap();
    });
    let text = String::from_utf8(t.run(&["audit", "verify"]).stdout).unwrap();
    assert!(
        text.contains("entry 3: entry 3 (accept of read") && text.contains("entry 2 was changed or replaced"),
        "{text}"
    );
    assert!(!text.contains("entry 2: "), "entry 2 itself is consistent: {text}");
}

#[test]
fn audit_verify_catches_a_removed_entry() {
    let t = town_with_audit();
    let file = t.data().join(meterd::store::STORE_FILE);
    tamper(&file, |tbl| {
        tbl.remove(2).unwrap();
    });
    let out = t.run(&["audit", "verify"]);
    assert!(!out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("entry 2 is missing: it was removed"), "{text}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("NOT intact"), "{err}");
    // Removing the last entry is caught by the recorded length.
    let t = town_with_audit();
    tamper(&t.data().join(meterd::store::STORE_FILE), |tbl| {
        tbl.remove(3).unwrap();
    });
    assert!(
        String::from_utf8(t.run(&["audit", "verify"]).stdout)
            .unwrap()
            .contains("entry 3 is missing")
    );
}

#[test]
fn reports_exceptions_unbilled_history_and_orders() {
    let t = Town::new();
    {
        // An unread meter and one with a skip code.
        let store = t.store();
        let mut txn = store.begin_write().unwrap();
        let mut m = txn.meter("W-100").unwrap().unwrap();
        m.meter_id = "W-101".into();
        m.account = "A-W-101".into();
        m.sequence = 11;
        m.address = "11 Oak St".into();
        txn.put_meter(&m).unwrap();
        m.meter_id = "W-102".into();
        m.account = "A-W-102".into();
        m.sequence = 12;
        txn.put_meter(&m).unwrap();
        txn.commit().unwrap();
        let mut reads = vec![read("W-102", 10, 500, &[]), read("W-102", 11, 800, &[])];
        reads.push(read("W-102", 12, 800, &["SC-04"]));
        meterd::ingest::accept_reads(&store, &meterd::vee::VeeConfig::default(), reads).unwrap();
    }
    let e = t.held("E-300").to_string();
    t.ok(&[
        "review",
        "reject",
        &e,
        "--reason",
        "read below previous",
        "--due",
        "2026-01-15",
        "--on-behalf-of",
        "ann",
    ]);
    let cycle = ["--from", "2025-12-20", "--to", "2026-01-06"];

    let ex = t.json(&[&["report", "exceptions", "--json"][..], &cycle].concat());
    let checks: Vec<(String, String)> = ex
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["meter_id"].as_str().unwrap().into(),
                e["check"].as_str().unwrap().into(),
            )
        })
        .collect();
    for want in [
        ("W-101", "active_no_reading"),
        ("G-200", "active_no_usage"),
        ("W-100", "information_codes"),
        ("W-100", "outside_high_low"),
        ("W-102", "active_no_usage"),
        ("W-102", "information_codes"),
    ] {
        assert!(
            checks.contains(&(want.0.into(), want.1.into())),
            "{want:?} missing in {checks:?}"
        );
    }
    let hl = ex
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["check"] == "outside_high_low")
        .unwrap();
    assert!(hl["detail"].as_str().unwrap().contains("actual 912"), "{hl}");
    let text = t.ok(&[&["report", "exceptions", "--route", "R01"][..], &cycle].concat());
    assert!(text.contains("active_no_reading") && !text.contains("G-200"), "{text}");
    let csv = t.ok(&[&["report", "exceptions", "--csv"][..], &cycle].concat());
    assert!(
        csv.starts_with("route,sequence,meter_id,account,check,read_id,detail\n"),
        "{csv}"
    );

    let un = t.json(&[&["report", "unbilled", "--json"][..], &cycle].concat());
    let reasons: Vec<(String, String)> = un
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["meter_id"].as_str().unwrap().into(),
                u["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("W-100", "held_for_review"),
            ("W-101", "unread"),
            ("W-102", "skip_code"),
            ("E-300", "rejected"),
            ("G-200", "held_for_review")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );

    let hist = t.ok(&["report", "history", "--account", "A-W-100"]);
    assert!(
        hist.contains("max 912 gal/period · this read 912") && hist.contains("▓"),
        "{hist}"
    );
    assert_eq!(
        hist.lines()
            .filter(|l| l.starts_with("2025-") || l.starts_with("2026-"))
            .count(),
        13,
        "{hist}"
    );
    let hcsv = t.ok(&["report", "history", "--account", "A-W-100", "--csv"]);
    assert_eq!(hcsv.lines().count(), 14);

    let orders = t.ok(&["orders", "list", "--route", "R01"]);
    assert!(
        orders.contains("Route R01")
            && orders.contains("E-300")
            && orders.contains("2026-01-15")
            && orders.contains("read below previous"),
        "{orders}"
    );
    let o = t.json(&["orders", "list", "--json"]);
    let id = o[0]["id"].as_u64().unwrap().to_string();
    t.ok(&[
        "orders",
        "complete",
        &id,
        "--outcome",
        "reread 45460",
        "--on-behalf-of",
        "ann",
    ]);
    assert!(
        t.fails(&["orders", "complete", &id, "--outcome", "again"])
            .contains("already completed")
    );
    assert_eq!(t.json(&["orders", "list", "--json"]).as_array().unwrap().len(), 0);
    assert_eq!(
        t.json(&["orders", "list", "--status", "completed", "--json"])[0]["outcome"],
        "reread 45460"
    );
}

#[test]
fn meter_change_and_estimate_limit_through_the_import_path() {
    let t = Town::new();
    t.ok(&[
        "meters",
        "change",
        "G-200",
        "--at",
        &month(12)
            .checked_add(jiff::SignedDuration::from_hours(240))
            .unwrap()
            .to_string(),
        "--install-read",
        "3",
        "--removal-read",
        "2550",
        "--old-serial",
        "A1",
        "--new-serial",
        "B2",
    ]);
    let store = t.store();
    let mut r = read("G-200", 13, 60, &["serial:B2"]);
    r.read_at = month(13);
    // Estimates: two in a row are fine, the third is held (limit 2).
    let mut ests = Vec::new();
    for m in 13..16 {
        let mut e = read("E-300", m, 45_000 + 500 * (m - 12), &[]);
        e.read_type = ReadType::Estimate;
        ests.push(e);
    }
    let mut all = vec![r];
    all.extend(ests);
    meterd::ingest::accept_reads(&store, &meterd::vee::VeeConfig::default(), all).unwrap();
    let txn = store.begin_read().unwrap();
    let g = txn.meter_reads("G-200", month(13), month(14)).unwrap();
    assert!(g[0].has_flag(Rule::MeterChange), "{:?}", g[0].flags);
    // Old meter 2533 → 2550 (17) + new meter 3 → 60 (57): 74, not 60 − 2533.
    assert_eq!(g[0].consumption, Some(Quantity::from_units(74).unwrap()));
    let e = txn.meter_reads("E-300", month(13), month(17)).unwrap();
    let held: Vec<bool> = e.iter().map(|r| r.has_flag(Rule::EstimateLimit)).collect();
    assert_eq!(held, [false, false, true]);
    assert_eq!(e[2].status, ReadStatus::Flagged);
}

#[test]
fn reject_revalidates_the_next_read_and_undo_cancels_the_order() {
    let t = Town::new();
    let reads = t.json(&["reads", "list", "--meter", "W-100", "--json"]);
    let by_month = |m: i64| {
        reads
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["read_at"] == month(m).to_string())
            .unwrap()["id"]
            .as_u64()
            .unwrap()
    };
    let (r11, r12) = (by_month(11).to_string(), by_month(12).to_string());
    // Reject December's (validated) read: January's consumption now counts from November.
    t.ok(&[
        "review",
        "reject",
        &r11,
        "--reason",
        "reader estimated",
        "--due",
        "2026-01-20",
        "--on-behalf-of",
        "ann",
    ]);
    let d = t.json(&["review", "show", &r12, "--json"]);
    assert_eq!(d["read"]["consumption"], 318 + 912);
    assert_eq!(d["rev"], 2, "the re-validation is the next read's change");
    assert_eq!(d["audit"][0]["action"], "revalidate");
    assert_eq!(t.json(&["orders", "list", "--json"]).as_array().unwrap().len(), 1);
    // Undo: December is back, January counts from it again, the order is cancelled.
    t.ok(&["review", "undo", &r11, "--rev", "1", "--on-behalf-of", "ann"]);
    let d = t.json(&["review", "show", &r12, "--json"]);
    assert_eq!(d["read"]["consumption"], 912);
    assert_eq!(
        t.json(&["review", "show", &r11, "--json"])["read"]["status"],
        "validated"
    );
    assert_eq!(t.json(&["orders", "list", "--json"]).as_array().unwrap().len(), 0);
    let cancelled = t.json(&["orders", "list", "--status", "cancelled", "--json"]);
    assert_eq!(cancelled[0]["outcome"], "reject undone by ann (entered by root)");
    // Undo once more: nothing a clerk did is left on the read.
    let err = t.fails(&["review", "undo", &r11, "--on-behalf-of", "ann"]);
    assert!(err.contains("nothing a clerk can undo"), "{err}");
    assert!(t.ok(&["audit", "verify"]).contains("intact: 4 entries"));
}
