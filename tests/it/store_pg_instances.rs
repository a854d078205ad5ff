//! Several `meterd run` on one PostgreSQL database, against a real mosquitto: the gateway load
//! split by the shared subscription, one instance SIGKILLed mid-stream and restarted, and
//! nothing lost or stored twice; then the same traffic through a single instance gives the
//! same reads and the same VEE flags.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use crate::common::daemon::Daemon;
use crate::common::mosquitto::{self, Mosquitto};
use crate::common::mqtt::{subscribed, transmissions};
use crate::common::{Scratch, pg};
use meterd::store::Store;
use meterd::store::postgres::{PgStore, SslMode, StoreConfig};

const MESSAGES: u64 = 20_000;

fn config(s: &Scratch, broker: &Mosquitto, client_id: &str, url: &str) -> PathBuf {
    s.file(
        "meterd.toml",
        &format!(
            "[mqtt]\nbroker = \"{}\"\nclient_id = \"{client_id}\"\ntopics = [\"meters/+/rtlamr\", \"meters/+/raw\"]\n\
             batch_latency_ms = 10\nkeep_alive_secs = 5\nbatch_size = 500\nshared_group = \"meterd\"\n\n\
             [store]\nurl = \"{url}\"\nsslmode = \"disable\"\n",
            broker.url()
        ),
    )
}

fn store(url: &str) -> PgStore {
    PgStore::open(&StoreConfig {
        url: Some(url.to_owned()),
        sslmode: SslMode::Disable,
        ..StoreConfig::default()
    })
    .unwrap()
}

/// Publishes the simulated traffic (seed 7: the same messages every run); returns the
/// manifest's transmissions as (endpoint, register).
fn simulate(s: &Scratch, broker: &Mosquitto, client: &str) -> (std::process::Child, PathBuf) {
    let manifest = s.dir.path().join("manifest.ndjson");
    let child = s
        .cmd(&[
            "simulate",
            "gateway",
            "--broker",
            &broker.url(),
            "--meters",
            "300",
            "--rate",
            "2500",
            "--gateways",
            "4",
            "--count",
            &MESSAGES.to_string(),
            "--seed",
            "7",
            "--client-id",
            client,
            "--manifest",
            manifest.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    (child, manifest)
}

/// (meter, register) → the VEE flags' rules, for every stored read; panics on a read stored
/// twice.
fn stored(url: &str) -> BTreeMap<(String, String), Vec<String>> {
    let s = store(url);
    let txn = s.begin_read().unwrap();
    let mut out = BTreeMap::new();
    for r in txn.all_reads().unwrap() {
        let mut rules: Vec<String> = r.flags.iter().map(|f| f.rule.as_str().to_owned()).collect();
        rules.sort();
        let key = (r.read.meter_id.clone(), r.read.raw.clone());
        assert!(out.insert(key.clone(), rules).is_none(), "{key:?} stored twice");
    }
    out
}

#[test]
fn two_instances_one_killed_mid_stream_store_every_transmission_once() {
    let url = pg::database();
    let broker = mosquitto::start(true);
    let (a, b) = (Scratch::new(), Scratch::new());
    let (cfg_a, cfg_b) = (
        config(&a, &broker, "meterd-a", &url),
        config(&b, &broker, "meterd-b", &url),
    );
    let da = Daemon::start(&a, &cfg_a);
    let db = Daemon::start(&b, &cfg_b);
    da.wait_for("subscribed", Duration::from_secs(30), subscribed);
    db.wait_for("subscribed", Duration::from_secs(30), subscribed);

    let (sim, manifest) = simulate(&a, &broker, "sim-two");
    // Instance a is killed while messages stream in, after both have committed some.
    da.wait_until("a committed some", Duration::from_secs(60), || {
        da.sum("mqtt: committed", "messages") >= 2_000
    });
    let b_before = db.sum("mqtt: committed", "messages");
    da.kill();
    std::thread::sleep(Duration::from_millis(500));
    let da = Daemon::start(&a, &cfg_a);
    da.wait_for("subscribed", Duration::from_secs(30), subscribed);

    let out = sim.wait_with_output().unwrap();
    assert!(out.status.success(), "simulator failed");
    let want = transmissions(&manifest);
    assert!(want.len() > 1_000, "{} transmissions", want.len());
    da.wait_until("every transmission stored", Duration::from_secs(180), || {
        let s = store(&url);
        let n = s.begin_read().unwrap().count_reads().unwrap();
        n >= want.len() as u64
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        db.sum("mqtt: committed", "messages") > b_before,
        "instance b kept taking its share after a was killed"
    );
    da.stop();
    db.stop();

    let two = stored(&url);
    let got: HashSet<(String, String)> = two.keys().cloned().collect();
    let missing: Vec<_> = want.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&want).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );

    // The same traffic through one instance: the same reads, the same VEE flags.
    let single = pg::database();
    let c = Scratch::new();
    let broker2 = mosquitto::start(false);
    let cfg_c = config(&c, &broker2, "meterd-c", &single);
    let dc = Daemon::start(&c, &cfg_c);
    dc.wait_for("subscribed", Duration::from_secs(30), subscribed);
    let (sim, _) = simulate(&c, &broker2, "sim-one");
    assert!(sim.wait_with_output().unwrap().status.success());
    dc.wait_until("every transmission stored", Duration::from_secs(180), || {
        store(&single).begin_read().unwrap().count_reads().unwrap() >= want.len() as u64
    });
    dc.stop();
    let one = stored(&single);
    // Every rule that looks at a meter's stored history (unknown meter, duplicates, usage
    // checks) gives each read the same flags. The tamper flag marks the transmission that
    // first shows new counters *as the reads are committed*: when the shared subscription hands
    // two transmissions of one change to two instances, the later may commit first and carry
    // it, and when the first two transmissions heard of an endpoint commit in reverse order
    // the change is not seen at all (nothing stored says what came before). So: tamper flags
    // are not compared read for read; a meter two instances flag is one a single instance
    // flags (no invented change).
    let without_tamper =
        |flags: &Vec<String>| -> Vec<String> { flags.iter().filter(|f| f.as_str() != "tamper").cloned().collect() };
    let differ: Vec<_> = one
        .iter()
        .filter(|(k, flags)| two.get(*k).map(without_tamper) != Some(without_tamper(flags)))
        .take(5)
        .collect();
    assert!(
        differ.is_empty(),
        "VEE flags differ from a single instance's: {differ:?}"
    );
    let tampered = |reads: &BTreeMap<(String, String), Vec<String>>| -> BTreeSet<String> {
        reads
            .iter()
            .filter(|(_, flags)| flags.iter().any(|f| f == "tamper"))
            .map(|((meter, _), _)| meter.clone())
            .collect()
    };
    let (single, shared) = (tampered(&one), tampered(&two));
    assert!(
        !single.is_empty() && !shared.is_empty(),
        "the traffic holds tamper changes"
    );
    let invented: Vec<_> = shared.difference(&single).collect();
    assert!(
        invented.is_empty(),
        "tamper changes a single instance does not see: {invented:?}"
    );
    eprintln!(
        "tamper changes: {} meters with one instance, {} with two",
        single.len(),
        shared.len()
    );
    assert_eq!(one.len(), two.len());
}
