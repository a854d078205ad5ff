//! Crash safety: a `meterd reads import` process is SIGKILLed at different moments. Every
//! read it reported as committed (`committed N reads`, printed after each durable commit)
//! must be in the store afterwards, with no duplicates, and the store must open cleanly.
//! Re-running the import then completes it exactly once.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{METERS_HEADER, Scratch};
use meterd::store::{RedbStore, Store};

const METERS: usize = 3_000;
const READS_PER_METER: usize = 10;
const CHUNK: &str = "1000";

fn meter_id(i: usize) -> String {
    format!("C{i:05}")
}

fn read_at(k: usize) -> String {
    format!("2025-{:02}-05T08:00:00Z", k + 1)
}

/// Files, and the (meter, read_at) pairs in the order meterd commits them (by meter, then time).
fn write_files(s: &Scratch) -> (String, String, Vec<(String, String)>) {
    let mut meters = String::from(METERS_HEADER);
    let mut reads = String::from("meter_id,read_at,value,read_type,codes\n");
    let mut order = Vec::new();
    for i in 0..METERS {
        meters.push_str(&format!(
            "{},A{i},R{},{i},water,gal,8,0,1,active,x\n",
            meter_id(i),
            i % 20
        ));
        order.extend((0..READS_PER_METER).map(|k| (meter_id(i), read_at(k))));
    }
    // Written month by month, so the file order is not the commit order.
    for k in 0..READS_PER_METER {
        for i in 0..METERS {
            reads.push_str(&format!(
                "{},{},{},manual,\n",
                meter_id(i),
                read_at(k),
                1000 + k * 300 + (i % 7) * k * k
            ));
        }
    }
    let m = s.file("meters.csv", &meters);
    let r = s.file("reads.csv", &reads);
    (m.display().to_string(), r.display().to_string(), order)
}

enum KillAt {
    /// After the n-th progress line.
    Line(usize),
    /// After this long, whatever it is doing.
    After(Duration),
}

/// Run the import, SIGKILL it at `at`; returns the highest count it reported as committed.
fn import_and_kill(s: &Scratch, reads: &str, at: &KillAt) -> u64 {
    let mut child = s
        .cmd(&["reads", "import", "--chunk", CHUNK, reads])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut reported = 0u64;
    let mut lines = 0;
    loop {
        let deadline = match at {
            KillAt::After(d) => d.saturating_sub(started.elapsed()),
            KillAt::Line(_) => Duration::from_secs(120),
        };
        match rx.recv_timeout(deadline) {
            Ok(line) => {
                if let Some(n) = line.strip_prefix("committed ").and_then(|l| l.strip_suffix(" reads")) {
                    reported = reported.max(n.parse().unwrap());
                    lines += 1;
                    if matches!(at, KillAt::Line(k) if lines >= *k) {
                        break;
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            // Finished before the timed kill (a fast machine): nothing to kill, still checked.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Lines printed before the kill landed still count as reported.
    for line in rx.iter() {
        if let Some(n) = line.strip_prefix("committed ").and_then(|l| l.strip_suffix(" reads")) {
            reported = reported.max(n.parse().unwrap());
        }
    }
    reader.join().unwrap();
    reported
}

/// Open the store the killed process left and check it against what was reported.
fn check_store(s: &Scratch, order: &[(String, String)], reported: u64) -> usize {
    let store = RedbStore::open_dir(&s.data_dir()).expect("store opens cleanly after SIGKILL");
    let reads = store.begin_read().unwrap().all_reads().unwrap();
    let mut seen = HashSet::new();
    for r in &reads {
        assert!(
            seen.insert((r.read.meter_id.clone(), r.read.read_at.to_string())),
            "duplicate read {r:?}"
        );
    }
    assert!(
        reads.len() as u64 >= reported,
        "reported {reported} committed, store holds {}",
        reads.len()
    );
    for (meter, at) in &order[..reported as usize] {
        assert!(
            seen.contains(&(meter.clone(), at.clone())),
            "reported read {meter} {at} missing"
        );
    }
    reads.len()
}

#[test]
fn sigkill_mid_import_loses_nothing_reported() {
    let s = Scratch::new();
    let (meters, reads, order) = write_files(&s);
    s.ok(&["meters", "import", &meters]);

    let mut previous = 0;
    for at in [
        KillAt::Line(1),
        KillAt::After(Duration::from_millis(400)),
        KillAt::Line(3),
        KillAt::After(Duration::from_millis(1500)),
    ] {
        let reported = import_and_kill(&s, &reads, &at);
        if let KillAt::Line(_) = at {
            assert!(reported < order.len() as u64, "the kill came after the import finished");
        }
        let stored = check_store(&s, &order, reported);
        assert!(stored >= previous, "reads disappeared: {previous} → {stored}");
        previous = stored;
    }
    assert!(previous > 0, "no kill happened after a commit");

    // Finishing the import stores every read exactly once.
    let out = s.ok(&["reads", "import", "--chunk", CHUNK, &reads]);
    assert!(out.contains(&format!("committed {} reads", order.len())), "{out}");
    assert_eq!(check_store(&s, &order, order.len() as u64), order.len());
}
