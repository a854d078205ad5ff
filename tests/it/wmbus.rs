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
