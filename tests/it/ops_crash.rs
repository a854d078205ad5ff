//! Crash-test harness (issue 8): a source feeds reads to meterd, meterd is SIGKILLed at a random
//! point, the store is reopened (meterd dead) and checked against what the source was told, N
//! times; then the source runs to the end and everything must be stored exactly once.
//!
//! The invariant, for every scenario: everything the source considers delivered is in the
//! store exactly once, and nothing was delivered without a commit. Three scenarios implement
//! [`Scenario`] and share one driver ([`drive`]), the seeds and the report:
//!
//! - **file-import**: `meterd reads import --chunk N` of a large file. Delivered = the highest
//!   `committed N reads` line it printed (printed after each durable commit). Checked: those N
//!   reads (in commit order) and every earlier file are stored, nothing twice. Once a file is
//!   stored completely the next run imports a new one (the following months), so the kills keep
//!   landing in imports, not in re-runs of a finished one.
//! - **cradle-unload**: `meterd --config X run` with a `[[cradle]]` on a pty made by
//!   `meterd simulate handheld`, which plays a recorder holding a known set of reads (its
//!   memory is its `--state` file, written by the test; the town's route is assigned to another
//!   recorder, so no route is loaded and no read is taken behind the test's back). meterd is
//!   killed before docking, during the unload (a random delay after `recorder docked`), around
//!   the CLEAR (after `unload complete`), or a few ms after the recorder deleted reads (the
//!   simulator's `--events` prints `{"Cleared":...}` as it happens: the moment a CLEAR sent
//!   before its commit would be caught). After each kill the recorder is taken out of
//!   the cradle (SIGINT: the simulator saves its memory, as a recorder keeps it in flash) and
//!   put back before the next start; when it has nothing left to unload it takes a new batch
//!   of reads. Delivered = the reads the recorder has deleted, i.e. every sequence number it
//!   issued that its saved memory no longer holds (it deletes only on the host's CLEAR, which
//!   meterd sends only after the commit). Checked: each deleted read is stored, and every
//!   stored read of the recorder is stored once (by recorder sequence, with its meter and
//!   register). At the end a complete docking leaves the recorder empty and every read it
//!   ever took stored exactly once.
//! - **mqtt-stream**: a private mosquitto, `meterd simulate gateway` publishing a finite
//!   stream (QoS 1, one gateway, so no copy from another gateway hides a lost message; about
//!   2 % corrupt packets), meterd subscribed with a persistent session (clean start off, manual
//!   acks after commit). meterd reaches the broker through a relay in this test that forwards
//!   every byte unchanged and parses the MQTT packets: each PUBLISH the broker sends and each
//!   PUBACK meterd sends back. So the relay sees every ack the broker gets (and a few more: a
//!   PUBACK relayed just before the kill's reset may never be processed by the broker, which
//!   then redelivers the message; counting it as acked only makes the check stricter). The
//!   broker forgets a message when its PUBACK arrives and redelivers the others. Delivered = the
//!   distinct messages meterd PUBACKed (stored counts distinct transmissions plus quarantine
//!   entries; a meter repeating itself is one transmission). Checked after each kill: every
//!   acked message is in the store
//!   (its transmission by the gateway dedup key, or a corrupt one in the quarantine), no
//!   transmission or quarantined payload stored twice, and at least as many reads and
//!   quarantine entries as meterd's `mqtt: committed` lines reported since its start. An ack
//!   sent before its commit shows as an acked message missing from the store at the kill that
//!   interrupted that commit; a message that is neither acked nor stored comes back from the
//!   broker, so the final check catches a loss there: after the stream ends and meterd drained
//!   the session, every distinct intact transmission of the publisher's manifest is stored
//!   exactly once and every corrupt message quarantined once.
//!
//! Both daemon scenarios were checked against deliberately broken builds: acking MQTT messages
//! on arrival, and declaring cradle reads committed on arrival (CLEAR before the commit), each
//! fail within a dozen kills.
//!
//! Each kill prints a line (kill point, phase, delivered before the kill, stored after it,
//! duplicates found) and each scenario a summary, so the figures can be quoted.
//!
//! Default runs are short (CI: a few kills per scenario); the long mode does 50 kills per
//! scenario: `scripts/crash-test [RUNS] [SEED]` (release build, `--ignored`).
//! `METERD_CRASH_RUNS` and `METERD_CRASH_SEED` override the count and the seed (printed, so a
//! failure can be replayed; the timing of a replay still differs).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::Scratch;
use crate::common::mosquitto::{self, Mosquitto};
use meterd::ingest::mqtt::message::{Unit, decode_payload, gateway_of_topic};
use meterd::model::OriginKind;
use meterd::simulate::recorder::{load_state, save_state};
use meterd::store::{RedbStore, Store};
use meterd_protocols::cradle::{ReadRecord, ReadTime, ReadType, RecorderData, Verified};
use meterd_protocols::decode::Keys;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Deadlock guard for any wait (never an assertion on speed).
const GUARD: Duration = Duration::from_secs(300);

/// Where to SIGKILL: after `lines` progress lines of the killed process, plus `extra`.
#[derive(Debug, Clone)]
struct KillPoint {
    lines: usize,
    extra: Duration,
    /// What the progress lines are (for the report).
    what: &'static str,
}

/// What one kill left, as checked with meterd dead.
#[derive(Debug, Clone, Default)]
struct Outcome {
    /// What the source considers delivered (cumulative).
    delivered: u64,
    /// What the store holds from this source (cumulative).
    stored: u64,
    /// Items found stored more than once (the check fails when non-zero; kept for the report).
    duplicates: u64,
    /// Where the kill landed, as far as it can be told afterwards.
    phase: String,
    /// The kill landed in the middle of the work (mid-import, mid-unload, mid-stream).
    mid: bool,
}

