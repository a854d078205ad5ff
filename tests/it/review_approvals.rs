//! Four-eyes approval of large adjustments through the real `meterd` binary: per-service
//! thresholds, the author cannot approve, approval makes the read billable (next batch, or a
//! correction for a read billing had), decline restores the value and holds the read with the
//! reason, undo by the author only, and `audit verify` passes after each.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::common::{failed, json_of, succeeded};
use crate::review_fixture::*;
use meterd::store::RedbStore;
use serde_json::Value;

/// Water adjustments of more than 50 register units and gas ones of more than 1000 need
/// approval; electric keeps the default (none).
const CONFIG: &str = "[vee.water]\napproval_threshold = 50\n\n[vee.gas]\napproval_threshold = 1000\n";

struct Town {
    dir: tempfile::TempDir,
}

impl Town {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        drop(town(&dir.path().join("data")));
        std::fs::write(dir.path().join("meterd.toml"), CONFIG).unwrap();
        Town { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_meterd"))
            .arg("--data-dir")
            .arg(self.data())
            .args(args)
            .current_dir(self.dir.path())
            .env("METERD_CONFIG", self.dir.path().join("meterd.toml"))
            .env_remove("METERD_DATA_DIR")
            .output()
            .unwrap()
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

    /// The id of `meter`'s read in the held queue, if it is there.
    fn held(&self, meter: &str) -> Option<u64> {
        self.json(&["review", "list", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["meter_id"] == meter)
            .map(|r| r["id"].as_u64().unwrap())
    }

    fn show(&self, id: u64) -> Value {
        self.json(&["review", "show", &id.to_string(), "--json"])
    }

    fn approvals(&self) -> Vec<Value> {
        self.json(&["review", "approvals", "--json"])
            .as_array()
            .unwrap()
            .clone()
    }

    /// Ann edits W-100's spike 14220 → 13608: consumption 912 → 300, a change of 612 > 50.
    fn ann_edits_the_spike(&self) -> (u64, u64) {
        let w = self.held("W-100").unwrap();
        let out = self.ok(&[
            "review",
            "edit",
            &w.to_string(),
            "13608",
            "--reason",
            "keyed 9 for 6",
            "--rev",
            "0",
            "--on-behalf-of",
            "ann",
        ]);
        assert!(
            out.contains("edit 14220 → 13608, flagged → pending_approval")
                && out.contains("water: consumption change 612 exceeds the approval threshold 50")
                && out.contains("awaits a supervisor's approval"),
            "{out}"
        );
        (w, self.show(w)["rev"].as_u64().unwrap())
    }

    fn verify(&self) {
        let out = self.ok(&["audit", "verify"]);
        assert!(out.contains("audit trail intact"), "{out}");
    }

    /// Read ids of the next billing batch (the batch stays open).
    fn next_batch(&self) -> Vec<(u64, i64)> {
        self.json(&["batches", "next", "--json"])["reads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["id"].as_u64().unwrap(), r["value"].as_i64().unwrap()))
            .collect()
    }

    fn ack_open_batch(&self) {
        let b = self.json(&["batches", "next", "--json"]);
        if let Some(id) = b["id"].as_u64() {
            self.ok(&["batches", "ack", &id.to_string()]);
        }
    }
}

#[test]
fn the_threshold_is_per_service_and_smaller_changes_need_no_approval() {
    let t = Town::new();
    let (w, rev) = t.ann_edits_the_spike();
    let d = t.show(w);
    assert_eq!(
        (
            d["read"]["status"].as_str(),
            d["read"]["read"]["value"].as_i64(),
            d["read"]["consumption"].as_i64()
        ),
        (Some("pending_approval"), Some(13608), Some(300)),
        "the proposed value is on the read"
    );
    // Out of the clerks' queue, into the supervisors'.
    assert_eq!(t.held("W-100"), None);
    let a = t.approvals();
    assert_eq!(a.len(), 1);
    for (k, v) in [
        ("read_id", Value::from(w)),
        ("rev", rev.into()),
        ("meter_id", "W-100".into()),
        ("service", "water".into()),
        ("action", "edit".into()),
        ("old_value", 14220.into()),
        ("old_consumption", 912.into()),
        ("old_status", "flagged".into()),
        ("value", 13608.into()),
        ("consumption", 300.into()),
        ("change", 612.into()),
        ("author", "ann (entered by root)".into()),
        ("reason", "keyed 9 for 6".into()),
    ] {
        assert_eq!(a[0][k], v, "{k} in {}", a[0]);
    }
    let text = t.ok(&["review", "approvals"]);
    assert!(
        text.contains("W-100")
            && text.contains("612")
            && text.contains("ann")
            && text.contains("1 read(s) awaiting approval"),
        "{text}"
    );

    // Gas: the same change of 612 is under gas's 1000: edited at once, billable.
    let g = t.held("G-200").unwrap();
    let gv = t.show(g)["read"]["read"]["value"].as_i64().unwrap();
    let out = t.ok(&[
        "review",
        "edit",
        &g.to_string(),
        &(gv + 612).to_string(),
        "--reason",
        "dial stuck, reader noted 612 more",
        "--on-behalf-of",
        "ann",
    ]);
    assert!(out.contains("flagged → edited") && !out.contains("approval"), "{out}");
    // Electric keeps the default: no threshold, however large the change.
    let e = t.held("E-300").unwrap();
    let ev = t.show(e)["read"]["read"]["value"].as_i64().unwrap();
    let out = t.ok(&[
        "review",
        "edit",
        &e.to_string(),
        &(ev + 5000).to_string(),
        "--reason",
        "digits transposed",
        "--on-behalf-of",
        "ann",
    ]);
    assert!(out.contains("flagged → edited"), "{out}");
    assert_eq!(t.approvals().len(), 1);
    // The pending read is not billed; the others are.
    let batch = t.next_batch();
    assert!(batch.iter().any(|(id, _)| *id == g) && batch.iter().any(|(id, _)| *id == e));
    assert!(!batch.iter().any(|(id, _)| *id == w), "a pending read is never batched");
    let unbilled = t.json(&[
        "report",
        "unbilled",
        "--json",
        "--from",
        "2025-12-20",
        "--to",
        "2026-01-06",
    ]);
    let reason = unbilled
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["meter_id"] == "W-100")
        .map(|u| u["reason"].clone());
    assert_eq!(reason, Some("pending_approval".into()));
    t.verify();
}

#[test]
fn a_water_change_within_the_threshold_is_not_pending() {
    let t = Town::new();
    let w = t.held("W-100").unwrap();
    // 14220 → 14180: consumption 912 → 872, a change of 40 ≤ 50.
    let out = t.ok(&[
        "review",
        "edit",
        &w.to_string(),
        "14180",
        "--reason",
        "smudged last dial",
        "--on-behalf-of",
        "ann",
    ]);
    assert!(out.contains("flagged → edited") && !out.contains("approval"), "{out}");
    assert!(t.approvals().is_empty());
    assert!(t.next_batch().iter().any(|(id, v)| *id == w && *v == 14180));
}

#[test]
fn the_author_cannot_approve_and_another_supervisors_approval_bills_it() {
    let t = Town::new();
    let (w, rev) = t.ann_edits_the_spike();
    let id = w.to_string();
    let r = rev.to_string();
    t.ack_open_batch();
    assert!(!t.next_batch().iter().any(|(i, _)| *i == w));
    t.ack_open_batch();

    // Four eyes: not the author, whatever the case of the name.
    for who in ["ann", "ANN"] {
        let err = t.fails(&["review", "approve", &id, "--rev", &r, "--on-behalf-of", who]);
        assert!(err.contains("another supervisor must approve it"), "{err}");
    }
    // Nor the admin who typed ann's adjustment, acting as himself (the OS user, root here).
    let err = t.fails(&["review", "approve", &id, "--rev", &r]);
    assert!(err.contains("another supervisor must approve it"), "{err}");
    let err = t.fails(&[
        "review",
        "decline",
        &id,
        "--rev",
        &r,
        "--reason",
        "no",
        "--on-behalf-of",
        "ann",
    ]);
    assert!(err.contains("another supervisor must decline it"), "{err}");
    // A stale revision is refused like every action's.
    let err = t.fails(&["review", "approve", &id, "--rev", "0", "--on-behalf-of", "bob"]);
    assert!(
        err.contains("changed since you loaded it") && err.contains("edit by ann"),
        "{err}"
    );
    // The --rev is required for approvals.
    assert!(
        !t.run(&["review", "approve", &id, "--on-behalf-of", "bob"])
            .status
            .success()
    );
    // Clerks' actions wait for the supervisor.
    let err = t.fails(&["review", "accept", &id, "--on-behalf-of", "cy"]);
    assert!(err.contains("awaits a supervisor's approval"), "{err}");
    let err = t.fails(&["review", "edit", &id, "13700", "--reason", "x", "--on-behalf-of", "cy"]);
    assert!(err.contains("awaits a supervisor's approval"), "{err}");
    assert_eq!(t.show(w)["read"]["status"], "pending_approval");

    let out = t.ok(&[
        "review",
        "approve",
        &id,
        "--rev",
        &r,
        "--note",
        "photo shows 13608",
        "--on-behalf-of",
        "bob",
    ]);
    assert!(out.contains("approve (pending_approval → edited)"), "{out}");
    let d = t.show(w);
    assert_eq!(
        (d["read"]["status"].as_str(), d["read"]["read"]["value"].as_i64()),
        (Some("edited"), Some(13608))
    );
    let last = d["audit"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["action"].as_str(), last["clerk"].as_str()),
        (Some("approve"), Some("bob (entered by root)"))
    );
    assert_eq!(
        last["reason"],
        format!("photo shows 13608; approved edit of entry {rev} by ann (entered by root)")
    );
    assert!(d["undo"].is_null(), "an approval is not undone");
    assert!(t.approvals().is_empty());
    // Billable now: in the next batch, with the approved value.
    assert_eq!(t.next_batch(), [(w, 13608)]);
    // Approving again: nothing awaits approval.
    let rev = t.show(w)["rev"].as_u64().unwrap().to_string();
    let err = t.fails(&["review", "approve", &id, "--rev", &rev, "--on-behalf-of", "bob"]);
    assert!(err.contains("no adjustment of it awaits approval"), "{err}");
    t.verify();
}

#[test]
fn a_decline_restores_the_value_and_holds_the_read_with_the_reason() {
    let t = Town::new();
    let (w, rev) = t.ann_edits_the_spike();
    let (id, r) = (w.to_string(), rev.to_string());
    let err = t.fails(&[
        "review",
        "decline",
        &id,
        "--rev",
        &r,
        "--reason",
        " ",
        "--on-behalf-of",
        "bob",
    ]);
    assert!(err.contains("a reason is required"), "{err}");

    let out = t.ok(&[
        "review",
        "decline",
        &id,
        "--rev",
        &r,
        "--reason",
        "photo shows 14220: the customer filled a pool",
        "--on-behalf-of",
        "bob",
    ]);
    assert!(
        out.contains("decline 13608 → 14220, pending_approval → flagged"),
        "{out}"
    );
    let d = t.show(w);
    assert_eq!(
        (
            d["read"]["status"].as_str(),
            d["read"]["read"]["value"].as_i64(),
            d["read"]["consumption"].as_i64(),
            d["read"]["flags"][0]["rule"].as_str()
        ),
        (Some("flagged"), Some(14220), Some(912), Some("high_usage"))
    );
    let last = d["audit"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["action"].as_str(), last["clerk"].as_str()),
        (Some("decline"), Some("bob (entered by root)"))
    );
    assert_eq!(
        last["reason"],
        format!(
            "photo shows 14220: the customer filled a pool (declined edit of entry {rev} by ann (entered by root))"
        )
    );
    // Back in the clerks' queue, out of the supervisors', not billable, not undoable.
    assert_eq!(t.held("W-100"), Some(w));
    assert!(t.approvals().is_empty());
    assert!(d["undo"].is_null());
    let err = t.fails(&["review", "undo", &id, "--on-behalf-of", "bob"]);
    assert!(err.contains("nothing a clerk can undo"), "{err}");
    assert!(!t.next_batch().iter().any(|(i, _)| *i == w));
    let audit = t.ok(&["audit", "show", "--read", &id]);
    assert!(
        audit.contains("decline") && audit.contains("customer filled a pool"),
        "{audit}"
    );
    t.verify();
}

