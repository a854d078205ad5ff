//! Every store command gives the same stdout, stderr and exit code in process (no daemon) and
//! through a running daemon: the same scenario, step by step, in two scratch stores.

use std::time::Duration;

use crate::common::daemon::Daemon;
use crate::common::{METERS_HEADER, Scratch};

const METERS: &str = "W1,A-W1,R1,10,water,gal,6,0,1,active,1 Main St\n\
W2,A-W2,R1,20,water,gal,6,0,1,active,2 Main St\n\
W3,A-W3,R1,30,water,gal,6,0,1,active,3 Main St\n\
W4,A-W4,R1,40,water,gal,6,0,1,active,4 Main St\n\
G1,A-G1,R2,10,gas,ccf,5,0,1,active,5 Oak St\n";

/// Three months of 10 units a day per water meter; April uses far more: held for review.
fn history() -> String {
    let mut s = String::from("meter_id,read_at,value,read_type,codes\n");
    for (i, m) in ["W1", "W2", "W3", "W4"].iter().enumerate() {
        let base = 1000 * (i + 1);
        for (month, add) in [(1, 0), (2, 310), (3, 590)] {
            s.push_str(&format!("{m},2025-0{month}-01T08:00:00Z,{},manual,\n", base + add));
        }
    }
    s
}

fn april() -> String {
    let mut s = String::from("meter_id,read_at,value,read_type,codes\n");
    for (i, (m, spike)) in [("W1", 3000), ("W2", 2500), ("W3", 2000), ("W4", 1500)]
        .iter()
        .enumerate()
    {
        s.push_str(&format!(
            "{m},2025-04-01T08:00:00Z,{},manual,\n",
            1000 * (i + 1) + 590 + spike
        ));
    }
    s
}

/// The scenario. Read ids are the same in both stores (same imports in the same order): the
/// history is 1-12 (W1 1-3 … W4 10-12), April's reads 13 (W1) to 16 (W4).
const STEPS: &[&[&str]] = &[
    &["meters", "import", "meters.csv"],
    &["meters", "list"],
    &["meters", "list", "--json"],
    &["reads", "import", "history.csv"],
    &["reads", "import", "april.csv", "--json"],
    &["reads", "import", "missing.csv"],
    &["reads", "import", "bad.csv"],
    &["reads", "list"],
    &["reads", "list", "--json", "--meter", "W1"],
    &["review", "list"],
    &["review", "list", "--json", "--route", "R1"],
    &["review", "show", "13"],
    &["review", "show", "13", "--json"],
    &["review", "accept", "13", "--rev", "0"],
    &["review", "accept", "13", "--rev", "0"],
    &[
        "review",
        "edit",
        "14",
        "3000",
        "--reason",
        "keyed 3 for 5",
        "--rev",
        "0",
        "--json",
    ],
    &["review", "edit", "14", "x", "--reason", "typo"],
    &["review", "estimate", "15", "--dry-run"],
    &["review", "estimate", "15", "--dry-run", "--json"],
    &["review", "estimate", "15", "--reason", "dog in yard"],
    &[
        "review",
        "reject",
        "16",
        "--reason",
        "re-read",
        "--due",
        "2026-01-15",
        "--rev",
        "0",
    ],
    &["review", "note", "13", "customer has a pool"],
    &["review", "note", "13", "bell\u{7}"],
    &["review", "undo", "14", "--rev", "2"],
    // Four eyes: the estimate of 15 (entry 3) waits for a supervisor; root made it.
    &["review", "approvals"],
    &["review", "approvals", "--json"],
    &["review", "approve", "15", "--rev", "3"],
    &[
        "--on-behalf-of",
        "bob",
        "review",
        "approve",
        "15",
        "--rev",
        "3",
        "--note",
        "photo",
    ],
    &["review", "decline", "15", "--rev", "7", "--reason", "too late"],
    &["review", "accept", "9999"],
    &["audit", "verify"],
    &["audit", "verify", "--json"],
    &["audit", "show", "--meter", "W1"],
    &["audit", "show", "--read", "14", "--json"],
    &["orders", "list"],
    &["orders", "list", "--json"],
    &["orders", "list", "--csv"],
    &["orders", "complete", "1", "--outcome", "reread 4100"],
    &["orders", "complete", "1", "--outcome", "again"],
    &["report", "exceptions", "--from", "2025-03-15", "--to", "2025-04-15"],
    &[
        "report",
        "exceptions",
        "--from",
        "2025-03-15",
        "--to",
        "2025-04-15",
        "--csv",
    ],
    &[
        "report",
        "unbilled",
        "--from",
        "2025-03-15",
        "--to",
        "2025-04-15",
        "--json",
    ],
    &["report", "history", "--account", "A-W1"],
    &["report", "history", "--account", "A-W1", "--csv"],
    &["report", "history", "--account", "nobody"],
    &["batches", "export", "--format", "csv", "--out", "export.csv"],
    &["batches", "export", "--format", "nope", "--out", "export2.csv"],
    &["batches", "list"],
    &["batches", "list", "--json", "--status", "open"],
    &["batches", "ack", "1"],
    &["batches", "ack", "1"],
    &["batches", "next", "--json"],
    &["batches", "next"],
    &["gateways", "list"],
    &["gateways", "list", "--json"],
    &["routes", "list"],
    &["routes", "assign", "R1", "--device", "HH01"],
    &["routes", "list", "--json"],
    &["routes", "unassign", "R1"],
    &["routes", "unassign", "R1"],
    &["routes", "unread", "R1"],
    &["tokens", "create", "cis"],
    &["tokens", "create", "cis"],
    &["tokens", "list"],
    &["tokens", "revoke", "cis"],
    &["tokens", "list", "--json"],
    &[
        "meters",
        "change",
        "W2",
        "--at",
        "2025-04-15T00:00:00Z",
        "--install-read",
        "0",
        "--old-serial",
        "A1",
        "--new-serial",
        "B2",
    ],
    &["meters", "list"],
    &["review", "list", "--json"],
];

