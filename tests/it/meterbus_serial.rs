//! Reading meters over serial lines, end to end over real pseudo-terminals: the real `meterd`
//! binary simulates a meter on a pty (`meterd simulate meter`) and reads it (`meterd poll probe`,
//! `meterd poll mbus`, `meterd listen p1`, and the daemon's meterbus component); the reads are
//! checked in the store after VEE.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{METERS_HEADER, Scratch, meter_line};
use meterd::config::Config;
use meterd::model::{Quantity, QuarantineEntry, ReadStatus, StoredRead};
use meterd::store::{RedbStore, Store};
use serde_json::Value;

/// A simulator process, stopped (SIGTERM, then reaped) when dropped.
struct Sim {
    child: Child,
    port: PathBuf,
}

impl Sim {
    fn start(s: &Scratch, name: &str, args: &[&str]) -> Sim {
        let port = s.dir.path().join(name);
        let mut child = Command::new(env!("CARGO_BIN_EXE_meterd"))
            .args(["simulate", "meter", "--port"])
            .arg(&port)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("ready "), "simulator did not start: {line:?}");
        Sim { child, port }
    }

    fn port(&self) -> &str {
        self.port.to_str().unwrap()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// Runs meterd with a config file; returns (success, stdout, stderr).
fn meterd(s: &Scratch, config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = s
        .cmd(&[&["--config", config.to_str().unwrap()], args].concat())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn store_contents(s: &Scratch) -> (Vec<StoredRead>, Vec<QuarantineEntry>) {
    let store = RedbStore::open_dir(&s.data_dir()).unwrap();
    let txn = store.begin_read().unwrap();
    (
        txn.all_reads().unwrap(),
        txn.quarantined().unwrap().into_iter().map(|(_, q)| q).collect(),
    )
}

fn import_meters(s: &Scratch, ids: &[(&str, &str)]) {
    let lines: String = ids
        .iter()
        .map(|(id, service)| meter_line(id, service, 9, "active"))
        .collect();
    let f = s.file("meters.csv", &format!("{METERS_HEADER}{lines}"));
    s.ok(&["meters", "import", f.to_str().unwrap()]);
}

fn q(text: &str) -> Quantity {
    Quantity::parse(text).unwrap()
}

const PROBE_CONFIG: &str = r#"
[[meterbus.meters]]
meter_id = "E-100"
iec_serial = "12345678"
register = "1.8.0"
unit = "kWh"
"#;

#[test]
fn probe_session_reads_the_meter_into_the_store() {
    let s = Scratch::new();
    import_meters(&s, &[("E-100", "electric")]);
    let config = s.file("meterd.toml", PROBE_CONFIG);
    {
        let sim = Sim::start(
            &s,
            "probe0",
            &["--kind", "iec62056-21", "--register-kwh", "0001234.567"],
        );
        let (ok, out, err) = meterd(&s, &config, &["poll", "probe", "--port", sim.port()]);
        assert!(ok, "{err}");
        assert!(err.contains("read at 9600 baud"), "{err}");
        let frame: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert_eq!(frame["protocol"], "iec62056-21");
        assert_eq!(frame["meter_id"], "12345678");
    }
    {
        let sim = Sim::start(
            &s,
            "probe1",
            &["--kind", "iec62056-21", "--register-kwh", "0001240.000"],
        );
        let (ok, _, err) = meterd(&s, &config, &["poll", "probe", "--port", sim.port()]);
        assert!(ok, "{err}");
    }
    let (reads, quarantine) = store_contents(&s);
    assert!(quarantine.is_empty(), "{quarantine:?}");
    assert_eq!(reads.len(), 2);
    assert!(
        reads
            .iter()
            .all(|r| r.read.meter_id == "E-100" && r.read.read_type == meterd::model::ReadType::Probe)
    );
    assert_eq!(reads[0].read.value, q("1234.567"));
    assert_eq!(reads[1].read.value, q("1240"));
    assert_eq!(
        reads[1].consumption,
        Some(q("5.433")),
        "VEE computed the consumption from the previous probe read"
    );
    assert!(reads[0].status == ReadStatus::Validated, "{:?}", reads[0].flags);
}

#[test]
fn probe_falls_back_to_300_baud_for_a_meter_that_ignores_its_proposal() {
    let s = Scratch::new();
    let config = s.file("meterd.toml", PROBE_CONFIG);
    let sim = Sim::start(&s, "probe", &["--kind", "iec62056-21", "--ignore-baud"]);
    let (ok, _, err) = meterd(&s, &config, &["poll", "probe", "--port", sim.port()]);
    assert!(ok, "{err}");
    assert!(
        err.contains("read at 300 baud") && err.contains("ignored the rate it proposed"),
        "{err}"
    );
    drop(sim);
    let (reads, _) = store_contents(&s);
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].read.value, q("1234.567"));
    assert!(
        reads[0].has_flag(meterd::model::Rule::UnknownMeter),
        "E-100 is not in the store: {:?}",
        reads[0].flags
    );
}

