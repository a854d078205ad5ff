//! rtl_433 JSON input against a real mosquitto and the real `meterd run`, and `meterd decode` on
//! rtl_433 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::Scratch;
use crate::common::daemon::Daemon;
use crate::common::mosquitto::{self, Mosquitto};
use crate::common::mqtt::{publish_all, subscribed};
use meterd::store::{RedbStore, Store};

fn config(s: &Scratch, broker: &Mosquitto) -> PathBuf {
    s.file(
        "meterd.toml",
        &format!(
            "[mqtt]\nbroker = \"{}\"\nclient_id = \"meterd-rtl433\"\n\
             topics = [\"meters/+/rtlamr\", \"meters/+/rtl433\", \"meters/+/raw\"]\nbatch_latency_ms = 10\nkeep_alive_secs = 5\n",
            broker.url()
        ),
    )
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-fixtures")
}

/// The lines of a fixture file (comments and blank lines left out, as `meterd decode` does).
fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// rtl_433's capture of SCM vector S1 (rtl_433_tests `tests/ert/scm/01/g001`) with the zoned
/// time `-M time:iso:tz:utc` gives, and rtlamr's line of the same transmission heard 0.2 s later.
const RTL433_S1: &str = r#"{"time":"2026-01-05T14:03:07+0000","model":"ERT-SCM","id":54585868,"physical_tamper":3,"ert_type":12,"encoder_tamper":0,"consumption_data":562456,"mic":"CRC"}"#;
const RTLAMR_S1: &str = r#"{"Time":"2026-01-05T14:03:07.2Z","Offset":0,"Length":0,"Type":"SCM","Message":{"ID":54585868,"Type":12,"TamperPhy":3,"TamperEnc":0,"Consumption":562456,"ChecksumVal":4122}}"#;

/// One gateway runs rtlamr, another rtl_433, both hear the same SCM: one read. Every model's
/// rtl_433 line (the captures and current-output lines of firmware-fixtures/ert/rtl433, and a
/// wM-Bus telegram, also heard raw by a third gateway) becomes one read of its meter key; bad
/// lines are quarantined naming the field.
#[test]
fn rtl_433_lines_through_mqtt() {
    let broker = mosquitto::start(false);
    let s = Scratch::new();
    let cfg = config(&s, &broker);
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(20), subscribed);

    let mut msgs: Vec<(String, Vec<u8>)> = vec![
        ("meters/gw-amr/rtlamr".into(), RTLAMR_S1.as_bytes().to_vec()),
        ("meters/gw-433/rtl433".into(), RTL433_S1.as_bytes().to_vec()),
    ];
    let root = fixtures();
    let mut good = lines(&root.join("ert/rtl433/captures.in"));
    good.extend(lines(&root.join("ert/rtl433/current_output.in")));
    good.extend(lines(&root.join("wmbus/sensus-iperl/r1-t1-rtl433.in")));
    assert_eq!(good.len(), 10);
    for l in &good {
        msgs.push(("meters/gw-433/rtl433".into(), l.clone().into_bytes()));
    }
    // The Sensus telegram of r1-t1-rtl433 as another gateway delivers it: raw, with its format A
    // CRCs (EN 13757-4: after the first 10 bytes and after each 16).
    let telegram = hex::decode("1844AE4C4455223368077A55000000041389E20100023B0000").unwrap();
    let crc = |b: &[u8]| meterd_protocols::wmbus::dll::CRC.checksum(b).to_be_bytes();
    let mut format_a = telegram[..10].to_vec();
    format_a.extend(crc(&telegram[..10]));
    format_a.extend(&telegram[10..]);
    format_a.extend(crc(&telegram[10..]));
    msgs.push(("meters/gw-raw/raw".into(), hex::encode_upper(&format_a).into_bytes()));
    let out_of_range = RTL433_S1.replace("562456", "16777216");
    let missing = RTL433_S1.replace(r#","consumption_data":562456"#, "");
    let wrong_type = RTL433_S1.replace(r#""ert_type":12"#, r#""ert_type":"twelve""#);
    msgs.push(("meters/gw-bad1/rtl433".into(), out_of_range.into_bytes()));
    msgs.push(("meters/gw-bad2/rtl433".into(), missing.into_bytes()));
    msgs.push(("meters/gw-bad3/rtl433".into(), wrong_type.into_bytes()));
    let total = msgs.len() as u64;
    publish_all(broker.port, &msgs);
    d.wait_until("every message committed", Duration::from_secs(30), || {
        d.sum("mqtt: committed", "messages") >= total
    });
    d.stop();

    let store = RedbStore::open_dir(&s.data_dir()).unwrap();
    let txn = store.begin_read().unwrap();
    let reads = txn.all_reads().unwrap();
    let mut by_meter: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &reads {
        by_meter
            .entry(r.read.meter_id.clone())
            .or_default()
            .push(r.read.raw.clone());
    }
    // S1 three times (rtlamr, rtl_433 live, rtl_433 capture): one transmission, one read.
    assert_eq!(by_meter["scm:54585868"], ["562456"], "{by_meter:#?}");
    let mut scm_plus = by_meter["scm+:68211547"].clone();
    scm_plus.sort();
    assert_eq!(scm_plus, ["6653", "6883"], "P1 and P2");
    assert_eq!(
        by_meter["idm:11278109"],
        ["339972", "339972"],
        "I1 and I2 (intervals 246, 245)"
    );
    assert_eq!(by_meter["netidm:11278109"].len(), 1);
    assert_eq!(by_meter["r900:1545911110"], ["404986"]);
    assert_eq!(by_meter["r900bcd:1485200001"], ["16000"]);
    // rtl_433's CRC-less telegram and the raw format A frame: one transmission.
    assert_eq!(by_meter["wmbus:33225544"].len(), 1, "{by_meter:#?}");
    let meters: BTreeSet<&str> = by_meter.keys().map(String::as_str).collect();
    assert_eq!(
        meters,
        BTreeSet::from([
            "idm:11278109",
            "netidm:11278109",
            "r900:1545911110",
            "r900bcd:1485200001",
            "scm+:68211547",
            "scm:54585868",
            "wmbus:33225544"
        ])
    );
    // The IDM intervals of the zoned line (I2) are placed from rtl_433's time.
    assert!(txn.count_interval_reads().unwrap() >= 47);

    let quarantine = txn.quarantined().unwrap();
    assert_eq!(quarantine.len(), 3, "{quarantine:#?}");
    for (gw, want) in [
        (
            "gw-bad1",
            r#"rtl_433 ERT-SCM line: field "consumption_data" out of range 0..=16777215 (got 16777216)"#,
        ),
        ("gw-bad2", r#"rtl_433 ERT-SCM line: field "consumption_data" missing"#),
        (
            "gw-bad3",
            r#"rtl_433 ERT-SCM line: field "ert_type" is "twelve", expected an integer"#,
        ),
    ] {
        let (_, q) = quarantine
            .iter()
            .find(|(_, q)| q.source.contains(&format!("meters/{gw}/rtl433")))
            .unwrap_or_else(|| panic!("{gw} not quarantined: {quarantine:#?}"));
        assert!(q.reason.contains(want), "{gw}: {}", q.reason);
        assert!(!q.payload.is_empty());
    }
    drop(txn);
    drop(store);

    // Each gateway counted its messages.
    let list = s.json(&["--config", cfg.to_str().unwrap(), "gateways", "list", "--json"]);
    let by: BTreeMap<String, serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["gateway"].as_str().unwrap().to_owned(), g.clone()))
        .collect();
    assert_eq!(by["gw-amr"]["messages"], 1);
    assert_eq!(by["gw-433"]["messages"], 11);
    assert_eq!(by["gw-raw"]["messages"], 1);
}

