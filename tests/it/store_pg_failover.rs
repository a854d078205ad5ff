//! Failover: meterd on a PostgreSQL primary with a synchronous standby, the primary killed
//! mid-stream, the standby promoted; meterd reconnects (multi-host URL,
//! `target_session_attrs=read-write`) and carries on. Every transmission is stored once:
//! what was acknowledged before the failure is still there, nothing is stored twice.

use std::collections::HashSet;
use std::time::Duration;

use crate::common::Scratch;
use crate::common::daemon::Daemon;
use crate::common::mosquitto;
use crate::common::mqtt::{subscribed, transmissions};
use crate::common::pg_pair::Pair;
use meterd::store::Store;
use meterd::store::postgres::{PgStore, SslMode, StoreConfig};

fn count(url: &str) -> Option<u64> {
    let store = PgStore::open(&StoreConfig {
        url: Some(url.to_owned()),
        sslmode: SslMode::Disable,
        connect_timeout_secs: 2,
        ..StoreConfig::default()
    })
    .ok()?;
    let txn = store.begin_read().ok()?;
    txn.count_reads().ok()
}

#[test]
fn primary_killed_mid_stream_standby_promoted_nothing_acknowledged_lost() {
    let pair = Pair::start("meterd");
    let url = pair.url("meterd");
    let broker = mosquitto::start(true);
    let s = Scratch::new();
    let cfg = s.file(
        "meterd.toml",
        &format!(
            "[mqtt]\nbroker = \"{}\"\nclient_id = \"meterd-failover\"\ntopics = [\"meters/+/rtlamr\", \"meters/+/raw\"]\n\
             batch_latency_ms = 10\nkeep_alive_secs = 5\nbatch_size = 200\n\n\
             [store]\nurl = \"{url}\"\nsslmode = \"disable\"\nconnect_timeout_secs = 2\n",
            broker.url()
        ),
    );
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(30), subscribed);
    let manifest = s.dir.path().join("manifest.ndjson");
    let sim = s
        .cmd(&[
            "simulate",
            "gateway",
            "--broker",
            &broker.url(),
            "--meters",
            "200",
            "--rate",
            "1000",
            "--gateways",
            "3",
            "--count",
            "8000",
            "--seed",
            "11",
            "--client-id",
            "sim-failover",
            "--manifest",
            manifest.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    d.wait_until("some commits", Duration::from_secs(60), || {
        d.sum("mqtt: committed", "messages") >= 1_000
    });
    let acked_before = d.sum("mqtt: committed", "reads");
    pair.kill_primary();
    // The time a failover manager takes to decide; meterd meanwhile retries and acks nothing.
    std::thread::sleep(Duration::from_secs(2));
    pair.promote_standby();

    let out = sim.wait_with_output().unwrap();
    assert!(out.status.success(), "simulator failed");
    let want = transmissions(&manifest);
    d.wait_until(
        "every transmission stored on the new primary",
        Duration::from_secs(180),
        || count(&url).is_some_and(|n| n >= want.len() as u64),
    );
    std::thread::sleep(Duration::from_secs(1));
    let log = d.log();
    d.stop();

    let store = PgStore::open(&StoreConfig {
        url: Some(url.clone()),
        sslmode: SslMode::Disable,
        ..StoreConfig::default()
    })
    .unwrap();
    let txn = store.begin_read().unwrap();
    let reads = txn.all_reads().unwrap();
    let got: Vec<(String, String)> = reads
        .iter()
        .map(|r| (r.read.meter_id.clone(), r.read.raw.clone()))
        .collect();
    let unique: HashSet<(String, String)> = got.iter().cloned().collect();
    assert_eq!(unique.len(), got.len(), "a transmission stored twice");
    let missing: Vec<_> = want.difference(&unique).take(5).collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    assert!(
        reads.len() as u64 >= acked_before,
        "fewer reads than acknowledged before the failure"
    );
    assert!(
        log.contains("retry") || log.contains("unavailable"),
        "meterd said nothing about the lost primary:\n{log}"
    );
    // The new primary is the old standby.
    assert_eq!(
        pair.psql(pair.standby.port, "meterd", "SELECT pg_is_in_recovery()")
            .trim(),
        "f"
    );
}
