//! A damaged store fails safe (issue 18): flipped bytes, a zeroed half, an empty or foreign
//! file give a clear error naming the store and what to do, never a panic, and never a
//! changed file; `store check` names the damage and changes nothing; reading does not write.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use rand::{Rng as _, SeedableRng as _};

use crate::common::free_port;
use crate::common::{Scratch, meter_line, texts};

/// A town with 3,000 reads (100 meters, 30 days each), imported through the CLI.
fn town() -> Scratch {
    let s = Scratch::new();
    s.import_meters((0..100).map(|i| meter_line(&format!("W{i:03}"), "water", 8, "active")));
    let mut csv = String::from("meter_id,read_at,value,read_type,codes\n");
    for i in 0..100 {
        for day in 1..=30 {
            csv.push_str(&format!(
                "W{i:03},2025-04-{day:02}T08:00:00Z,{},manual,\n",
                1000 + day * 10
            ));
        }
    }
    s.ok(&["reads", "import", s.file("reads.csv", &csv).to_str().unwrap()]);
    s
}

fn store_file(s: &Scratch) -> PathBuf {
    s.data_dir().join("meterd.redb")
}

/// The file's bytes and modification time: what "unchanged" means here.
fn snapshot(p: &Path) -> (Vec<u8>, i64, i64) {
    let m = std::fs::metadata(p).unwrap();
    (std::fs::read(p).unwrap(), m.mtime(), m.mtime_nsec())
}

/// 50 bytes flipped at seeded positions spread over the file (past redb's magic number).
fn flip_bytes(p: &Path) {
    let mut bytes = std::fs::read(p).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(18);
    for _ in 0..50 {
        let at = rng.random_range(16..bytes.len());
        bytes[at] ^= 1 << rng.random_range(0..8);
    }
    std::fs::write(p, bytes).unwrap();
}

fn zero_second_half(p: &Path) {
    let mut bytes = std::fs::read(p).unwrap();
    let half = bytes.len() / 2;
    bytes[half..].fill(0);
    std::fs::write(p, bytes).unwrap();
}

/// Runs `args`, which must fail cleanly: no panic (exit code 101, "panicked"), an error naming
/// the store file. Returns stderr.
fn fails_cleanly(s: &Scratch, args: &[&str]) -> String {
    let out = s.run(args);
    let (stdout, stderr) = texts(&out);
    assert!(!out.status.success(), "meterd {args:?} should fail: {stdout}");
    assert_ne!(out.status.code(), Some(101), "meterd {args:?} panicked: {stderr}");
    assert!(!stderr.contains("panicked"), "meterd {args:?}: {stderr}");
    assert!(stderr.contains("meterd.redb"), "the error names the store: {stderr}");
    stderr
}

