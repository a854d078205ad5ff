//! Imports that stream (issue 17): `meterd reads import` through a running daemon never holds
//! the file. The client streams it chunk by chunk, the daemon spools it to a private temporary
//! file, checks it whole in a first pass (sorting the reads in bounded runs) and stores it in a
//! second; the peak memory of both processes (`VmHWM` from /proc) stays under a fixed bound
//! whatever the file's size, and a bad row at the end of a big file stores nothing.

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::common::daemon::Daemon;
use crate::common::{METERS_HEADER, Scratch, texts};

/// Peak resident memory allowed to the daemon and to the client, whatever the file's size (the
/// whole-file importer took 553 MiB for 1,000,000 reads; these are generous: a debug build,
/// a chunk of 20,000 reads being validated, runs of 50,000 reads being sorted).
const DAEMON_BOUND_KIB: u64 = 200 * 1024;
const CLIENT_BOUND_KIB: u64 = 40 * 1024;

/// `VmHWM` (peak resident memory) of a live process, in KiB.
fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Watches a child's `VmHWM` until it exits; the last figure seen (it only grows).
struct Watch {
    peak: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (p, d) = (Arc::clone(&peak), Arc::clone(&done));
        let thread = std::thread::spawn(move || {
            while !d.load(Ordering::Relaxed) {
                match vm_hwm(pid) {
                    Some(kib) => p.fetch_max(kib, Ordering::Relaxed),
                    None => break,
                };
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Watch {
            peak,
            done,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// Runs `meterd args` to its end, watching its peak memory: (stdout, stderr, success, peak KiB).
fn run_watched(s: &Scratch, args: &[&str]) -> (String, String, bool, u64) {
    let child: Child = s
        .cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let watch = Watch::start(child.id());
    let out = child.wait_with_output().unwrap();
    let peak = watch.finish();
    let (stdout, stderr) = texts(&out);
    (stdout, stderr, out.status.success(), peak)
}

/// `meters` meters, and a daemon on the store.
fn daemon_with_meters(s: &Scratch, meters: u32) -> Daemon {
    let mut csv = String::from(METERS_HEADER);
    for m in 0..meters {
        csv.push_str(&format!(
            "M{m:06},A{m},R{},{m},water,gal,8,0,1,active,{m} Main St\n",
            m % 100
        ));
    }
    s.file("meters.csv", &csv);
    // A small page cache: the store's cache fills as the store grows (256 MiB by default); the
    // bound is about what the import itself holds.
    let cfg = s.file(
        "meterd.toml",
        "[daemon]\nstop_deadline_secs = 30\nstore_cache_mib = 32\n",
    );
    let d = Daemon::start(s, &cfg);
    d.wait_for("the daemon running", Duration::from_secs(60), |l| {
        l.contains("meterd running")
    });
    let out = s.ok(&["meters", "import", "meters.csv"]);
    assert!(out.contains(&format!("imported {meters} meters")), "{out}");
    d
}

/// A reads file of `rows` rows over `meters` meters, a read of every meter month after month
/// (the order a route's exports come in, not the importer's: the reads are sorted in runs); the
/// last row replaced by `last` when given.
fn write_reads(path: &Path, rows: u64, meters: u64, last: Option<&str>) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    w.write_all(b"meter_id,read_at,value,read_type,codes\n").unwrap();
    let start = jiff::Timestamp::from_second(1_704_096_000).unwrap(); // 2024-01-01T08:00:00Z
    for i in 0..rows {
        if i + 1 == rows
            && let Some(l) = last
        {
            writeln!(w, "{l}").unwrap();
            break;
        }
        let (period, meter) = (i / meters, i % meters);
        let at = start + jiff::SignedDuration::from_hours(24 * 30 * period as i64);
        writeln!(w, "M{meter:06},{at},{},manual,", 1000 + period * 10 + meter % 7).unwrap();
    }
    w.flush().unwrap();
}

fn stored_reads(s: &Scratch, meter: &str) -> usize {
    let v = s.json(&["reads", "list", "--json", "--meter", meter]);
    v.as_array().map_or(0, Vec::len)
}

/// A file of `rows` rows whose last one is bad: refused naming its line, nothing stored, and
/// neither the daemon (which spooled, checked and sorted all of it) nor the client held the file.
fn bad_row_at_the_end(rows: u64) {
    let s = Scratch::new();
    let d = daemon_with_meters(&s, 1_000);
    let file = s.dir.path().join("big.csv");
    write_reads(&file, rows, 1_000, Some("M000007,2026-01-01T08:00:00Z,12x4,manual,"));
    let size = std::fs::metadata(&file).unwrap().len();
    let started = Instant::now();
    let (out, err, ok, client_peak) = run_watched(&s, &["reads", "import", "big.csv"]);
    let took = started.elapsed();
    let daemon_peak = vm_hwm(d.pid()).unwrap();
    eprintln!(
        "bad row at the end of {rows} rows ({} MiB): refused in {took:.1?}; peak memory: daemon {} MiB, client {} MiB",
        size >> 20,
        daemon_peak >> 10,
        client_peak >> 10
    );
    assert!(!ok, "{out}");
    assert!(
        err.contains(&format!(
            "big.csv, line {}, field value: \"12x4\" is not a register value",
            rows + 1
        )),
        "{err}"
    );
    assert!(!out.contains("committed"), "{out}");
    assert_eq!(stored_reads(&s, "M000007"), 0);
    assert!(daemon_peak < DAEMON_BOUND_KIB, "daemon peak {daemon_peak} KiB");
    assert!(
        client_peak > 0 && client_peak < CLIENT_BOUND_KIB,
        "client peak {client_peak} KiB"
    );
    // The spooled file and the sorted runs were unnamed files: nothing is left in the data dir.
    let left: Vec<_> = std::fs::read_dir(s.data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.iter().all(|n| !n.starts_with(".tmp")), "{left:?}");
    d.stop();
}

/// A good file of `rows` rows through the daemon: every read stored once, in bounded memory;
/// the runs the reads were sorted in merged into the importer's order.
fn good_import(rows: u64) {
    let meters: u64 = (rows / 20).clamp(1, 100_000);
    let s = Scratch::new();
    let d = daemon_with_meters(&s, meters as u32);
    let file = s.dir.path().join("reads.csv");
    write_reads(&file, rows, meters, None);
    let started = Instant::now();
    let (out, err, ok, client_peak) = run_watched(&s, &["reads", "import", "--json", "reads.csv"]);
    let took = started.elapsed();
    let daemon_peak = vm_hwm(d.pid()).unwrap();
    eprintln!(
        "{rows} rows over {meters} meters imported in {took:.1?}; peak memory: daemon {} MiB, client {} MiB",
        daemon_peak >> 10,
        client_peak >> 10
    );
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["imported"], rows, "{report}");
    assert_eq!(stored_reads(&s, "M000000"), (rows / meters) as usize);
    assert!(daemon_peak < DAEMON_BOUND_KIB, "daemon peak {daemon_peak} KiB");
    assert!(
        client_peak > 0 && client_peak < CLIENT_BOUND_KIB,
        "client peak {client_peak} KiB"
    );
    d.stop();
}

/// The 2,000,000-row file (40 sorted runs spilled and merged) with a bad last row:
/// streamed, spooled and checked whole in bounded memory, nothing stored (49 s in a debug build
/// under load). Importing a good 2,000,000-row file is [`two_million_reads_in_bounded_memory`].
#[test]
fn a_bad_row_at_the_end_of_a_two_million_row_file_stores_nothing_in_bounded_memory() {
    bad_row_at_the_end(2_000_000);
}

/// 100,000 reads (2 runs) through the daemon: about 30 s in a debug build.
#[test]
fn reads_import_streams_through_the_daemon_in_bounded_memory() {
    good_import(100_000);
}

/// The bound for a good 2,000,000-row file stored whole; too slow for the debug suite
/// (in debug on 2026-12-06: imported in 426 s, daemon 114 MiB, client 31 MiB): `cargo test
/// --release --test it -- --ignored two_million` (or without `--release`, 7 minutes).
#[test]
#[ignore = "release build: cargo test --release --test it -- --ignored two_million"]
fn two_million_reads_in_bounded_memory() {
    good_import(2_000_000);
}
