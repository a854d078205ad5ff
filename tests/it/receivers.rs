//! wM-Bus receivers on serial ports (`[[receiver]]`), end to end: the real `meterd run` reads
//! each receiver kind through its simulator on a real pty (`meterd simulate receiver`), with a
//! real mosquitto where a gateway hears the same telegrams. Checked in the store after the
//! daemon stopped: reads, quarantine, gateway health; and in the simulators' own reports: the
//! commands the stick received (mode, reset).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::Scratch;
use crate::common::daemon::Daemon;
use crate::common::mosquitto;
use crate::common::mqtt::{publish_all, subscribed};
use meterd::model::{GatewayState, QuarantineEntry, StoredRead};
use meterd::store::{RedbStore, Store};

const KINDS: [&str; 5] = ["im871a", "amber", "cul", "rtl_wmbus", "rtl_433"];
const WAIT: Duration = Duration::from_secs(30);

/// A `meterd simulate receiver` process and the lines it reported; stopped (its pty closed:
/// the stick unplugged) when dropped.
struct Sim {
    child: Child,
    port: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Sim {
    fn start(port: &Path, kind: &str, args: &[&str]) -> Sim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_meterd"))
            .args(["simulate", "receiver", "--kind", kind, "--port"])
            .arg(port)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let sim = Sim {
            child,
            port: port.to_owned(),
            lines,
        };
        sim.wait("ready", |l| l.starts_with("ready "));
        sim
    }

    fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.lines.lock().unwrap().iter().filter(|l| pred(l)).count()
    }

    /// Waits until a reported line satisfies `pred`.
    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) {
        self.wait_n(what, 1, pred);
    }

    fn wait_n(&self, what: &str, n: usize, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + WAIT;
        while self.count(&pred) < n {
            assert!(
                Instant::now() < deadline,
                "simulator {} never reported {what} ({n}×); it reported:\n{}",
                self.port.display(),
                self.lines.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The telegrams it sent (hex).
    fn telegrams(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| l.strip_prefix("telegram ").map(str::to_owned))
            .collect()
    }

    fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// The command a stick of `kind` receives when its mode (T1) is set.
fn mode_command(kind: &str) -> Option<&'static str> {
    match kind {
        "im871a" => Some("command set-config 00020300"),
        "amber" => Some("command set-mode 08"),
        "cul" => Some("command brt"),
        _ => None,
    }
}

fn receiver_section(port: &Path, kind: &str, extra: &str) -> String {
    format!(
        "[[receiver]]\nport = \"{}\"\nkind = \"{kind}\"\nname = \"stick-{kind}\"\n{extra}\n",
        port.display()
    )
}

fn contents(s: &Scratch) -> (Vec<StoredRead>, Vec<QuarantineEntry>, Vec<GatewayState>) {
    let store = RedbStore::open_dir(&s.data_dir()).unwrap();
    let txn = store.begin_read().unwrap();
    (
        txn.all_reads().unwrap(),
        txn.quarantined().unwrap().into_iter().map(|(_, q)| q).collect(),
        txn.gateways().unwrap(),
    )
}

/// Reads per meter, in the order stored.
fn by_meter(reads: &[StoredRead]) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in reads {
        m.entry(r.read.meter_id.clone()).or_default().push(r.read.raw.clone());
    }
    m
}

/// Meter ids of receiver kind `k` (index), meter `n`: distinct across kinds, so no two
/// simulators send the same transmission unless a test wants them to.
fn meter_id(k: usize, n: usize) -> u32 {
    20_000_000 + (k as u32) * 100 + n as u32
}