/// A child process whose output lines (stdout or stderr) are collected with their arrival time.
struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Proc {
    /// Spawns `cmd`, collecting stdout (`stderr == false`) or stderr lines; the other is dropped.
    fn spawn(mut cmd: Command, stderr: bool) -> Proc {
        if stderr {
            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        } else {
            cmd.stdout(Stdio::piped()).stderr(Stdio::null());
        }
        let mut child = cmd.spawn().unwrap();
        let stream: Box<dyn std::io::Read + Send> = if stderr {
            Box::new(child.stderr.take().unwrap())
        } else {
            Box::new(child.stdout.take().unwrap())
        };
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                sink.lock().unwrap().push((Instant::now(), line));
            }
        });
        Proc {
            child,
            lines,
            reader: Some(reader),
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().iter().map(|(_, l)| l.clone()).collect()
    }

    fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.lines.lock().unwrap().iter().filter(|(_, l)| pred(l)).count()
    }

    /// When the first line satisfying `pred` arrived.
    fn first(&self, pred: impl Fn(&str) -> bool) -> Option<Instant> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find(|(_, l)| pred(l))
            .map(|(t, _)| *t)
    }

    /// Sum of a numeric `key=N` over the lines containing `marker` (meterd's log fields).
    fn sum(&self, marker: &str, key: &str) -> u64 {
        let pat = format!(" {key}=");
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, l)| l.contains(marker))
            .filter_map(|(_, l)| {
                let at = l.find(&pat)? + pat.len();
                l[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse::<u64>().ok()
            })
            .sum()
    }

    fn exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    fn log(&self) -> String {
        self.lines().join("\n")
    }

    /// Waits until `cond` holds; panics with the log after the deadlock guard.
    fn wait_until(&mut self, what: &str, mut cond: impl FnMut(&Proc) -> bool) {
        let deadline = Instant::now() + GUARD;
        while !cond(self) {
            assert!(Instant::now() < deadline, "never reached: {what}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig);
    }

    /// Waits for the exit (after a signal) and for the last output line.
    fn reap(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + GUARD;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "process did not exit; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        };
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        status
    }

    /// SIGKILL: no chance to clean up.
    fn kill(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGKILL);
        self.reap();
    }

    /// SIGTERM and require a clean exit.
    fn stop(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let status = self.reap();
        assert!(status.success(), "exited with {status}; log:\n{}", self.log());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One way of feeding reads to meterd, as the driver needs it.
trait Scenario {
    fn name(&self) -> &'static str;
    /// What "mid" means in the summary (`mid-import`, `mid-unload`, `mid-stream`).
    fn mid_word(&self) -> &'static str;
    /// Prepares the store, the source and the input (once).
    fn setup(&mut self, s: &Scratch);
    /// Chooses the next kill point.
    fn kill_point(&mut self, rng: &mut StdRng) -> KillPoint;
    /// Starts the run to be killed (and whatever the source needs); returns the meterd process.
    fn start(&mut self, s: &Scratch) -> Proc;
    /// Progress of the run so far, in the unit of [`KillPoint::lines`] (from the output of
    /// the meterd process, or of the source).
    fn progress(&mut self, killed: &Proc) -> usize;
    /// Called with meterd dead: checks the store against what the source considers delivered.
    fn after_kill(&mut self, s: &Scratch, killed: &Proc) -> Outcome;
    /// Runs to the end, checks that everything is stored exactly once; returns the items checked.
    fn finish(&mut self, s: &Scratch) -> u64;
}

/// Summary of one scenario's crash test.
#[derive(Debug)]
struct Report {
    kills: Vec<(KillPoint, Outcome)>,
    checked: u64,
}

/// Runs `scenario` with `runs` kills at random points, then to completion; prints every kill
/// and a summary.
fn drive(scenario: &mut dyn Scenario, runs: usize, seed: u64) -> Report {
    let name = scenario.name();
    eprintln!("crash test {name}: {runs} kills, seed {seed} (METERD_CRASH_SEED={seed} replays it)");
    let started = Instant::now();
    let s = Scratch::new();
    scenario.setup(&s);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut kills = Vec::new();
    let mut previous = 0;
    for run in 0..runs {
        let point = scenario.kill_point(&mut rng);
        let mut p = scenario.start(&s);
        let deadline = Instant::now() + GUARD;
        while scenario.progress(&p) < point.lines && !p.exited() {
            assert!(
                Instant::now() < deadline,
                "{name} run {run}: no progress; log:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(point.extra);
        p.kill();
        let out = scenario.after_kill(&s, &p);
        eprintln!(
            "  {name} kill {run:2}: after {} {} + {:4} ms [{}]: delivered {}, stored {}, duplicates {}",
            point.lines,
            point.what,
            point.extra.as_millis(),
            out.phase,
            out.delivered,
            out.stored,
            out.duplicates
        );
        assert_eq!(out.duplicates, 0, "{name} run {run}: stored twice");
        assert!(
            out.stored >= previous,
            "{name} run {run}: reads disappeared ({previous} -> {})",
            out.stored
        );
        previous = out.stored;
        kills.push((point, out));
    }
    let checked = scenario.finish(&s);
    let mid = kills.iter().filter(|(_, o)| o.mid).count();
    let mut phases: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, o) in &kills {
        *phases.entry(o.phase.split(':').next().unwrap_or("")).or_default() += 1;
    }
    eprintln!(
        "crash test {name}: {runs} kills, {mid} {}, phases {phases:?}, max delivered before a kill {}, \
         {} items checked after kills, {checked} checked at the end: every delivered item stored exactly once; {:.1} s",
        scenario.mid_word(),
        kills.iter().map(|(_, o)| o.delivered).max().unwrap_or(0),
        kills.iter().map(|(_, o)| o.stored).sum::<u64>(),
        started.elapsed().as_secs_f64()
    );
    Report { kills, checked }
}

/// `meterd --config CONFIG run`, logging at info (the scenarios read its progress lines).
fn run_daemon(s: &Scratch, config: &std::path::Path) -> Proc {
    let mut cmd = s.cmd(&["--config", config.to_str().unwrap(), "run"]);
    cmd.env("RUST_LOG", "info");
    Proc::spawn(cmd, true)
}

fn runs(default: usize) -> usize {
    std::env::var("METERD_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seed() -> u64 {
    std::env::var("METERD_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::rng().random())
}

/// Stored (meter, read_at) pairs; panics on none, counts pairs stored twice.
fn stored_pairs(store: &RedbStore) -> (HashSet<(String, String)>, u64) {
    let mut seen = HashSet::new();
    let mut dups = 0;
    for r in store.begin_read().unwrap().all_reads().unwrap() {
        if !seen.insert((r.read.meter_id.clone(), r.read.read_at.to_string())) {
            dups += 1;
        }
    }
    (seen, dups)
}

// ---------------------------------------------------------------------------------------------
// file-import

/// `meterd reads import` of a file of `meters × months` reads, committed in chunks. Once a file
/// is stored completely, the next run imports a new file (the following months), so kills keep
/// landing in imports rather than in re-runs of a finished one.
struct FileImport {
    meters: usize,
    months: usize,
    chunk: usize,
    /// Files imported so far; the last one is the current import.
    files: usize,
    reads: String,
    /// (meter, read_at) of every file, in commit order (file by file; by meter, then time).
    order: Vec<(String, String)>,
    /// Where the current file starts in `order`.
    base: usize,
    /// Reads stored at the last check.
    stored: u64,
}

impl FileImport {
    fn new(meters: usize, months: usize, chunk: usize) -> Self {
        FileImport {
            meters,
            months,
            chunk,
            files: 0,
            reads: String::new(),
            order: Vec::new(),
            base: 0,
            stored: 0,
        }
    }

    fn delivered(line: &str) -> Option<u64> {
        line.strip_prefix("committed ")?.strip_suffix(" reads")?.parse().ok()
    }

    fn id(i: usize) -> String {
        format!("K{i:06}")
    }

    /// Writes the next file: `months` more months of every meter.
    fn next_file(&mut self, s: &Scratch) {
        let at = |k: usize| format!("{}-{:02}-05T08:00:00Z", 2020 + k / 12, k % 12 + 1);
        let months = self.files * self.months..(self.files + 1) * self.months;
        self.base = self.order.len();
        for i in 0..self.meters {
            self.order.extend(months.clone().map(|k| (Self::id(i), at(k))));
        }
        let mut reads = String::from("meter_id,read_at,value,read_type,codes\n");
        // Month by month: the file order is not the commit order.
        for k in months {
            for i in 0..self.meters {
                reads.push_str(&format!(
                    "{},{},{},manual,\n",
                    Self::id(i),
                    at(k),
                    1000 + k * 250 + (i % 11) * k
                ));
            }
        }
        self.files += 1;
        self.reads = s
            .file(&format!("reads-{}.csv", self.files), &reads)
            .display()
            .to_string();
    }

    /// Checks that every earlier file and the first `delivered` reads of the current one are
    /// stored; returns (stored, duplicates).
    fn check(&self, s: &Scratch, delivered: u64) -> (u64, u64) {
        let store = RedbStore::open_dir(&s.data_dir()).expect("the store opens cleanly after SIGKILL");
        let (seen, dups) = stored_pairs(&store);
        for (meter, at) in &self.order[..self.base + delivered as usize] {
            assert!(
                seen.contains(&(meter.clone(), at.clone())),
                "reported committed but missing: {meter} {at}"
            );
        }
        (seen.len() as u64 + dups, dups)
    }
}

impl Scenario for FileImport {
    fn name(&self) -> &'static str {
        "file-import"
    }

    fn mid_word(&self) -> &'static str {
        "left a partial import"
    }

    fn setup(&mut self, s: &Scratch) {
        s.import_meters(
            (0..self.meters).map(|i| format!("{},A{i},R{},{i},water,gal,8,0,1,active,x\n", Self::id(i), i % 20)),
        );
    }

    fn kill_point(&mut self, rng: &mut StdRng) -> KillPoint {
        let lines = (self.meters * self.months).div_ceil(self.chunk);
        KillPoint {
            lines: rng.random_range(0..lines),
            extra: Duration::from_millis(rng.random_range(0..200)),
            what: "commit lines",
        }
    }

    fn start(&mut self, s: &Scratch) -> Proc {
        if self.stored == self.order.len() as u64 {
            self.next_file(s);
        }
        Proc::spawn(
            s.cmd(&["reads", "import", "--chunk", &self.chunk.to_string(), &self.reads]),
            false,
        )
    }

    fn progress(&mut self, killed: &Proc) -> usize {
        killed.count(|l| Self::delivered(l).is_some())
    }

    fn after_kill(&mut self, s: &Scratch, killed: &Proc) -> Outcome {
        // Lines printed before the kill landed count as delivered too.
        let delivered = killed
            .lines()
            .iter()
            .filter_map(|l| Self::delivered(l))
            .max()
            .unwrap_or(0);
        let (stored, duplicates) = self.check(s, delivered);
        self.stored = stored;
        let (total, file) = (self.order.len() as u64, (self.order.len() - self.base) as u64);
        let new = stored - self.base as u64;
        let phase = match new {
            0 => format!("nothing of file {} committed", self.files),
            n if n < file => format!("mid-import: {n} of {file} of file {} stored", self.files),
            _ => format!("import complete: file {}", self.files),
        };
        Outcome {
            delivered: self.base as u64 + delivered,
            stored,
            duplicates,
            mid: new > 0 && stored < total,
            phase,
        }
    }

    fn finish(&mut self, s: &Scratch) -> u64 {
        if self.files == 0 {
            self.next_file(s);
        }
        let mut p = Proc::spawn(
            s.cmd(&["reads", "import", "--chunk", &self.chunk.to_string(), &self.reads]),
            false,
        );
        let status = p.reap();
        assert!(status.success(), "the final import failed: {}", p.log());
        let total = self.order.len() as u64;
        assert_eq!(
            self.check(s, total - self.base as u64),
            (total, 0),
            "every file, each read once"
        );
        total
    }
}

// ---------------------------------------------------------------------------------------------
// cradle-unload

const SERIAL: &str = "SIM-CRASH";

/// `meterd run` with a `[[cradle]]`, a `meterd simulate handheld` recorder on the pty.
struct CradleUnload {
    meters: usize,
    /// Reads the recorder takes whenever it has nothing left to unload.
    batch: usize,
    baud: u32,
    port: PathBuf,
    state: PathBuf,
    config: PathBuf,
    /// Every read the recorder ever took, by sequence number (the test wrote them).
    taken: Vec<ReadRecord>,
    /// Recorder sequences stored (as of the last check).
    stored: HashSet<u32>,
    /// Reads to unload at the start of the current run.
    to_unload: usize,
    /// Unload time per read, measured on complete unloads (for choosing kill delays).
    per_read: Duration,
    sim: Option<Proc>,
}

impl CradleUnload {
    fn new(meters: usize, batch: usize, baud: u32) -> Self {
        CradleUnload {
            meters,
            batch,
            baud,
            port: PathBuf::new(),
            state: PathBuf::new(),
            config: PathBuf::new(),
            taken: Vec::new(),
            stored: HashSet::new(),
            to_unload: 0,
            // A firmware-2 read is about 40 bytes on the line, 10 bits a byte.
            per_read: Duration::from_secs_f64(400.0 / f64::from(baud)),
            sim: None,
        }
    }

    fn meter(&self, j: usize) -> String {
        format!("M{:04}", j % self.meters)
    }

    /// The recorder (stopped) takes `n` more reads: written into its saved memory.
    fn take_reads(&mut self, n: usize) {
        let mut data = load_state(&self.state).unwrap();
        assert_eq!(
            data.next_seq as usize,
            self.taken.len(),
            "the recorder's sequence counter"
        );
        let base = jiff::civil::date(2026, 1, 1).at(6, 0, 0, 0);
        for _ in 0..n {
            let j = self.taken.len();
            let t = base
                .checked_add(jiff::SignedDuration::from_mins(10 * j as i64))
                .unwrap();
            let read = ReadRecord {
                seq: 0,
                route_id: "R1".into(),
                meter_id: self.meter(j),
                reading: Some(1_000 + j as u64),
                taken_at: ReadTime::new(
                    t.year() as u16,
                    t.month() as u8,
                    t.day() as u8,
                    t.hour() as u8,
                    t.minute() as u8,
                    0,
                )
                .unwrap(),
                read_type: ReadType::Keyed,
                verified: Verified::No,
                skip_code: None,
                trouble_codes: Vec::new(),
            };
            let seq = data.take_read(read.clone()).unwrap();
            self.taken.push(ReadRecord { seq, ..read });
        }
        save_state(&self.state, &data).unwrap();
    }

    /// Puts the recorder in the cradle: the simulator serves dockings on the pty.
    fn dock_recorder(&mut self, s: &Scratch, seed: u64) {
        assert!(self.sim.is_none());
        let mut cmd = s.cmd(&[
            "simulate",
            "handheld",
            "--firmware",
            "2",
            "--serial",
            SERIAL,
            "--events",
            "--seed",
            &seed.to_string(),
        ]);
        cmd.arg("--turnaround-ms")
            .arg("2")
            .arg("--baud")
            .arg(self.baud.to_string())
            .arg("--port")
            .arg(&self.port)
            .arg("--state")
            .arg(&self.state);
        self.sim = Some(Proc::spawn(cmd, false));
        let deadline = Instant::now() + GUARD;
        while std::fs::symlink_metadata(&self.port).is_err() {
            assert!(
                Instant::now() < deadline,
                "the simulator never linked {}",
                self.port.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Takes the recorder out (SIGINT: the simulator saves its memory and exits); returns its memory.
    fn undock_recorder(&mut self) -> RecorderData {
        let mut sim = self.sim.take().expect("docked");
        sim.signal(nix::sys::signal::Signal::SIGINT);
        let status = sim.reap();
        assert!(status.success(), "the simulator failed: {}", sim.log());
        load_state(&self.state).unwrap()
    }

    /// Checks the store against the recorder's memory; returns (deleted by the recorder, stored, dups).
    fn check(&mut self, s: &Scratch, data: &RecorderData) -> (u64, u64, u64) {
        assert_eq!(
            data.next_seq as usize,
            self.taken.len(),
            "the recorder took reads the test did not give it"
        );
        let store = RedbStore::open_dir(&s.data_dir()).expect("the store opens cleanly after SIGKILL");
        let txn = store.begin_read().unwrap();
        let mut by_seq: BTreeMap<u32, u64> = BTreeMap::new();
        for r in txn.all_reads().unwrap() {
            if r.read.origin.kind != OriginKind::Cradle {
                continue;
            }
            assert_eq!(r.read.origin.source, SERIAL);
            let seq: u32 = r
                .read
                .origin
                .locator
                .split(" seq ")
                .nth(1)
                .and_then(|t| t.split(' ').next())
                .and_then(|t| t.parse().ok())
                .unwrap();
            let want = &self.taken[seq as usize];
            assert_eq!(r.read.meter_id, want.meter_id, "seq {seq}: stored under another meter");
            assert_eq!(
                r.read.raw.parse::<u64>().ok(),
                want.reading,
                "seq {seq}: stored with another register"
            );
            *by_seq.entry(seq).or_default() += 1;
        }
        assert!(
            txn.quarantined().unwrap().is_empty(),
            "every read of the recorder is valid: none quarantined"
        );
        let dups: u64 = by_seq.values().map(|n| n - 1).sum();
        let held: HashSet<u32> = data.reads.iter().map(|r| r.seq).collect();
        let deleted: Vec<u32> = (0..data.next_seq).filter(|q| !held.contains(q)).collect();
        for q in &deleted {
            assert!(
                by_seq.contains_key(q),
                "the recorder deleted read seq {q} but the store does not have it (cleared before commit)"
            );
        }
        self.stored = by_seq.keys().copied().collect();
        (deleted.len() as u64, by_seq.len() as u64 + dups, dups)
    }
}

impl Scenario for CradleUnload {
    fn name(&self) -> &'static str {
        "cradle-unload"
    }

    fn mid_word(&self) -> &'static str {
        "landed mid-unload (some of the run's reads committed, not all)"
    }

    fn setup(&mut self, s: &Scratch) {
        s.import_meters(
            (0..self.meters).map(|i| format!("{},A{i},R1,{i},water,gal,8,0,1,active,{i} Main St\n", self.meter(i))),
        );
        // The town's route belongs to another handheld: this one gets no route, so it takes no
        // reads but the ones the test gives it.
        s.ok(&["routes", "assign", "R1", "--device", "OTHER-1"]);
        self.port = s.dir.path().join("cradle");
        self.state = s.dir.path().join("recorder.json");
        self.config = s.file(
            "meterd.toml",
            &format!(
                "[[cradle]]\nport = \"{}\"\nbaud = {}\nturnaround_ms = 2\n",
                self.port.display(),
                self.baud
            ),
        );
        save_state(&self.state, &RecorderData::default()).unwrap();
    }

    fn kill_point(&mut self, rng: &mut StdRng) -> KillPoint {
        // The next run unloads what is not stored yet, or a new batch.
        let left = self.taken.len() - self.stored.len();
        let pending = if left == 0 { self.batch } else { left };
        let unload = self.per_read.mul_f64(pending as f64);
        let ms = |rng: &mut StdRng, n| Duration::from_millis(rng.random_range(0..n));
        match rng.random_range(0..20) {
            0..2 => KillPoint {
                lines: 0,
                extra: ms(rng, 600),
                what: "steps (started)",
            },
            2..5 => KillPoint {
                lines: 2,
                extra: ms(rng, 60),
                what: "steps (unload complete)",
            },
            5..9 => KillPoint {
                lines: 3,
                extra: ms(rng, 5),
                what: "steps (recorder cleared)",
            },
            _ => KillPoint {
                lines: 1,
                extra: unload.mul_f64(rng.random_range(0.0..1.1)),
                what: "steps (recorder docked)",
            },
        }
    }

    fn start(&mut self, s: &Scratch) -> Proc {
        if self.taken.len() == self.stored.len() {
            self.take_reads(self.batch);
        }
        self.to_unload = self.taken.len() - self.stored.len();
        let seed = self.taken.len() as u64;
        self.dock_recorder(s, seed);
        run_daemon(s, &self.config)
    }

    /// 0 started, 1 `recorder docked`, 2 `unload complete` (meterd's log), 3 the recorder
    /// deleted reads on a CLEAR (the simulator's `--events`).
    fn progress(&mut self, killed: &Proc) -> usize {
        if self
            .sim
            .as_ref()
            .is_some_and(|sim| sim.count(|l| l.starts_with("{\"Cleared\"")) > 0)
        {
            3
        } else if killed.count(|l| l.contains("unload complete")) > 0 {
            2
        } else {
            usize::from(killed.count(|l| l.contains("recorder docked")) > 0)
        }
    }

    fn after_kill(&mut self, s: &Scratch, killed: &Proc) -> Outcome {
        let before = self.stored.len();
        let data = self.undock_recorder();
        let (delivered, stored, duplicates) = self.check(s, &data);
        let new = self.stored.len() - before;
        if let (Some(a), Some(b)) = (
            killed.first(|l| l.contains("recorder docked")),
            killed.first(|l| l.contains("unload complete")),
        ) && new > 0
        {
            self.per_read = (b - a).div_f64(self.to_unload as f64);
        }
        let docked = killed.count(|l| l.contains("recorder docked")) > 0;
        let phase = if !docked {
            "before docking".to_owned()
        } else if new < self.to_unload {
            format!("mid-unload: {new} of {} committed", self.to_unload)
        } else if data.reads.is_empty() {
            "after the CLEAR".to_owned()
        } else {
            format!("unloaded: {new} committed, {} not yet cleared", data.reads.len())
        };
        Outcome {
            delivered,
            stored,
            duplicates,
            mid: docked && new > 0 && new < self.to_unload,
            phase,
        }
    }

    fn finish(&mut self, s: &Scratch) -> u64 {
        // A complete docking: the recorder is emptied.
        self.dock_recorder(s, 0);
        let mut d = run_daemon(s, &self.config);
        d.wait_until("a complete session", |p| {
            p.count(|l| l.contains("session finished")) > 0
        });
        d.stop();
        let data = self.undock_recorder();
        assert!(
            data.reads.is_empty(),
            "after a complete docking the recorder holds {} reads",
            data.reads.len()
        );
        let (deleted, stored, dups) = self.check(s, &data);
        let total = self.taken.len() as u64;
        assert_eq!(
            (deleted, stored, dups),
            (total, total, 0),
            "every read the recorder took, stored exactly once"
        );
        total
    }
}

// ---------------------------------------------------------------------------------------------
// mqtt-stream

/// An MQTT message as the relay saw it: (topic, payload).
type Message = (String, Vec<u8>);

/// A TCP relay between meterd and the broker that forwards bytes unchanged and records, per
/// connection, the QoS 1 PUBLISHes the broker sends and the PUBACKs meterd returns.
struct Relay {
    port: u16,
    /// Messages meterd acknowledged: (topic, payload), in ack order.
    acked: Arc<Mutex<Vec<Message>>>,
    /// Relay threads still running (two per connection).
    live: Arc<AtomicUsize>,
}

/// MQTT packets in `buf`: (first byte, body), removed from `buf`; incomplete tails stay.
fn packets(buf: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        if buf.len() < 2 {
            break;
        }
        let (mut len, mut shift, mut i) = (0usize, 0, 1);
        let complete = loop {
            let Some(&b) = buf.get(i) else { break false };
            len |= usize::from(b & 0x7f) << shift;
            shift += 7;
            i += 1;
            if b & 0x80 == 0 {
                break true;
            }
            assert!(i <= 4, "malformed MQTT remaining length");
        };
        if !complete || buf.len() < i + len {
            break;
        }
        let body = buf[i..i + len].to_vec();
        let first = buf[0];
        buf.drain(..i + len);
        out.push((first, body));
    }
    out
}

fn varint(b: &[u8]) -> (usize, usize) {
    let (mut v, mut shift) = (0usize, 0);
    for (i, &x) in b.iter().enumerate() {
        v |= usize::from(x & 0x7f) << shift;
        shift += 7;
        if x & 0x80 == 0 {
            return (v, i + 1);
        }
    }
    panic!("malformed varint")
}

/// A v5 PUBLISH body: (packet id if QoS > 0, topic, payload).
fn parse_publish(first: u8, body: &[u8]) -> (Option<u16>, String, Vec<u8>) {
    let qos = (first >> 1) & 3;
    let tl = usize::from(u16::from_be_bytes([body[0], body[1]]));
    let topic = String::from_utf8(body[2..2 + tl].to_vec()).unwrap();
    let mut at = 2 + tl;
    let pkid = (qos > 0).then(|| {
        at += 2;
        u16::from_be_bytes([body[at - 2], body[at - 1]])
    });
    let (plen, n) = varint(&body[at..]);
    at += n + plen;
    (pkid, topic, body[at..].to_vec())
}

impl Relay {
    fn start(upstream: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let acked = Arc::new(Mutex::new(Vec::new()));
        let live = Arc::new(AtomicUsize::new(0));
        let (a, l) = (Arc::clone(&acked), Arc::clone(&live));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(broker) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let _ = (client.set_nodelay(true), broker.set_nodelay(true));
                let inflight: Arc<Mutex<HashMap<u16, Message>>> = Arc::default();
                l.fetch_add(2, Ordering::SeqCst);
                // broker -> meterd: note each QoS 1 PUBLISH before forwarding the bytes that complete it.
                let (mut from, mut to) = (broker.try_clone().unwrap(), client.try_clone().unwrap());
                let (fl, live) = (Arc::clone(&inflight), Arc::clone(&l));
                std::thread::spawn(move || {
                    let (mut buf, mut chunk) = (Vec::new(), vec![0u8; 65536]);
                    while let Ok(n) = from.read(&mut chunk) {
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        for (first, body) in packets(&mut buf) {
                            if first >> 4 == 3 {
                                let (pkid, topic, payload) = parse_publish(first, &body);
                                if let Some(id) = pkid {
                                    fl.lock().unwrap().insert(id, (topic, payload));
                                }
                            }
                        }
                        if to.write_all(&chunk[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = (from.shutdown(Shutdown::Both), to.shutdown(Shutdown::Both));
                    live.fetch_sub(1, Ordering::SeqCst);
                });
                // meterd -> broker: note each PUBACK before forwarding it.
                let (mut from, mut to) = (client, broker);
                let (fl, acked, live) = (inflight, Arc::clone(&a), Arc::clone(&l));
                std::thread::spawn(move || {
                    let (mut buf, mut chunk) = (Vec::new(), vec![0u8; 65536]);
                    while let Ok(n) = from.read(&mut chunk) {
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        for (first, body) in packets(&mut buf) {
                            if first >> 4 == 4 {
                                let id = u16::from_be_bytes([body[0], body[1]]);
                                if let Some(m) = fl.lock().unwrap().remove(&id) {
                                    acked.lock().unwrap().push(m);
                                }
                            }
                        }
                        if to.write_all(&chunk[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = (from.shutdown(Shutdown::Both), to.shutdown(Shutdown::Both));
                    live.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Relay { port, acked, live }
    }

    /// Waits until every connection is closed (meterd dead: the last bytes it sent are relayed).
    fn wait_idle(&self) {
        let deadline = Instant::now() + GUARD;
        while self.live.load(Ordering::SeqCst) > 0 {
            assert!(
                Instant::now() < deadline,
                "the relay never saw meterd's connection close"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// `meterd run` with `[mqtt]` (through the relay) and `meterd simulate gateway` publishing.
struct MqttStream {
    count: u64,
    rate: u32,
    broker: Option<Mosquitto>,
    relay: Option<Relay>,
    config: PathBuf,
    manifest: PathBuf,
    publisher: Option<Proc>,
    /// (reads, quarantine entries) stored at the last check.
    stored: (u64, u64),
}

/// What the store holds from the gateways.
struct MqttStore {
    /// Gateway dedup key -> times stored.
    keys: HashMap<String, u64>,
    /// Quarantined payload -> times stored.
    bad: HashMap<Vec<u8>, u64>,
}

impl MqttStore {
    fn open(s: &Scratch) -> MqttStore {
        let store = RedbStore::open_dir(&s.data_dir()).expect("the store opens cleanly after SIGKILL");
        let txn = store.begin_read().unwrap();
        let mut keys: HashMap<String, u64> = HashMap::new();
        for r in txn.all_reads().unwrap() {
            assert_eq!(r.read.origin.kind, OriginKind::Gateway);
            let key = r.read.origin.locator.rsplit(' ').next().unwrap().to_owned();
            *keys.entry(key).or_default() += 1;
        }
        let mut bad: HashMap<Vec<u8>, u64> = HashMap::new();
        for (_, q) in txn.quarantined().unwrap() {
            *bad.entry(q.payload).or_default() += 1;
        }
        MqttStore { keys, bad }
    }

    fn duplicates(&self) -> u64 {
        self.keys.values().chain(self.bad.values()).map(|n| n - 1).sum()
    }

    fn count(&self) -> (u64, u64) {
        (self.keys.values().sum(), self.bad.values().sum())
    }

    /// Every acknowledged message is stored (its transmission, or its corrupt payload).
    fn check_acked(&self, acked: &[Message]) {
        for (topic, payload) in acked {
            let gw = gateway_of_topic(topic, 1);
            for unit in decode_payload(topic, payload, &gw, jiff::Timestamp::now(), &Keys::new()) {
                match unit {
                    Unit::Frame(f) => assert!(
                        self.keys.contains_key(&f.dedup_key),
                        "acked but not stored: transmission {} ({topic}: {})",
                        f.dedup_key,
                        String::from_utf8_lossy(payload)
                    ),
                    Unit::Bad { payload: p, .. } => {
                        assert!(
                            self.bad.contains_key(&p),
                            "acked but not quarantined: {topic}: {}",
                            String::from_utf8_lossy(&p)
                        )
                    }
                    // No compact frames in this traffic.
                    Unit::Status { .. } | Unit::Held(_) => {}
                }
            }
        }
    }
}

impl MqttStream {
    fn new(count: u64, rate: u32) -> Self {
        MqttStream {
            count,
            rate,
            broker: None,
            relay: None,
            config: PathBuf::new(),
            manifest: PathBuf::new(),
            publisher: None,
            stored: (0, 0),
        }
    }

    fn daemon(&self, s: &Scratch) -> Proc {
        run_daemon(s, &self.config)
    }

    /// Distinct transmissions plus corrupt messages of the whole stream, once the publisher is done.
    fn total(&mut self) -> Option<u64> {
        let p = self.publisher.as_mut()?;
        if !p.exited() {
            return None;
        }
        let summary: serde_json::Value = serde_json::from_str(p.lines().last()?).ok()?;
        Some(summary["transmissions"].as_u64()? + summary["corrupt"].as_u64()?)
    }

    fn acked(&self) -> Vec<Message> {
        self.relay.as_ref().unwrap().acked.lock().unwrap().clone()
    }
}

impl Scenario for MqttStream {
    fn name(&self) -> &'static str {
        "mqtt-stream"
    }

    fn mid_word(&self) -> &'static str {
        "landed mid-stream (the killed meterd had committed messages and the publisher was still publishing)"
    }

    fn setup(&mut self, s: &Scratch) {
        let broker = mosquitto::start(false);
        let relay = Relay::start(broker.port);
        self.config = s.file(
            "meterd.toml",
            &format!(
                "[mqtt]\nbroker = \"mqtt://127.0.0.1:{}\"\nclient_id = \"meterd-crash\"\n\
                 topics = [\"meters/+/rtlamr\", \"meters/+/raw\"]\nbatch_size = 200\nbatch_latency_ms = 10\nkeep_alive_secs = 5\n",
                relay.port
            ),
        );
        self.relay = Some(relay);
        // The persistent session exists before the first message: the broker queues the
        // stream for meterd whenever it is down.
        let mut d = self.daemon(s);
        d.wait_until("subscribed", |p| {
            p.count(|l| l.contains("connected and subscribed")) > 0
        });
        d.stop();
        self.manifest = s.dir.path().join("manifest.ndjson");
        let url = broker.url();
        let (count, rate) = (self.count.to_string(), self.rate.to_string());
        let mut cmd = s.cmd(&[
            "simulate",
            "gateway",
            "--broker",
            &url,
            "--meters",
            "300",
            "--gateways",
            "1",
            "--rate",
            &rate,
            "--count",
            &count,
            "--corrupt-rate",
            "0.02",
            "--seed",
            "8",
            "--client-id",
            "sim-crash",
        ]);
        cmd.arg("--manifest").arg(&self.manifest);
        self.publisher = Some(Proc::spawn(cmd, false));
        self.broker = Some(broker);
    }

    fn kill_point(&mut self, rng: &mut StdRng) -> KillPoint {
        KillPoint {
            lines: rng.random_range(0..8),
            extra: Duration::from_millis(rng.random_range(0..150)),
            what: "commit lines",
        }
    }

    fn start(&mut self, s: &Scratch) -> Proc {
        self.daemon(s)
    }

    /// Commit lines; everything once the stream is over and all of it is stored (no more
    /// commit lines will come).
    fn progress(&mut self, killed: &Proc) -> usize {
        let done = self.total().is_some_and(|want| {
            self.stored.0
                + self.stored.1
                + killed.sum("mqtt: committed", "reads")
                + killed.sum("mqtt: committed", "quarantined")
                >= want
        });
        if done {
            usize::MAX
        } else {
            killed.count(|l| l.contains("mqtt: committed"))
        }
    }

    fn after_kill(&mut self, s: &Scratch, killed: &Proc) -> Outcome {
        let streaming = !self.publisher.as_mut().unwrap().exited();
        self.relay.as_ref().unwrap().wait_idle();
        let acked = self.acked();
        let st = MqttStore::open(s);
        st.check_acked(&acked);
        let (reads, bad) = st.count();
        // What meterd logged as committed (new reads and quarantine entries) is stored.
        let (logged_reads, logged_bad) = (
            killed.sum("mqtt: committed", "reads"),
            killed.sum("mqtt: committed", "quarantined"),
        );
        assert!(
            reads >= self.stored.0 + logged_reads,
            "logged {logged_reads} reads committed after {}, store has {reads}",
            self.stored.0
        );
        assert!(
            bad >= self.stored.1 + logged_bad,
            "logged {logged_bad} quarantined after {}, store has {bad}",
            self.stored.1
        );
        let messages = killed.sum("mqtt: committed", "messages");
        self.stored = (reads, bad);
        let phase = match (messages, streaming) {
            (0, _) => "nothing committed".to_owned(),
            (m, true) => format!("mid-stream: {m} messages committed"),
            (m, false) => format!("stream over, draining: {m} messages committed"),
        };
        let delivered = acked.iter().collect::<HashSet<_>>().len() as u64;
        Outcome {
            delivered,
            stored: reads + bad,
            duplicates: st.duplicates(),
            mid: messages > 0 && streaming,
            phase,
        }
    }

    fn finish(&mut self, s: &Scratch) -> u64 {
        let mut publisher = self.publisher.take().unwrap();
        let status = publisher.reap();
        assert!(status.success(), "the publisher failed");
        let summary: serde_json::Value = serde_json::from_str(&publisher.log()).unwrap();
        assert_eq!(summary["published"], self.count);
        let corrupt = summary["corrupt"].as_u64().unwrap();
        let manifest: Vec<serde_json::Value> = std::fs::read_to_string(&self.manifest)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(manifest.len() as u64, summary["transmissions"].as_u64().unwrap());
        // meterd drains the session (a shortfall hangs until the guard, an excess shows below).
        let want = manifest.len() as u64 + corrupt;
        let before = self.stored.0 + self.stored.1;
        let mut d = self.daemon(s);
        d.wait_until("subscribed", |p| {
            p.count(|l| l.contains("connected and subscribed")) > 0
        });
        d.wait_until("the whole stream stored", |p| {
            before + p.sum("mqtt: committed", "reads") + p.sum("mqtt: committed", "quarantined") >= want
        });
        d.stop();
        self.relay.as_ref().unwrap().wait_idle();
        let st = MqttStore::open(s);
        st.check_acked(&self.acked());
        assert_eq!(st.duplicates(), 0, "stored twice");
        let want_keys: HashSet<&str> = manifest.iter().map(|m| m["key"].as_str().unwrap()).collect();
        let got_keys: HashSet<&str> = st.keys.keys().map(String::as_str).collect();
        let missing: Vec<_> = want_keys.difference(&got_keys).take(5).collect();
        let extra: Vec<_> = got_keys.difference(&want_keys).take(5).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "missing {missing:?}, extra {extra:?}"
        );
        assert_eq!(
            st.count(),
            (manifest.len() as u64, corrupt),
            "every transmission stored once, every corrupt message quarantined once"
        );
        let acked = self.acked();
        eprintln!(
            "  mqtt-stream: {} messages published ({} distinct transmissions, {corrupt} corrupt), {} acked by meterd \
             ({} PUBACKs: a PUBACK cut off by a kill is redelivered and acked again)",
            self.count,
            manifest.len(),
            acked.iter().collect::<HashSet<_>>().len(),
            acked.len()
        );
        want
    }
}

// ---------------------------------------------------------------------------------------------
// Tests: short by default (CI), long with --ignored (scripts/crash-test).

#[test]
fn file_import_survives_random_sigkills() {
    let r = drive(&mut FileImport::new(1_000, 12, 500), runs(4), seed());
    assert!(
        r.kills.iter().any(|(_, o)| o.delivered > 0),
        "no kill happened after a commit: {r:?}"
    );
}

#[test]
fn cradle_unload_survives_random_sigkills() {
    let r = drive(&mut CradleUnload::new(200, 300, 115_200), runs(3), seed());
    assert!(r.checked >= 300, "{r:?}");
}

#[test]
fn mqtt_stream_survives_random_sigkills() {
    let r = drive(&mut MqttStream::new(4_000, 500), runs(3), seed());
    assert!(
        r.kills.iter().any(|(_, o)| o.delivered > 0),
        "no kill happened after an ack: {r:?}"
    );
}

/// Long mode: 50 kills on a bigger file (`scripts/crash-test`).
#[test]
#[ignore = "long: 50 SIGKILLs; run with --ignored (scripts/crash-test)"]
fn file_import_survives_50_random_sigkills() {
    let r = drive(&mut FileImport::new(5_000, 24, 2_000), runs(50), seed());
    assert!(r.kills.iter().filter(|(_, o)| o.delivered > 0).count() >= 10, "{r:?}");
}

/// Long mode: 50 kills around cradle unloads.
#[test]
#[ignore = "long: 50 SIGKILLs; run with --ignored (scripts/crash-test)"]
fn cradle_unload_survives_50_random_sigkills() {
    let r = drive(&mut CradleUnload::new(500, 1_000, 115_200), runs(50), seed());
    assert!(r.kills.iter().filter(|(_, o)| o.mid).count() >= 10, "{r:?}");
}

/// Long mode: 50 kills during an MQTT stream.
#[test]
#[ignore = "long: 50 SIGKILLs; run with --ignored (scripts/crash-test)"]
fn mqtt_stream_survives_50_random_sigkills() {
    let n = runs(50) as u64;
    let r = drive(&mut MqttStream::new(600 * n, 1_000), n as usize, seed());
    assert!(r.kills.iter().filter(|(_, o)| o.mid).count() >= 10, "{r:?}");
}