#[test]
fn only_the_author_may_undo_a_pending_adjustment() {
    let t = Town::new();
    let (w, rev) = t.ann_edits_the_spike();
    let id = w.to_string();
    let err = t.fails(&["review", "undo", &id, "--on-behalf-of", "bob"]);
    assert!(err.contains("only ann (entered by root) can undo it"), "{err}");
    t.ok(&[
        "review",
        "undo",
        &id,
        "--rev",
        &rev.to_string(),
        "--on-behalf-of",
        "ann",
    ]);
    let d = t.show(w);
    assert_eq!(
        (d["read"]["status"].as_str(), d["read"]["read"]["value"].as_i64()),
        (Some("flagged"), Some(14220))
    );
    assert!(t.approvals().is_empty());
    t.verify();
}

#[test]
fn an_estimate_past_the_threshold_waits_too_and_is_approved_as_an_estimate() {
    let t = Town::new();
    // W-100's spike estimated: about 300 instead of 912, far more than 50.
    let w = t.held("W-100").unwrap();
    let out = t.ok(&["review", "estimate", &w.to_string(), "--on-behalf-of", "ann"]);
    assert!(out.contains("flagged → pending_approval"), "{out}");
    let a = t.approvals();
    assert_eq!((a.len(), a[0]["action"].as_str()), (1, Some("estimate")));
    let rev = a[0]["rev"].as_u64().unwrap().to_string();
    t.ok(&[
        "review",
        "approve",
        &w.to_string(),
        "--rev",
        &rev,
        "--on-behalf-of",
        "bob",
    ]);
    let d = t.show(w);
    assert_eq!(
        (d["read"]["status"].as_str(), d["read"]["read"]["read_type"].as_str()),
        (Some("estimated"), Some("estimate"))
    );
    t.verify();
}