/// The damaged store gives the same clear error on every command, and none changes it.
fn damaged_store_fails_safe(s: &Scratch) {
    let file = store_file(s);
    let before = snapshot(&file);
    let first = fails_cleanly(s, &["reads", "list", "--json"]);
    eprintln!("reads list on the damaged store: {first}");
    assert!(
        first.contains("meterd store check") && first.contains("backup"),
        "the error says what to do: {first}"
    );
    assert!(snapshot(&file) == before, "reads list changed the damaged store");
    let again = fails_cleanly(s, &["reads", "list", "--json"]);
    assert_eq!(
        again, first,
        "the next command gives the same error (nothing made worse)"
    );
    // Commands that write refuse too, without repairing the file.
    let meters = s.file(
        "more.csv",
        &format!(
            "{}{}",
            crate::common::METERS_HEADER,
            meter_line("X1", "water", 8, "active")
        ),
    );
    fails_cleanly(s, &["meters", "import", meters.to_str().unwrap()]);
    assert!(snapshot(&file) == before, "meters import changed the damaged store");
    assert_eq!(fails_cleanly(s, &["reads", "list", "--json"]), first);

    // `store check` names the damage, exits 1, and changes nothing.
    let out = s.run(&["store", "check", "--json"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "store check: {stdout}{stderr}");
    assert!(stderr.contains("DAMAGED"), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    eprintln!("store check: {report}");
    assert!(!report["problems"].as_array().unwrap().is_empty(), "{report}");
    assert!(snapshot(&file) == before, "store check changed the damaged store");
    assert!(
        std::fs::read_dir(s.data_dir()).unwrap().count() == 1,
        "store check left files behind"
    );
}

#[test]
fn flipped_bytes_give_a_clear_error_and_change_nothing() {
    let s = town();
    flip_bytes(&store_file(&s));
    damaged_store_fails_safe(&s);
}

#[test]
fn a_zeroed_half_gives_a_clear_error_and_changes_nothing() {
    let s = town();
    zero_second_half(&store_file(&s));
    damaged_store_fails_safe(&s);
}

#[test]
fn an_empty_or_foreign_store_file_is_refused_never_initialised() {
    for (what, contents) in [("empty", &b""[..]), ("foreign", &b"SQLite format 3\0 not a store"[..])] {
        let s = Scratch::new();
        std::fs::create_dir_all(s.data_dir()).unwrap();
        std::fs::write(store_file(&s), contents).unwrap();
        let e = fails_cleanly(&s, &["reads", "list", "--json"]);
        assert!(e.contains("is not a meterd store"), "{what}: {e}");
        let meters = s.file(
            "m.csv",
            &format!(
                "{}{}",
                crate::common::METERS_HEADER,
                meter_line("X1", "water", 8, "active")
            ),
        );
        fails_cleanly(&s, &["meters", "import", meters.to_str().unwrap()]);
        assert_eq!(
            std::fs::read(store_file(&s)).unwrap(),
            contents,
            "{what}: the file was changed"
        );
    }
    // A redb database that is not a meterd store (no schema table) is refused too.
    let s = Scratch::new();
    std::fs::create_dir_all(s.data_dir()).unwrap();
    {
        let db = redb::Database::create(store_file(&s)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<u64, u64>::new("other"))
            .unwrap()
            .insert(1, 2)
            .unwrap();
        txn.commit().unwrap();
    }
    let before = snapshot(&store_file(&s));
    let e = fails_cleanly(&s, &["reads", "list"]);
    assert!(e.contains("schema table"), "{e}");
    assert!(snapshot(&store_file(&s)) == before);
}

#[test]
fn reading_does_not_write_the_store_and_check_passes_an_intact_one() {
    let s = town();
    let file = store_file(&s);
    let before = snapshot(&file);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let reads = s.json(&["reads", "list", "--json"]);
    assert_eq!(reads.as_array().unwrap().len(), 3000);
    s.ok(&["audit", "verify"]);
    let out = s.ok(&["store", "check"]);
    assert!(
        out.contains("intact") && out.contains("page checksums verified"),
        "{out}"
    );
    assert!(snapshot(&file) == before, "a read-only command wrote the store");
}

/// `GET /healthz`: the status line ("" when nothing answers yet).
fn healthz(port: u16) -> String {
    use std::io::{Read as _, Write as _};
    let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    c.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

/// The store damaged under a running daemon (the disk, not meterd): its commands fail with the
/// damaged-store error, the daemon stays up and keeps answering, `/healthz` says 503.
#[test]
fn a_daemon_whose_store_is_damaged_under_it_stays_up_and_says_so() {
    use std::io::{Seek as _, Write as _};
    use std::time::Duration;
    let s = town();
    let http = free_port();
    // A small page cache: reads go to the file, where the damage is.
    let cfg = s.file(
        "meterd.toml",
        &format!("[daemon]\nstore_cache_mib = 1\n\n[http]\nlisten = \"127.0.0.1:{http}\"\n"),
    );
    let d = crate::common::daemon::Daemon::start(&s, &cfg);
    d.wait_until("healthz answers", Duration::from_secs(60), || {
        healthz(http).contains("200")
    });

    let file = store_file(&s);
    let len = std::fs::metadata(&file).unwrap().len();
    let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.seek(std::io::SeekFrom::Start(len / 2)).unwrap();
    f.write_all(&vec![0; (len - len / 2) as usize]).unwrap();
    f.sync_all().unwrap();
    drop(f);

    let first = fails_cleanly(&s, &["reads", "list", "--json"]);
    eprintln!("through the daemon: {first}");
    assert!(first.contains("meterd store check"), "{first}");
    let again = fails_cleanly(&s, &["reads", "list", "--json"]);
    assert_eq!(again, first, "the same error on the next command");
    let status = healthz(http);
    eprintln!("healthz: {status}");
    assert!(status.contains("503"), "{status}");
    // Still up: the control socket answers (the store command fails with the same error).
    let e = fails_cleanly(&s, &["meters", "list"]);
    assert!(e.contains("is damaged"), "{e}");
    assert!(!d.log().contains("panicked"), "{}", d.log());
    d.stop();
}