/// Every kind through its simulator: each telegram (sent twice) stored once as a read of its
/// meter, the stick's mode set on open, a corrupt frame quarantined under `receiver PORT`
/// naming the layer and the check, health counted under the receiver's name.
#[test]
fn each_kind_stores_its_telegrams_once() {
    let s = Scratch::new();
    let mut sims = Vec::new();
    let mut config = String::new();
    for (k, kind) in KINDS.iter().enumerate() {
        let port = s.dir.path().join(format!("wmbus-{kind}"));
        let m1 = format!("{}:1000", meter_id(k, 1));
        let m2 = format!("{}:5000", meter_id(k, 2));
        let args = ["--meter", &m1, "--meter", &m2, "--count", "3", "--repeat", "2", "--bad"];
        sims.push((kind, Sim::start(&port, kind, &args)));
        config.push_str(&receiver_section(&port, kind, ""));
    }
    let cfg = s.file("meterd.toml", &config);
    let d = Daemon::start(&s, &cfg);
    for (kind, sim) in &sims {
        sim.wait("the end of its burst", |l| l == "silent");
        if let Some(c) = mode_command(kind) {
            assert_eq!(
                sim.count(|l| l == c),
                1,
                "{kind}: mode set once on open:\n{}",
                sim.log()
            );
        }
    }
    // The liveness questions on open were answered and logged.
    d.wait_for("the iM871A's ping answer", WAIT, |l| {
        l.contains("receiver: answered") && l.contains("reply=ping")
    });
    d.wait_for("the CUL's version", WAIT, |l| {
        l.contains("receiver: answered") && l.contains("CUL868")
    });
    // 5 kinds × 2 meters × 3 rounds × 2 copies, and one corrupt frame each.
    d.wait_until("every frame committed", WAIT, || {
        d.sum("receiver: committed", "frames") >= 60 && d.sum("receiver: committed", "quarantined") >= 5
    });
    d.stop();

    let (reads, quarantine, gateways) = contents(&s);
    let meters = by_meter(&reads);
    assert_eq!(reads.len(), 30, "{meters:#?}");
    for (k, kind) in KINDS.iter().enumerate() {
        for (n, base) in [(1, 1000), (2, 5000)] {
            let key = format!("wmbus:{}", meter_id(k, n));
            let got = meters
                .get(&key)
                .unwrap_or_else(|| panic!("{kind}: no reads of {key}: {meters:#?}"));
            // The volume register in m³ (10 litres more each round), each round once.
            let m3: Vec<f64> = got.iter().map(|v| v.parse::<f64>().unwrap()).collect();
            let want: Vec<f64> = (0..3).map(|r| f64::from(base + 10 * r) / 1000.0).collect();
            assert_eq!(m3, want, "{key}: {got:?}");
        }
        let g = gateways
            .iter()
            .find(|g| g.gateway == format!("stick-{kind}"))
            .unwrap_or_else(|| panic!("no health for stick-{kind}: {gateways:#?}"));
        assert_eq!((g.messages, g.undecodable), (13, 1), "{kind}: {g:?}");
        assert!(g.last_topic.starts_with("receiver "), "{g:?}");
    }
    assert_eq!(quarantine.len(), 5, "{quarantine:#?}");
    for (kind, check) in [
        ("im871a", "iM871A HCI: CRC check failed"),
        ("amber", "Amber serial frame: checksum check failed"),
        ("cul", "culfw line: invalid telegram hex"),
        ("rtl_wmbus", "rtl_wmbus line: CRC check failed"),
        ("rtl_433", "rtl_433 JSON line: invalid data"),
    ] {
        let port = s.dir.path().join(format!("wmbus-{kind}"));
        let q = quarantine
            .iter()
            .find(|q| q.source == format!("receiver {}", port.display()))
            .unwrap_or_else(|| panic!("{kind}: nothing quarantined: {quarantine:#?}"));
        assert!(q.reason.starts_with(check), "{kind}: {:?}", q.reason);
        assert!(!q.payload.is_empty());
    }
}