#[test]
fn an_exported_read_adjusted_past_the_threshold_is_corrected_only_once_approved() {
    let t = Town::new();
    t.ack_open_batch();
    let reads = t.json(&["reads", "list", "--meter", "W-100", "--json"]);
    let r11 = reads
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["read_at"] == month(11).to_string())
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    assert_eq!(t.show(r11)["read"]["status"], "exported");
    // 13308 → 13920: consumption 318 → 930.
    let out = t.ok(&[
        "review",
        "edit",
        &r11.to_string(),
        "13920",
        "--reason",
        "reader misread",
        "--on-behalf-of",
        "ann",
    ]);
    assert!(out.contains("exported → pending_approval"), "{out}");
    let pull = || {
        let store = RedbStore::open_dir(&t.data()).unwrap();
        let doc = meterd::billing::pull(&store, "default", 10_000, jiff::Timestamp::now()).unwrap();
        if let Some(d) = &doc {
            meterd::billing::ack_batch(&store, d.batch.id, jiff::Timestamp::now()).unwrap();
        }
        doc
    };
    // While it waits, billing hears nothing of it (the next read, re-validated from the
    // proposed value, may go out meanwhile).
    let doc = pull();
    assert!(
        doc.as_ref()
            .is_none_or(|d| d.contents.corrections.is_empty() && !d.contents.lines.iter().any(|l| l.read_id == r11)),
        "{doc:?}"
    );
    let rev = t.approvals()[0]["rev"].as_u64().unwrap().to_string();
    t.ok(&[
        "review",
        "approve",
        &r11.to_string(),
        "--rev",
        &rev,
        "--on-behalf-of",
        "bob",
    ]);
    let doc = pull().expect("a correction is due");
    assert_eq!(doc.contents.corrections.len(), 1, "{doc:?}");
    let c = &doc.contents.corrections[0];
    assert_eq!(
        (c.line.read_id, c.old_value, c.new_value, c.reason.as_str()),
        (r11, q("13308"), Some(q("13920")), "reader misread")
    );
    t.verify();
}