/// Steps refused in the client before anything is sent (a file it cannot read, a control
/// character): the daemon never hears of them.
const CLIENT_SIDE: usize = 2;

/// What a step printed and returned.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// What must differ between two runs, replaced: times of today (when a batch was created, an
/// audit entry made, a token created or revoked), the audit entries' hashes (they cover those
/// times) and a token's secret. Nothing else.
fn normalise(text: &str) -> String {
    let today = jiff::Zoned::now().date().to_string();
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(&today) {
        out.push_str(&rest[..at]);
        let mut tail = &rest[at + today.len()..];
        // `2026-12-04T16:58:33.123456Z`, `2026-12-04 16:58:33` or `2026-12-04 16:58` (the two runs
        // may fall in different minutes).
        if tail.starts_with(['T', ' ']) {
            let time: String = tail[1..]
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == ':' || *c == '.')
                .collect();
            if time.len() >= 5 && time.as_bytes()[2] == b':' {
                tail = &tail[1 + time.len()..];
                tail = tail.strip_prefix('Z').unwrap_or(tail);
            }
        }
        out.push_str("<now>");
        rest = tail;
    }
    out.push_str(rest);
    // mtd_ and 64 hex digits.
    let mut text = out;
    let mut from = 0;
    while let Some(at) = text[from..].find("mtd_").map(|i| i + from) {
        from = at + 4;
        let end = at + 4 + text[at + 4..].chars().take_while(char::is_ascii_hexdigit).count();
        if end - at != 68 {
            break;
        }
        text.replace_range(at + 4..end, "<token>");
    }
    // SHA-256 in hex: 64 hex digits between non-hex characters.
    let mut out = String::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once('\n')) {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        out.push_str(if run.len() == 64 { "<hash>" } else { &run });
        run.clear();
        out.push(c);
    }
    out.pop();
    out
}

fn scenario(s: &Scratch) {
    s.file("meters.csv", &format!("{METERS_HEADER}{METERS}"));
    s.file("history.csv", &history());
    s.file("april.csv", &april());
    s.file(
        "bad.csv",
        "meter_id,read_at,value,read_type,codes\nW1,2025-05-01T08:00:00Z,12x,manual,\n",
    );
    s.file(
        "meterd.toml",
        "[daemon]\nstop_deadline_secs = 10\n[vee.water]\napproval_threshold = 50\n",
    );
}