/// The same telegrams heard by two sticks and published by an MQTT gateway: each stored once,
/// each copy counted under the gateway or receiver that heard it.
#[test]
fn a_telegram_heard_by_a_stick_and_an_mqtt_gateway_is_stored_once() {
    let broker = mosquitto::start(false);
    let s = Scratch::new();
    let im = s.dir.path().join("wmbus-im871a");
    let cul = s.dir.path().join("wmbus-cul");
    // Both sticks hear the same two meters.
    let args = ["--meter", "30000001:700", "--meter", "30000002:900", "--count", "4"];
    let sim_im = Sim::start(&im, "im871a", &args);
    let sim_cul = Sim::start(&cul, "cul", &args);
    let cfg = s.file(
        "meterd.toml",
        &format!(
            "[mqtt]\nbroker = \"{}\"\nclient_id = \"meterd-receivers\"\ntopics = [\"meters/+/raw\"]\nbatch_latency_ms = 10\nkeep_alive_secs = 5\n{}{}",
            broker.url(),
            receiver_section(&im, "im871a", ""),
            receiver_section(&cul, "cul", ""),
        ),
    );
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", WAIT, subscribed);
    sim_im.wait("the end of its burst", |l| l == "silent");
    sim_cul.wait("the end of its burst", |l| l == "silent");
    let telegrams = sim_im.telegrams();
    assert_eq!(telegrams.len(), 8);
    assert_eq!(
        telegrams.iter().collect::<BTreeSet<_>>(),
        sim_cul.telegrams().iter().collect::<BTreeSet<_>>()
    );
    // The gateway publishes the same telegrams as raw hex.
    let msgs: Vec<(String, Vec<u8>)> = telegrams
        .iter()
        .map(|t| ("meters/gw-roof/raw".to_owned(), t.clone().into_bytes()))
        .collect();
    publish_all(broker.port, &msgs);
    d.wait_until("every copy committed", WAIT, || {
        d.sum("receiver: committed", "frames") >= 16 && d.sum("mqtt: committed", "frames") >= 8
    });
    d.stop();

    let (reads, quarantine, gateways) = contents(&s);
    assert!(quarantine.is_empty(), "{quarantine:#?}");
    assert_eq!(reads.len(), 8, "{:#?}", by_meter(&reads));
    let meters = by_meter(&reads);
    assert_eq!(meters.keys().collect::<Vec<_>>(), ["wmbus:30000001", "wmbus:30000002"]);
    for name in ["stick-im871a", "stick-cul", "gw-roof"] {
        let g = gateways.iter().find(|g| g.gateway == name).unwrap();
        assert_eq!(g.messages, 8, "{name} heard every telegram: {g:?}");
    }
}

/// A stick silent longer than `reset_after_secs` is reset: the iM871A and the Amber get their
/// reset command and their mode again, the CUL and the SDR decoders' ports are closed and
/// reopened (the CUL gets its mode again); each sends again and what it sends is stored.
#[test]
fn a_silent_stick_is_reset() {
    let s = Scratch::new();
    let mut sims = Vec::new();
    let mut config = String::new();
    for (k, kind) in KINDS.iter().enumerate() {
        let port = s.dir.path().join(format!("wmbus-{kind}"));
        let m = format!("{}:100", meter_id(k, 1));
        sims.push((
            kind,
            port.clone(),
            Sim::start(&port, kind, &["--meter", &m, "--count", "1"]),
        ));
        config.push_str(&receiver_section(&port, kind, "reset_after_secs = 1"));
    }
    let cfg = s.file("meterd.toml", &config);
    let d = Daemon::start(&s, &cfg);
    for (kind, port, sim) in &sims {
        match mode_command(kind) {
            Some(mode) => {
                if matches!(**kind, "im871a" | "amber") {
                    sim.wait("a reset command", |l| l == "command reset");
                }
                sim.wait_n("the mode set again", 2, |l| l == mode);
            }
            None => {
                sim.wait("the port closed", |l| l == "reader gone");
                sim.wait_n("the port opened again", 2, |l| l == "reader attached");
            }
        }
        sim.wait_n("a second burst", 2, |l| l == "silent");
        let shown = port.display().to_string();
        d.wait_for("the reset logged", WAIT, |l| {
            l.contains("receiver: silent; resetting") && l.contains(&shown)
        });
    }
    d.wait_until("the second bursts committed", WAIT, || {
        d.sum("receiver: committed", "reads") >= 10
    });
    d.stop();
    let (reads, _, _) = contents(&s);
    let meters = by_meter(&reads);
    for (k, kind) in KINDS.iter().enumerate() {
        let key = format!("wmbus:{}", meter_id(k, 1));
        assert!(
            meters.get(&key).is_some_and(|r| r.len() >= 2),
            "{kind}: reads before and after the reset: {meters:#?}"
        );
    }
}