#[test]
fn probe_with_a_profile_that_skips_the_switch_reads_the_ignoring_meter_directly() {
    let s = Scratch::new();
    let config = s.file(
        "meterd.toml",
        &format!("{PROBE_CONFIG}\n[meterbus.profiles.stubborn]\nbaud_switch = false\n"),
    );
    let sim = Sim::start(&s, "probe", &["--kind", "iec62056-21", "--ignore-baud"]);
    let (ok, _, err) = meterd(
        &s,
        &config,
        &["poll", "probe", "--port", sim.port(), "--profile", "stubborn"],
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("read at 300 baud") && !err.contains("ignored the rate"),
        "{err}"
    );
    let (ok, _, err) = meterd(
        &s,
        &config,
        &["poll", "probe", "--port", sim.port(), "--profile", "nope"],
    );
    assert!(!ok && err.contains("stubborn"), "{err}");
}

#[test]
fn probe_naks_a_bad_bcc_once_and_reads_the_repeat_with_software_parity() {
    let s = Scratch::new();
    let config = s.file("meterd.toml", PROBE_CONFIG);
    let sim = Sim::start(
        &s,
        "probe",
        &["--kind", "iec62056-21", "--bad-bcc", "1", "--software-parity"],
    );
    let (ok, _, err) = meterd(
        &s,
        &config,
        &["poll", "probe", "--port", sim.port(), "--software-parity"],
    );
    assert!(ok, "{err}");
    assert!(err.contains("1 block(s) repeated after a bad BCC"), "{err}");
    drop(sim);
    let (reads, quarantine) = store_contents(&s);
    assert_eq!(reads.len(), 1);
    assert!(quarantine.is_empty());
}

#[test]
fn probe_session_that_never_gets_a_good_block_is_quarantined() {
    let s = Scratch::new();
    let config = s.file("meterd.toml", PROBE_CONFIG);
    let sim = Sim::start(&s, "probe", &["--kind", "iec62056-21", "--bad-bcc", "50"]);
    let (ok, _, err) = meterd(&s, &config, &["poll", "probe", "--port", sim.port()]);
    assert!(!ok, "a meter that never sends a good block is not read");
    assert!(err.contains("BCC"), "{err}");
    drop(sim);
    let (reads, quarantine) = store_contents(&s);
    assert!(reads.is_empty());
    assert_eq!(quarantine.len(), 1);
    assert!(quarantine[0].reason.contains("BCC"), "{:?}", quarantine[0]);
    assert!(!quarantine[0].payload.is_empty(), "the session's bytes are kept");
}

const MBUS_CONFIG: &str = r#"
[[meterbus.meters]]
meter_id = "W-5"
mbus_address = 5
register = "volume"

[[meterbus.meters]]
meter_id = "W-19"
mbus_id = "19999999"
register = "volume"
storage = 1
"#;

#[test]
fn mbus_polls_by_primary_and_secondary_address_across_telegrams_and_retries() {
    let s = Scratch::new();
    import_meters(&s, &[("W-5", "water"), ("W-19", "water")]);
    let config = s.file("meterd.toml", MBUS_CONFIG);
    let sim = Sim::start(
        &s,
        "mbus",
        &[
            "--kind",
            "mbus",
            "--meter",
            "5:12345678:1234567",
            "--meter",
            "0:19999999:5000",
            "--telegrams",
            "2",
            "--bad-checksum",
            "1",
        ],
    );
    let (ok, out, err) = meterd(
        &s,
        &config,
        &[
            "poll",
            "mbus",
            "--port",
            sim.port(),
            "--address",
            "5",
            "--secondary",
            "19999999",
            "--timeout-ms",
            "200",
        ],
    );
    assert!(ok, "{err}");
    let frames: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(frames.len(), 2, "{out}");
    assert_eq!(frames[0]["meter_id"], "12345678");
    assert_eq!(
        frames[0]["fields"]["telegrams"], 2,
        "two telegrams (FCB toggled) merged into one readout"
    );
    assert_eq!(frames[1]["meter_id"], "19999999");
    drop(sim);
    let (reads, quarantine) = store_contents(&s);
    assert!(
        quarantine.is_empty(),
        "the corrupt answers were retried: {quarantine:?}"
    );
    let by_meter = |id: &str| {
        reads
            .iter()
            .find(|r| r.read.meter_id == id)
            .unwrap_or_else(|| panic!("no read of {id}"))
    };
    assert_eq!(by_meter("W-5").read.value, q("1234.567"));
    // Storage 1 is in the second telegram: 5000 l − 1000 l.
    assert_eq!(by_meter("W-19").read.value, q("4"));
    assert_eq!(by_meter("W-5").status, ReadStatus::Validated);
}

