//! `meterd store backup` of a running daemon's store during MQTT ingest, and `meterd store
//! restore` (issue 18): the copy holds every read committed before the backup began, opens,
//! passes `store check` and `audit verify`; a restore keeps the store it replaces.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use meterd_protocols::ert::scm::Scm;

use crate::common::daemon::Daemon;
use crate::common::mosquitto;
use crate::common::mqtt::publish_all;
use crate::common::{METERS_HEADER, Scratch, meter_line};

/// The ids of every read `meterd reads list` shows (through the daemon when one runs).
fn read_ids(s: &Scratch) -> BTreeSet<u64> {
    s.json(&["reads", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect()
}

/// One SCM transmission of meter `id` as a gateway envelope.
fn scm(id: u32, consumption: u32) -> Vec<u8> {
    let frame = Scm {
        id,
        ert_type: 12,
        tamper_phy: 0,
        tamper_enc: 0,
        consumption,
        checksum: 0,
    }
    .encode();
    format!(r#"{{"gateway":"gw-backup","hex":"{}"}}"#, hex::encode_upper(frame)).into_bytes()
}

#[test]
fn a_backup_during_mqtt_ingest_restores_every_read_committed_before_it() {
    let broker = mosquitto::start(false);
    let s = Scratch::new();
    let cfg = s.file(
        "meterd.toml",
        &format!(
            "[mqtt]\nbroker = \"{}\"\nclient_id = \"meterd-backup\"\ntopics = [\"meters/+/raw\"]\n\
             batch_latency_ms = 10\nkeep_alive_secs = 5\n",
            broker.url()
        ),
    );
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(20), |l| {
        l.contains("connected and subscribed")
    });

    // A gateway keeps publishing distinct meters until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicUsize::new(0));
    let publisher = {
        let (stop, published, port) = (Arc::clone(&stop), Arc::clone(&published), broker.port);
        std::thread::spawn(move || {
            let mut next = 1u32;
            while !stop.load(Ordering::SeqCst) {
                let msgs: Vec<(String, Vec<u8>)> = (0..100)
                    .map(|i| {
                        let id = next + i;
                        ("meters/gw-backup/raw".to_owned(), scm(id, 1000 + id))
                    })
                    .collect();
                publish_all(port, &msgs);
                next += 100;
                published.fetch_add(msgs.len(), Ordering::SeqCst);
            }
        })
    };
    d.wait_until("reads ingested", Duration::from_secs(60), || read_ids(&s).len() >= 500);

    // Every read committed before the backup begins.
    let before = read_ids(&s);
    let published_before = published.load(Ordering::SeqCst);
    let backup = s.dir.path().join("nightly.redb");
    let out = s.run(&["store", "backup", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("backup written"));
    // Ingest went on while the backup ran and after it.
    d.wait_until("more published", Duration::from_secs(30), || {
        published.load(Ordering::SeqCst) > published_before + 200
    });
    stop.store(true, Ordering::SeqCst);
    publisher.join().unwrap();
    let e = s.fails(&["store", "backup", backup.to_str().unwrap()]);
    assert!(e.contains("exists") && e.contains("--force"), "{e}");
    // `store check` through the daemon: a snapshot of the live store.
    let check = s.ok(&["store", "check"]);
    assert!(
        check.contains("intact") && check.contains("on a stopped store only"),
        "{check}"
    );
    // Ingest goes on after the backup (what was published meanwhile is committed).
    d.wait_until("reads committed after the backup", Duration::from_secs(60), || {
        read_ids(&s).len() > before.len()
    });
    let after = read_ids(&s);
    d.stop();

    // Restored into a fresh data directory: every read committed before the backup began.
    let fresh = Scratch::new();
    let out = fresh.ok(&["store", "restore", backup.to_str().unwrap()]);
    assert!(out.contains("restored"), "{out}");
    let restored = read_ids(&fresh);
    let missing: Vec<_> = before.difference(&restored).collect();
    assert!(
        missing.is_empty(),
        "{} reads missing from the backup: {missing:?}",
        missing.len()
    );
    assert!(restored.is_subset(&after), "the backup holds only reads the store had");
    eprintln!(
        "reads committed before the backup: {}, in the backup: {}, in the store after ingest: {}",
        before.len(),
        restored.len(),
        after.len()
    );
    let audit = fresh.ok(&["audit", "verify"]);
    assert!(audit.contains("intact"), "{audit}");
    let check = fresh.ok(&["store", "check"]);
    assert!(check.contains("intact"), "{check}");
}

fn reads_csv(from_day: u32, to_day: u32) -> String {
    let mut csv = String::from("meter_id,read_at,value,read_type,codes\n");
    for day in from_day..=to_day {
        csv.push_str(&format!("W1,2025-04-{day:02}T08:00:00Z,{},manual,\n", 1000 + day * 10));
    }
    csv
}

fn ls(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn restore_checks_the_backup_keeps_the_store_aside_and_refuses_beside_a_daemon() {
    let s = Scratch::new();
    s.import_meters([meter_line("W1", "water", 8, "active")]);
    s.ok(&["reads", "import", s.file("a.csv", &reads_csv(1, 10)).to_str().unwrap()]);
    // Without a daemon the CLI makes the copy itself.
    let backup = s.dir.path().join("b.redb");
    s.ok(&["store", "backup", backup.to_str().unwrap()]);
    s.ok(&["reads", "import", s.file("b.csv", &reads_csv(11, 20)).to_str().unwrap()]);
    assert_eq!(read_ids(&s).len(), 20);
    let store = s.data_dir().join("meterd.redb");
    let mode = std::fs::metadata(&store).unwrap().mode() & 0o777;

    // A damaged backup is refused, the store untouched.
    let bad = s.dir.path().join("bad.redb");
    let mut bytes = std::fs::read(&backup).unwrap();
    let half = bytes.len() / 2;
    bytes[half..].fill(0);
    std::fs::write(&bad, bytes).unwrap();
    let current = std::fs::read(&store).unwrap();
    let e = s.fails(&["store", "restore", bad.to_str().unwrap()]);
    assert!(
        e.contains("fails `store check`") && e.contains("nothing restored"),
        "{e}"
    );
    assert!(
        std::fs::read(&store).unwrap() == current,
        "a refused restore changed the store"
    );

    // Refused while a daemon runs.
    let cfg = s.file("meterd.toml", "");
    let d = Daemon::start(&s, &cfg);
    d.wait_for("the daemon running", Duration::from_secs(60), |l| {
        l.contains("meterd running")
    });
    let e = s.fails(&["store", "restore", backup.to_str().unwrap()]);
    assert!(e.contains("daemon is running") && e.contains("stop it first"), "{e}");
    d.stop();
    // (The daemon itself writes the store as it runs: what is in place now is kept aside.)
    let current = std::fs::read(&store).unwrap();

    // Restored: the backup's ten reads; the store it replaced kept aside, whole.
    s.ok(&["store", "restore", backup.to_str().unwrap()]);
    assert_eq!(read_ids(&s).len(), 10);
    let names = ls(&s.data_dir());
    let aside: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("meterd.redb.before-restore-"))
        .collect();
    assert_eq!(aside.len(), 1, "{names:?}");
    assert!(
        std::fs::read(s.data_dir().join(aside[0])).unwrap() == current,
        "the store kept aside is the one that was in place"
    );
    assert_eq!(std::fs::metadata(&store).unwrap().mode() & 0o777, mode);
    assert!(
        !names.iter().any(|n| n.starts_with(".meterd")),
        "temporary files left: {names:?}"
    );
    s.ok(&["audit", "verify"]);
    s.ok(&["store", "check"]);
    // An import file of the same name is not a store.
    let not_store = s.file(
        "meters.csv",
        &format!("{METERS_HEADER}{}", meter_line("W2", "water", 8, "active")),
    );
    let e = s.fails(&["store", "restore", not_store.to_str().unwrap()]);
    assert!(e.contains("not a redb database file"), "{e}");
}
