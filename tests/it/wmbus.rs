//! Wireless M-Bus through the real `meterd run` and a real mosquitto: repeated copies of a
//! telegram heard through two gateways, compact frames (their formats learned durably, held
//! while unknown).

use std::path::PathBuf;
use std::time::Duration;

use meterd_protocols::wmbus::dll::CRC;

use crate::common::Scratch;
use crate::common::daemon::Daemon;
use crate::common::mosquitto::{self, Mosquitto};
use crate::common::mqtt::{publish_all, subscribed};

fn config(s: &Scratch, broker: &Mosquitto, client_id: &str) -> PathBuf {
    s.file(
        "meterd.toml",
        &format!(
            "[mqtt]\nbroker = \"{}\"\nclient_id = \"{client_id}\"\ntopics = [\"meters/+/raw\"]\n\
             batch_latency_ms = 10\nkeep_alive_secs = 5\n",
            broker.url()
        ),
    )
}

/// (meter, value) of every stored read, sorted.
fn reads(s: &Scratch) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = s
        .json(&["reads", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["meter_id"].as_str().unwrap().to_owned(), r["value"].to_string()))
        .collect();
    v.sort();
    v
}

/// A CRC-less telegram as sent on air in frame format A (EN 13757-4: CRC after the first 10
/// bytes and after every 16 bytes, high byte first).
fn format_a(t: &[u8]) -> Vec<u8> {
    let mut out = t[..10].to_vec();
    out.extend_from_slice(&CRC.checksum(&t[..10]).to_be_bytes());
    for block in t[10..].chunks(16) {
        out.extend_from_slice(block);
        out.extend_from_slice(&CRC.checksum(block).to_be_bytes());
    }
    out
}

/// R1 of mbus.md §3.2 (Sensus iPERL 33225544, 123.529 m³), access number `acc`.
fn r1(acc: u8) -> Vec<u8> {
    let mut t = hex::decode("1844AE4C4455223368077A55000000041389E20100023B0000").unwrap();
    t[11] = acc;
    t
}

/// Issue 16 (wmbusmeters #57): a telegram heard directly by gw1 and forwarded by a repeater
/// to gw2 (C field relayed bit, hop count and repeated-access bits, CRCs kept) is stored once;
/// the meter's next transmission, with the same register, is stored too.
#[test]
fn a_repeated_telegram_through_two_gateways_is_stored_once() {
    let broker = mosquitto::start(false);
    let s = Scratch::new();
    let cfg = config(&s, &broker, "meterd-repeat");
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(20), subscribed);
    let mut repeated = r1(0x55);
    repeated[1] |= 0x80;
    repeated[13] |= 0x03;
    publish_all(
        broker.port,
        &[
            ("meters/gw1/raw".into(), hex::encode(r1(0x55)).into_bytes()),
            ("meters/gw2/raw".into(), format_a(&repeated)),
            ("meters/gw1/raw".into(), hex::encode(r1(0x56)).into_bytes()),
        ],
    );
    d.wait_until("three messages committed", Duration::from_secs(20), || {
        d.sum("mqtt: committed", "messages") >= 3
    });
    assert_eq!(
        reads(&s),
        [
            ("wmbus:33225544".to_owned(), "123.529".to_owned()),
            ("wmbus:33225544".to_owned(), "123.529".to_owned()),
        ]
    );
    assert_eq!(d.sum("mqtt: committed", "duplicates"), 1, "{}", d.log());
    d.stop();
}

/// R1's records in compact form (CI 0x7B, short TPL header, mbus.md §2.4/§2.10): format
/// signature and full-frame CRC (EN 13757-3 Annex G) computed from R1's layout, data only.
fn r1_compact(acc: u8) -> Vec<u8> {
    let full = r1(acc);
    let (_, sig, crc, data) = meterd_protocols::wmbus::compact::compress(&full[15..]).unwrap();
    let mut t = full[..10].to_vec();
    t.extend_from_slice(&[0x7B, acc, 0x00, 0x00, 0x00]);
    t.extend_from_slice(&sig.to_le_bytes());
    t.extend_from_slice(&crc.to_le_bytes());
    t.extend_from_slice(&data);
    t[0] = (t.len() - 1) as u8;
    t
}

fn publish(broker: &Mosquitto, gateway: &str, telegram: &[u8]) {
    publish_all(
        broker.port,
        &[(
            format!("meters/{gateway}/raw"),
            hex::encode_upper(telegram).into_bytes(),
        )],
    );
}

/// Full frame, then a compact frame of the same meter: decoded with the layout learned. The
/// daemon restarted (the real `meterd run` stopped and started): the next compact frame still
/// decodes, from the layout kept in the store.
#[test]
fn compact_frames_decode_after_a_full_frame_and_after_a_restart() {
    let broker = mosquitto::start(false);
    let s = Scratch::new();
    let cfg = config(&s, &broker, "meterd-compact");
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(20), subscribed);
    publish(&broker, "gw1", &r1(0x10));
    d.wait_until("the full frame", Duration::from_secs(20), || reads(&s).len() == 1);
    publish(&broker, "gw1", &r1_compact(0x11));
    d.wait_until("the compact frame", Duration::from_secs(20), || reads(&s).len() == 2);
    assert_eq!(d.sum("mqtt: committed", "held"), 0, "{}", d.log());
    d.stop();

    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(20), subscribed);
    publish(&broker, "gw1", &r1_compact(0x12));
    d.wait_until("the compact frame after the restart", Duration::from_secs(20), || {
        reads(&s).len() == 3
    });
    assert_eq!(d.sum("mqtt: committed", "held"), 0, "{}", d.log());
    assert!(reads(&s).iter().all(|(m, v)| m == "wmbus:33225544" && v == "123.529"));
    assert_eq!(
        s.json(&["quarantine", "list", "--json"])["entries"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    d.stop();
}

/// A compact frame before any full frame of its meter type is held (not quarantined), heard by
/// two gateways; the holding area survives a restart of the daemon; when the full frame comes
/// the held frame is decoded in the same transaction and stored once.
#[test]
fn a_compact_frame_before_its_full_frame_is_held_then_stored_once() {
    let broker = mosquitto::start(false);
    let s = Scratch::new();
    let cfg = config(&s, &broker, "meterd-held");
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(20), subscribed);
    publish(&broker, "gw1", &r1_compact(0x20));
    publish(&broker, "gw2", &r1_compact(0x20));
    d.wait_until("both copies held", Duration::from_secs(20), || {
        d.sum("mqtt: committed", "held") == 2
    });
    assert!(reads(&s).is_empty());
    assert_eq!(
        s.json(&["quarantine", "list", "--json"])["entries"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let held = s.json(&["gateways", "held", "--json"]);
    let rows = held["held"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{held}");
    assert_eq!(rows[0]["meter"], "33225544", "{held}");
    assert_eq!(rows[0]["manufacturer"], "SEN", "{held}");
    d.stop();

    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(20), subscribed);
    publish(&broker, "gw1", &r1(0x21));
    d.wait_until("the full frame and the held one", Duration::from_secs(20), || {
        reads(&s).len() == 2
    });
    assert_eq!(d.sum("mqtt: committed", "released"), 2, "{}", d.log());
    assert_eq!(
        s.json(&["gateways", "held", "--json"])["held"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        s.json(&["quarantine", "list", "--json"])["entries"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    d.stop();
}