/// A stick unplugged (its pty closed, the udev link gone) and plugged in again under the same
/// path: the daemon reopens it, sets its mode again and stores what it sends.
#[test]
fn an_unplugged_stick_is_reopened() {
    let s = Scratch::new();
    let mut config = String::new();
    let mut first = Vec::new();
    for (k, kind) in KINDS.iter().enumerate() {
        let port = s.dir.path().join(format!("wmbus-{kind}"));
        let m = format!("{}:100", meter_id(k, 1));
        first.push(Sim::start(&port, kind, &["--meter", &m, "--count", "2"]));
        config.push_str(&receiver_section(&port, kind, ""));
    }
    let cfg = s.file("meterd.toml", &config);
    let d = Daemon::start(&s, &cfg);
    d.wait_until("the first bursts committed", WAIT, || {
        d.sum("receiver: committed", "reads") >= 10
    });
    for sim in &first {
        sim.wait("the end of its burst", |l| l == "silent");
    }
    // Unplug every stick.
    let ports: Vec<PathBuf> = first.iter().map(|s| s.port.clone()).collect();
    drop(first);
    for p in &ports {
        assert!(!p.exists(), "the link goes with the device");
        let shown = p.display().to_string();
        d.wait_for("the port lost", WAIT, |l| {
            l.contains("receiver: port lost") && l.contains(&shown)
        });
    }
    // Plug them in again (a new pty under the same path), carrying on from round 10.
    let mut second = Vec::new();
    for (k, kind) in KINDS.iter().enumerate() {
        let m = format!("{}:100", meter_id(k, 1));
        let sim = Sim::start(&ports[k], kind, &["--meter", &m, "--count", "2", "--first-round", "10"]);
        second.push((kind, sim));
    }
    for (kind, sim) in &second {
        if let Some(mode) = mode_command(kind) {
            sim.wait("its mode set on the reopened port", |l| l == mode);
        }
        sim.wait("the end of its burst", |l| l == "silent");
    }
    d.wait_until("the second bursts committed", WAIT, || {
        d.sum("receiver: committed", "reads") >= 20
    });
    d.stop();
    let (reads, quarantine, _) = contents(&s);
    assert!(quarantine.is_empty(), "{quarantine:#?}");
    let meters = by_meter(&reads);
    for (k, kind) in KINDS.iter().enumerate() {
        let key = format!("wmbus:{}", meter_id(k, 1));
        assert_eq!(
            meters.get(&key).map(Vec::len),
            Some(4),
            "{kind}: two reads before the unplug, two after: {meters:#?}"
        );
    }
}

/// rtl_433 writing into a FIFO (meterd runs no decoder itself): its wM-Bus lines are stored, and
/// the decoder restarting (the write end closed and opened again) is not the end of input.
#[test]
fn rtl_433_through_a_fifo() {
    use meterd_protocols::receiver::rtl_433;
    use std::io::Write as _;
    let s = Scratch::new();
    let fifo = s.dir.path().join("rtl433.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let cfg = s.file("meterd.toml", &receiver_section(&fifo, "rtl_433", ""));
    let d = Daemon::start(&s, &cfg);
    let shown = fifo.display().to_string();
    d.wait_for("the FIFO opened", WAIT, |l| {
        l.contains("receiver: opened") && l.contains(&shown)
    });
    let telegram = |round: u8| meterd::simulate::receiver::telegram(40_000_001, round, 2000 + u32::from(round));
    for run in 0..2u8 {
        // One decoder run: open the write end, write, close.
        let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        for round in [run * 2, run * 2 + 1] {
            w.write_all(rtl_433::line("T", &telegram(round)).as_bytes()).unwrap();
        }
        drop(w);
        d.wait_until("the run's telegrams committed", WAIT, || {
            d.sum("receiver: committed", "reads") >= 2 * (u64::from(run) + 1)
        });
    }
    assert!(!d.log().contains("receiver: port lost"), "{}", d.log());
    d.stop();
    let (reads, quarantine, _) = contents(&s);
    assert!(quarantine.is_empty(), "{quarantine:#?}");
    assert_eq!(
        by_meter(&reads).get("wmbus:40000001").map(Vec::len),
        Some(4),
        "{:#?}",
        by_meter(&reads)
    );
}