#[test]
fn mbus_scan_finds_every_slave_on_the_segment_and_reads_it() {
    let s = Scratch::new();
    let config = s.file("meterd.toml", "");
    let sim = Sim::start(
        &s,
        "mbus",
        &[
            "--kind",
            "mbus",
            "--meter",
            "0:12345678:1000",
            "--meter",
            "0:19999999:2000",
            "--meter",
            "0:22000001:3000",
        ],
    );
    let (ok, _, err) = meterd(
        &s,
        &config,
        &["poll", "mbus", "--port", sim.port(), "--scan", "--timeout-ms", "100"],
    );
    assert!(ok, "{err}");
    assert!(err.contains("scan: 3 slave(s) found"), "{err}");
    drop(sim);
    let (reads, _) = store_contents(&s);
    let mut got: Vec<(String, String)> = reads
        .iter()
        .map(|r| (r.read.meter_id.clone(), r.read.value.to_string()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("12345678".into(), "1".into()),
            ("19999999".into(), "2".into()),
            ("22000001".into(), "3".into())
        ]
    );
}

#[test]
fn mbus_slave_that_does_not_answer_is_an_error() {
    let s = Scratch::new();
    let config = s.file("meterd.toml", "");
    let sim = Sim::start(&s, "mbus", &["--kind", "mbus"]);
    let (ok, _, err) = meterd(
        &s,
        &config,
        &[
            "poll",
            "mbus",
            "--port",
            sim.port(),
            "--address",
            "9",
            "--timeout-ms",
            "100",
            "--retries",
            "0",
        ],
    );
    assert!(!ok);
    assert!(err.contains("address 9: no answer to SND_NKE"), "{err}");
}

#[test]
fn p1_listener_stores_telegrams_and_quarantines_the_noise_between_them() {
    let s = Scratch::new();
    let config = s.file(
        "meterd.toml",
        "[[meterbus.meters]]\nmeter_id = \"E-200\"\ndsmr_equipment = \"E0012345678901234\"\nregister = \"1-0:1.8.1\"\n",
    );
    let sim = Sim::start(&s, "p1", &["--kind", "dsmr", "--garbage", "--every-ms", "150"]);
    let (ok, out, err) = meterd(&s, &config, &["listen", "p1", "--port", sim.port(), "--count", "3"]);
    assert!(ok, "{err}");
    assert!(out.lines().count() >= 3, "{out}");
    drop(sim);
    let (reads, quarantine) = store_contents(&s);
    assert!(reads.len() >= 3, "{reads:?}");
    assert!(reads.iter().all(|r| r.read.meter_id == "E-200"));
    // Each telegram's register is 10 Wh more than the one before.
    for pair in reads.windows(2) {
        assert!(
            pair[1].read.value > pair[0].read.value,
            "{:?}",
            (pair[0].read.value, pair[1].read.value)
        );
    }
    assert!(
        quarantine.iter().any(|q| q.reason.contains("cut short")),
        "{quarantine:?}"
    );
    assert!(
        quarantine
            .iter()
            .any(|q| q.payload.windows(10).any(|w| w == b"line noise")),
        "{quarantine:?}"
    );
}

#[test]
fn p1_listener_reads_dsmr_2_2_at_7e1_without_crc() {
    let s = Scratch::new();
    let config = s.file("meterd.toml", "");
    let sim = Sim::start(&s, "p1", &["--kind", "dsmr", "--dsmr", "2.2", "--every-ms", "100"]);
    let (ok, out, err) = meterd(
        &s,
        &config,
        &["listen", "p1", "--port", sim.port(), "--dsmr", "2.2", "--count", "2"],
    );
    assert!(ok, "{err}");
    let first: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(first["meter_id"], "E0012345678901234");
    assert!(first["fields"].get("crc").is_none_or(Value::is_null), "{first}");
}