#[test]
fn a_declined_adjustment_of_an_exported_read_leaves_billing_nothing_to_correct() {
    let t = Town::new();
    t.ack_open_batch();
    let reads = t.json(&["reads", "list", "--meter", "W-100", "--json"]);
    let r11 = reads
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
        &r11.to_string(),
        "13920",
        "--reason",
        "reader misread",
        "--on-behalf-of",
        "ann",
    ]);
    let rev = t.approvals()[0]["rev"].as_u64().unwrap().to_string();
    t.ok(&[
        "review",
        "decline",
        &r11.to_string(),
        "--rev",
        &rev,
        "--reason",
        "the photo shows 13308",
        "--on-behalf-of",
        "bob",
    ]);
    let d = t.show(r11);
    assert_eq!(
        (d["read"]["status"].as_str(), d["read"]["read"]["value"].as_i64()),
        (Some("flagged"), Some(13308))
    );
    assert!(d["correction"].is_null(), "{}", d["correction"]);
    // The clerk accepts it as read: the value is what billing has, so nothing is corrected
    // and the read is exported again.
    t.ok(&["review", "accept", &r11.to_string(), "--on-behalf-of", "cy"]);
    let store = RedbStore::open_dir(&t.data()).unwrap();
    let doc = meterd::billing::pull(&store, "default", 10_000, jiff::Timestamp::now()).unwrap();
    assert!(doc.is_none_or(|d| d.contents.corrections.is_empty()));
    drop(store);
    assert_eq!(t.show(r11)["read"]["status"], "exported");
    t.verify();
}