/// `meterd decode` prints for rtl_433's lines exactly what it prints for the rtlamr lines of the
/// same packets (S1, P1, I1, R1, and I1 again as rtl_433's NetIDM decoder prints it; no
/// reception time in either), and refuses a bad line naming the field.
#[test]
fn decode_rtl_433_lines_like_rtlamr_lines() {
    let s = Scratch::new();
    let rtl433 = fixtures().join("ert/rtl433/captures.in");
    let rtlamr = s.file(
        "rtlamr.jsonl",
        concat!(
            r#"{"Type":"SCM","Message":{"ID":54585868,"Type":12,"TamperPhy":3,"TamperEnc":0,"Consumption":562456,"ChecksumVal":4122}}"#,
            "\n",
            r#"{"Type":"SCM+","Message":{"FrameSync":5795,"ProtocolID":30,"EndpointType":171,"EndpointID":68211547,"Consumption":6883,"Tamper":18688,"PacketCRC":14782}}"#,
            "\n",
            r#"{"Type":"IDM","Message":{"Preamble":1431639715,"PacketTypeID":28,"PacketLength":92,"HammingCode":198,"ApplicationVersion":4,"ERTType":7,"ERTSerialNumber":11278109,"ConsumptionIntervalCount":246,"ModuleProgrammingState":188,"TamperCounters":"AgEA7wkA","AsynchronousCounters":0,"PowerOutageFlags":"AAAAAAAA","LastConsumptionCount":339972,"DifferentialConsumptionIntervals":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,1,0,0],"TransmitTimeOffset":476,"SerialNumberCRC":60090,"PacketCRC":31799}}"#,
            "\n",
            r#"{"Type":"R900","Message":{"ID":1545911110,"Unkn1":163,"NoUse":33,"BackFlow":0,"Consumption":404986,"Unkn3":0,"Leak":0,"LeakNow":0}}"#,
            "\n",
            r#"{"Type":"IDM","Message":{"Preamble":1431639715,"PacketTypeID":28,"PacketLength":92,"HammingCode":198,"ApplicationVersion":4,"ERTType":7,"ERTSerialNumber":11278109,"ConsumptionIntervalCount":246,"ModuleProgrammingState":188,"TamperCounters":"AgEA7wkA","AsynchronousCounters":0,"PowerOutageFlags":"AAAAAAAA","LastConsumptionCount":339972,"DifferentialConsumptionIntervals":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,1,0,0],"TransmitTimeOffset":476,"SerialNumberCRC":60090,"PacketCRC":31799}}"#,
            "\n",
        ),
    );
    let from_rtl433 = s.ok(&["decode", rtl433.to_str().unwrap()]);
    let from_rtlamr = s.ok(&["decode", rtlamr.to_str().unwrap()]);
    assert_eq!(from_rtl433.lines().count(), 5);
    assert_eq!(from_rtl433, from_rtlamr);

    let bad = s.file(
        "bad.jsonl",
        &format!("{RTL433_S1}\n{}\n", RTL433_S1.replace("562456", "16777216")),
    );
    let err = s.fails(&["decode", bad.to_str().unwrap()]);
    assert!(err.contains("line 2"), "{err}");
    assert!(
        err.contains(r#"field "consumption_data" out of range 0..=16777215 (got 16777216)"#),
        "{err}"
    );
}