/// A DSMR meter with a gas meter on its M-Bus: two telegrams whose gas values were captured an
/// hour apart (the simulator moves the capture time an hour per telegram) give one hourly
/// interval of channel `gas_hourly`, the difference, on the local day's 11th hour.
#[test]
fn p1_hourly_gas_values_become_an_hourly_interval() {
    let s = Scratch::new();
    let config = s.file(
        "meterd.toml",
        "[intervals]\ntime_zone = \"Europe/Amsterdam\"\n\n\
         [[meterbus.meters]]\nmeter_id = \"GASMETER\"\ndsmr_equipment = \"E0012345678901234\"\nregister = \"0-1:24.2.1\"\nunit = \"m3\"\n",
    );
    let sim = Sim::start(
        &s,
        "p1",
        &[
            "--kind",
            "dsmr",
            "--every-ms",
            "150",
            "--count",
            "2",
            "--gas-litres",
            "1234567",
            "--gas-step-litres",
            "250",
            // 10:00:05 CET, then 11:00:05 CET.
            "--gas-capture",
            "2024-01-15T09:00:05Z",
        ],
    );
    let (ok, _, err) = meterd(&s, &config, &["listen", "p1", "--port", sim.port(), "--count", "2"]);
    assert!(ok, "{err}");
    drop(sim);
    let (reads, _) = store_contents(&s);
    let gas: Vec<_> = reads.iter().filter(|r| r.read.meter_id == "GASMETER").collect();
    assert_eq!(gas.len(), 2, "{reads:?}");
    assert_eq!(gas[0].read.read_at.to_string(), "2024-01-15T09:00:05Z");
    let (ok, out, err) = meterd(&s, &config, &["intervals", "list", "--meter", "GASMETER", "--json"]);
    assert!(ok, "{err}");
    let days: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(days.len(), 1, "{out}");
    let day = &days[0];
    assert_eq!(
        (&day["channel"], &day["date"]),
        (&Value::from("gas_hourly"), &Value::from("2024-01-15"))
    );
    assert_eq!(day["values"].as_array().unwrap().len(), 24);
    let actual: Vec<usize> = (0..24).filter(|&i| day["quality"][i] == "A").collect();
    assert_eq!(actual, vec![10], "{day}");
    assert_eq!(day["values"][10], 0.25, "{day}");
}

/// The daemon's component polls a configured M-Bus segment on its schedule and commits the
/// reads; shutting down stops it promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_polls_a_configured_segment_on_schedule() {
    let s = Scratch::new();
    let sim = Sim::start(
        &s,
        "mbus",
        &["--kind", "mbus", "--meter", "5:12345678:1000", "--step-litres", "10"],
    );
    let text = format!(
        "[[meterbus.mbus]]\nport = \"{}\"\nprimary = [5]\ninterval_secs = 1\n[meterbus.mbus.timing]\nresponse_timeout_ms = 200\n\n{MBUS_CONFIG}",
        sim.port()
    );
    let config = Config::parse(&text, "meterd.toml").unwrap();
    let store = Arc::new(RedbStore::open_dir(&s.data_dir()).unwrap());
    let shared = meterd::daemon::Shared {
        config: Arc::new(config),
        data_dir: s.data_dir(),
        store: store.clone(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(meterd::daemon::run_with(shared, async move {
        let _ = stopped.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(30);
    let reads = loop {
        let st = store.clone();
        let reads = tokio::task::spawn_blocking(move || st.begin_read().unwrap().all_reads().unwrap())
            .await
            .unwrap();
        if reads.len() >= 2 || Instant::now() > deadline {
            break reads;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), daemon)
        .await
        .expect("daemon stops promptly")
        .unwrap()
        .unwrap();
    assert!(reads.len() >= 2, "two polls one second apart: {reads:?}");
    assert!(reads.iter().all(|r| r.read.meter_id == "W-5"));
    // Every frame is accounted for in /metrics (this is the only test of the binary that
    // runs serial ingest in this process): per outcome, what the store holds.
    let frames = |outcome: &str| {
        meterd::metrics::global()
            .value(meterd::metrics::FRAMES, &[("source", "serial"), ("outcome", outcome)])
            .unwrap_or(0.0) as usize
    };
    let (stored, quarantined) = {
        let txn = store.begin_read().unwrap();
        (txn.all_reads().unwrap(), txn.quarantined().unwrap())
    };
    let validated = stored.iter().filter(|r| r.status == ReadStatus::Validated).count();
    assert_eq!(frames("read"), validated, "{stored:?}");
    assert_eq!(frames("held"), stored.len() - validated, "{stored:?}");
    assert_eq!(frames("quarantined"), quarantined.len(), "{quarantined:?}");
    assert_eq!(frames("duplicate") + frames("skipped"), 0);
    assert_eq!(frames("read") + frames("held"), stored.len());
    assert_eq!(reads[0].read.value, q("1"));
    assert_eq!(
        reads[1].read.value,
        q("1.01"),
        "the simulated meter counts 10 l per readout"
    );
}