fn run_all(s: &Scratch) -> Vec<Outcome> {
    STEPS
        .iter()
        .map(|args| {
            let o = s.run(args);
            Outcome {
                code: o.status.code(),
                stdout: normalise(&String::from_utf8_lossy(&o.stdout)),
                stderr: normalise(&String::from_utf8_lossy(&o.stderr)),
            }
        })
        .collect()
}

#[test]
fn every_store_command_is_the_same_with_and_without_a_daemon() {
    let local = Scratch::new();
    scenario(&local);
    let here = run_all(&local);
    assert!(
        !local.data_dir().join("control.sock").exists(),
        "no daemon in the first run"
    );

    let remote = Scratch::new();
    scenario(&remote);
    let d = Daemon::start(&remote, &remote.dir.path().join("meterd.toml"));
    d.wait_for("the daemon running", Duration::from_secs(60), |l| {
        l.contains("meterd running")
    });
    let there = run_all(&remote);
    // Every step but the client-side refusals went through the daemon, as root.
    d.wait_until("every request logged", Duration::from_secs(20), || {
        d.log().matches("control request").count() >= STEPS.len() - CLIENT_SIDE
    });
    assert_eq!(
        d.log().matches("control request").count(),
        STEPS.len() - CLIENT_SIDE,
        "{}",
        d.log()
    );
    assert!(d.log().contains("user=root uid=0 request=tokens create"), "{}", d.log());

    // The scenario did what it should (so equal outputs are not equal failures).
    let step = |args: &[&str]| STEPS.iter().position(|s| *s == args).unwrap();
    let ok = |args: &[&str]| {
        let o = &here[step(args)];
        assert_eq!(o.code, Some(0), "{args:?}: {}", o.stderr);
        o.stdout.clone()
    };
    assert!(ok(&["review", "list"]).contains("4 of 4 reads awaiting review"));
    let verify = ok(&["audit", "verify"]);
    assert!(verify.contains("audit trail intact: 7 entries"), "{verify}");
    assert!(ok(&["review", "approvals"]).contains("1 read(s) awaiting approval"));
    let own = &here[step(&["review", "approve", "15", "--rev", "3"])];
    assert!(
        own.stderr.contains("another supervisor must approve it"),
        "{}",
        own.stderr
    );
    assert!(
        ok(&[
            "--on-behalf-of",
            "bob",
            "review",
            "approve",
            "15",
            "--rev",
            "3",
            "--note",
            "photo"
        ])
        .contains("approve")
    );
    assert!(ok(&["batches", "export", "--format", "csv", "--out", "export.csv"]).contains("written to export.csv"));
    assert!(ok(&["tokens", "create", "cis"]).starts_with("mtd_<token>"));
    for refused in [
        &["reads", "import", "missing.csv"][..],
        &["review", "accept", "9999"],
        &["review", "note", "13", "bell\u{7}"],
        &["tokens", "create", "cis"],
    ] {
        // (the last time the step runs: the second `tokens create cis` is the refused one)
        let last = STEPS.iter().rposition(|s| *s == refused).unwrap();
        assert_eq!(here[last].code, Some(1), "{refused:?}");
    }
    assert!(
        here[step(&["review", "note", "13", "bell\u{7}"])]
            .stderr
            .contains("control character")
    );

    for ((args, a), b) in STEPS.iter().zip(&here).zip(&there) {
        assert_eq!(
            a, b,
            "meterd {args:?}: in process (left) and through the daemon (right) differ"
        );
    }
    // The exported file, written by the client in both cases, is the same.
    assert_eq!(
        std::fs::read_to_string(local.dir.path().join("export.csv")).unwrap(),
        std::fs::read_to_string(remote.dir.path().join("export.csv")).unwrap()
    );
    d.stop();
}

#[test]
fn normalising_replaces_only_todays_times_and_secrets() {
    let today = jiff::Zoned::now().date();
    let text = format!(
        "batch 1 (created {today}T16:58:33.241699Z): x\n{today} 16:58:33  root  2025-01-01T08:00:00Z mtd_{}\n\"hash\": \"{}\", 12ab\n{today} 16:59  ann",
        "ab".repeat(32),
        "0f".repeat(32)
    );
    assert_eq!(
        normalise(&text),
        "batch 1 (created <now>): x\n<now>  root  2025-01-01T08:00:00Z mtd_<token>\n\"hash\": \"<hash>\", 12ab\n<now>  ann"
    );
}
