//! MQTT gateway ingest against a real mosquitto and the real `meterd run`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::Scratch;
use crate::common::daemon::Daemon;
use crate::common::mosquitto::{self, Mosquitto};
use crate::common::mqtt::{Collector, assert_stored_exactly_once, publish_all, subscribed};
use meterd::model::{OutboxEntry, Rule};
use meterd::store::{RedbStore, Store};
use meterd_protocols::Decoded;
use meterd_protocols::ert;

fn config(s: &Scratch, broker: &Mosquitto, client_id: &str, extra: &str) -> PathBuf {
    s.file(
        "meterd.toml",
        &format!(
            "[mqtt]\nbroker = \"{}\"\nclient_id = \"{client_id}\"\ntopics = [\"meters/+/rtlamr\", \"meters/+/raw\"]\n\
             batch_latency_ms = 10\nkeep_alive_secs = 5\n{extra}",
            broker.url()
        ),
    )
}

fn open(s: &Scratch) -> RedbStore {
    RedbStore::open_dir(&s.data_dir()).unwrap()
}

/// The frames of one fixture file, as `decode_input` splits them.
fn fixture_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Every published ERT vector (firmware-fixtures/ert: SCM, SCM+, IDM, NetIDM, R900, R900BCD,
/// rtlamr JSON, envelopes; positive and negative) through mosquitto into the store: each
/// intact transmission becomes one read of `protocol:id` with its register, each refused
/// frame a quarantine entry naming the failed check.
#[test]
fn published_vectors_through_mqtt() {
    let broker = mosquitto::start(false);
    let s = Scratch::new();
    let cfg = config(&s, &broker, "meterd-vectors", "");
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(20), subscribed);

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-fixtures/ert");
    let mut msgs = Vec::new();
    let mut reads: BTreeMap<String, (String, u64)> = BTreeMap::new(); // dedup key -> (endpoint, register)
    let mut refusals: Vec<(String, String)> = Vec::new(); // (topic, check or kind)
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_none_or(|e| e != "in") {
                continue;
            }
            let protocol = std::fs::read_to_string(f.with_extension("args")).ok().and_then(|a| {
                a.split_whitespace()
                    .skip_while(|w| *w != "protocol")
                    .nth(1)
                    .map(str::to_owned)
            });
            let expected: Vec<serde_json::Value> = std::fs::read_to_string(f.with_extension("expected"))
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let lines = fixture_lines(&f);
            assert_eq!(lines.len(), expected.len(), "{}", f.display());
            let name = format!(
                "{}-{}",
                dir.file_name().unwrap().to_str().unwrap(),
                f.file_stem().unwrap().to_str().unwrap()
            );
            for (n, (line, want)) in lines.iter().zip(&expected).enumerate() {
                let topic = format!("meters/{name}-{n}/raw");
                let payload = match &protocol {
                    // The gateway names the protocol the bytes cannot tell (NetIDM, R900BCD).
                    Some(p) => serde_json::json!({"gateway": "vectors", "protocol": p, "hex": line}).to_string(),
                    None => line.clone(),
                };
                msgs.push((topic.clone(), payload.into_bytes()));
                if let Some(err) = want.get("error") {
                    let what = err
                        .get("check")
                        .or_else(|| err.get("kind"))
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_owned();
                    refusals.push((topic, what));
                } else {
                    let decoded: Decoded = serde_json::from_value(want.clone()).unwrap();
                    let Some(register) = decoded
                        .readings
                        .iter()
                        .find(|r| r.quantity == "register")
                        .and_then(|r| r.value.as_u64())
                    else {
                        continue;
                    };
                    let key = ert::dedup_key(&decoded).unwrap();
                    reads.insert(key, (format!("{}:{}", decoded.protocol, decoded.meter_id), register));
                }
            }
        }
    }
    assert!(
        reads.len() >= 12 && refusals.len() >= 8,
        "{} reads, {} refusals",
        reads.len(),
        refusals.len()
    );
    let total = msgs.len() as u64;
    publish_all(broker.port, &msgs);
    d.wait_until("every message committed", Duration::from_secs(30), || {
        d.sum("mqtt: committed", "messages") >= total
    });
    d.stop();

    let store = open(&s);
    let txn = store.begin_read().unwrap();
    let stored = txn.all_reads().unwrap();
    let got: BTreeSet<(String, String)> = stored
        .iter()
        .map(|r| (r.read.meter_id.clone(), r.read.raw.clone()))
        .collect();
    let want: BTreeSet<(String, String)> = reads.values().map(|(e, v)| (e.clone(), v.to_string())).collect();
    assert_eq!(got, want, "reads stored");
    assert_eq!(stored.len(), reads.len(), "each transmission once");
    assert!(
        stored
            .iter()
            .any(|r| r.read.meter_id == "scm:54585868" && r.read.raw == "562456")
    );
    for r in &stored {
        assert_eq!(r.read.read_type, meterd::model::ReadType::Gateway);
        assert!(r.has_flag(Rule::UnknownMeter), "no meter list imported: {r:?}");
        assert!(
            r.read.codes.iter().any(|c| c.starts_with("register_modulus=")),
            "{:?}",
            r.read.codes
        );
    }
    let quarantine = txn.quarantined().unwrap();
    assert_eq!(quarantine.len(), refusals.len(), "{quarantine:#?}");
    for (topic, what) in &refusals {
        let q = quarantine
            .iter()
            .find(|(_, q)| q.source.contains(topic.as_str()))
            .unwrap_or_else(|| panic!("{topic} not quarantined"));
        assert!(
            q.1.reason.contains(what.as_str()),
            "{topic}: reason {:?} should name {what}",
            q.1.reason
        );
        assert!(!q.1.payload.is_empty());
    }
    // Interval reads of the IDM vectors (47 × 5 min, I1 and I3 are one interval set).
    assert!(txn.count_interval_reads().unwrap() >= 47);
    // The same intervals are interval days of channel `idm`, which `intervals list` shows.
    let ert_interval_meters: BTreeSet<String> = stored
        .iter()
        .map(|r| r.read.meter_id.clone())
        .filter(|m| m.starts_with("idm:") || m.starts_with("netidm:"))
        .collect();
    assert!(!ert_interval_meters.is_empty());
    drop(txn);
    drop(store);
    for m in &ert_interval_meters {
        let days = s.json(&["intervals", "list", "--meter", m, "--json"]);
        let days = days.as_array().unwrap();
        assert!(!days.is_empty(), "{m}: no interval days");
        let known: usize = days
            .iter()
            .map(|d| {
                assert_eq!(
                    (d["channel"].as_str(), d["interval_minutes"].as_u64()),
                    (Some("idm"), Some(5))
                );
                d["value_source"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|v| !v.is_null())
                    .count()
            })
            .sum();
        assert!(known >= 27, "{m}: {known} intervals");
    }
}

/// 10,000 simulated gateway messages; the broker restarts mid-stream and `meterd run` is
/// SIGKILLed mid-stream. After restart every distinct intact transmission is stored exactly
/// once and every corrupt message is in the quarantine once.
#[test]
fn broker_restart_and_sigkill_during_10000_messages() {
    let mut broker = mosquitto::start(true);
    let s = Scratch::new();
    let cfg = config(&s, &broker, "meterd-chaos", "batch_size = 500\n");
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(20), subscribed);

    let manifest = s.dir.path().join("manifest.ndjson");
    let sim = s
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
            "10000",
            "--corrupt-rate",
            "0.02",
            "--seed",
            "42",
            "--client-id",
            "sim-chaos",
            "--manifest",
            manifest.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // meterd is killed while messages stream in.
    d.wait_until("some commits", Duration::from_secs(30), || {
        d.sum("mqtt: committed", "messages") >= 1500
    });
    d.kill();
    let committed_before_kill = {
        let store = open(&s);
        let txn = store.begin_read().unwrap();
        txn.count_reads().unwrap() + txn.quarantined().unwrap().len() as u64
    };
    // The broker restarts while the simulator is still publishing (un-acked messages are in
    // its persistent store, and so is meterd's session).
    std::thread::sleep(Duration::from_millis(300));
    broker.restart().unwrap();
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(30), subscribed);
    std::thread::sleep(Duration::from_millis(500));
    broker.restart().unwrap();

    let out = sim.wait_with_output().unwrap();
    assert!(out.status.success(), "simulator failed");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["published"], 10_000);
    let corrupt = summary["corrupt"].as_u64().unwrap();
    let expected: Vec<serde_json::Value> = std::fs::read_to_string(&manifest)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(expected.len() as u64, summary["transmissions"].as_u64().unwrap());

    // The restarted daemon drains what the broker kept (a shortfall fails after the timeout,
    // an excess shows below), then stays quiet.
    let want_total = expected.len() as u64 + corrupt;
    d.wait_until("every transmission stored", Duration::from_secs(90), || {
        committed_before_kill + d.sum("mqtt: committed", "reads") + d.sum("mqtt: committed", "quarantined")
            >= want_total
    });
    std::thread::sleep(Duration::from_secs(1));
    d.stop();

    assert_stored_exactly_once(&s.data_dir(), &manifest, corrupt);
}

/// One transmission heard by three gateways and repeated is stored once; validated reads and
/// an outbox row left by an earlier run are published with a msg_id and cleared on PUBACK;
/// a silent gateway shows in `gateways list --json` and in the log.
#[test]
fn dedup_outbox_and_gateway_silence() {
    let broker = mosquitto::start(false);
    let s = Scratch::new();
    s.ok(&[
        "meters",
        "import",
        s.file(
            "meters.csv",
            &format!(
                "{}scm:54585868,A1,R1,1,electric,kWh,8,0,1,active,1 Main St\n",
                crate::common::METERS_HEADER
            ),
        )
        .to_str()
        .unwrap(),
    ]);
    {
        let store = open(&s);
        let mut txn = store.begin_write().unwrap();
        txn.push_outbox(&OutboxEntry {
            topic: "meterd/out".into(),
            payload: br#"{"msg_id":"left-over"}"#.to_vec(),
        })
        .unwrap();
        txn.commit().unwrap();
    }
    let collector = Collector::start(broker.port, "test-consumer", "meterd/out");
    let cfg = config(
        &s,
        &broker,
        "meterd-dedup",
        "publish_topic = \"meterd/out\"\nsilence_after_secs = 2\n",
    );
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(20), subscribed);

    let s1 = "F95306F008951840EA0C101A";
    let env = |gw: &str, at: &str| format!(r#"{{"gateway":"{gw}","received_at":"{at}","hex":"{s1}"}}"#).into_bytes();
    let rtlamr = br#"{"Time":"2026-01-01T00:00:00.7Z","Offset":0,"Length":0,"Type":"SCM","Message":{"ID":54585868,"Type":12,"TamperPhy":3,"TamperEnc":0,"Consumption":562456,"ChecksumVal":4122}}"#;
    publish_all(
        broker.port,
        &[
            ("meters/gw-a/raw".into(), env("gw-a", "2026-01-01T00:00:00.1Z")),
            ("meters/gw-b/raw".into(), env("gw-b", "2026-01-01T00:00:00.3Z")),
            ("meters/gw-c/rtlamr".into(), rtlamr.to_vec()),
            // The meter repeats itself 30 s later.
            ("meters/gw-a/raw".into(), env("gw-a", "2026-01-01T00:00:30.1Z")),
            ("meters/gw-c/status".into(), b"online".to_vec()),
        ],
    );
    d.wait_until("published", Duration::from_secs(20), || {
        collector.received.lock().unwrap().len() >= 2
    });
    // gw-b keeps talking; gw-a and gw-c go silent.
    std::thread::sleep(Duration::from_millis(2500));
    publish_all(
        broker.port,
        &[("meters/gw-b/raw".into(), env("gw-b", "2026-01-01T00:05:00Z"))],
    );
    d.wait_for("gateway silent in the log", Duration::from_secs(20), |l| {
        l.contains("gateway silent") && l.contains("gw-a")
    });
    d.wait_until("the silence alert published", Duration::from_secs(20), || {
        collector
            .received
            .lock()
            .unwrap()
            .iter()
            .any(|(_, p, _)| String::from_utf8_lossy(p).contains("gateway_silent"))
    });
    std::thread::sleep(Duration::from_millis(200));
    d.stop();

    let got = collector.received.lock().unwrap().clone();
    let ids: Vec<String> = got
        .iter()
        .map(|(_, p, props)| {
            let v: serde_json::Value = serde_json::from_slice(p).unwrap();
            let id = v["msg_id"].as_str().unwrap().to_owned();
            assert!(
                props.iter().any(|(k, val)| k == "msg_id" && *val == id),
                "user property msg_id"
            );
            id
        })
        .collect();
    assert!(ids.contains(&"left-over".to_owned()), "{ids:?}");
    let read_msgs: Vec<&crate::common::mqtt::Received> = got
        .iter()
        .filter(|(_, p, _)| std::str::from_utf8(p).unwrap().contains(r#""kind":"read""#))
        .collect();
    assert_eq!(read_msgs.len(), 1, "{ids:?}");
    assert!(
        ids.iter().any(|i| i.starts_with("alert:gateway_silent:gw-a")),
        "{ids:?}"
    );

    let store = open(&s);
    let txn = store.begin_read().unwrap();
    let reads = txn.all_reads().unwrap();
    assert_eq!(reads.len(), 1, "four copies, one transmission: {reads:#?}");
    assert_eq!(reads[0].read.meter_id, "scm:54585868");
    assert_eq!(reads[0].status, meterd::model::ReadStatus::Validated);
    assert_eq!(
        txn.outbox_len().unwrap(),
        0,
        "every published row was PUBACKed and removed"
    );
    drop(txn);
    drop(store);

    let list = s.json(&["--config", cfg.to_str().unwrap(), "gateways", "list", "--json"]);
    let by: BTreeMap<String, serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["gateway"].as_str().unwrap().to_owned(), g.clone()))
        .collect();
    assert_eq!(by.keys().cloned().collect::<Vec<_>>(), ["gw-a", "gw-b", "gw-c"]);
    assert_eq!(by["gw-a"]["silent"], true);
    assert_eq!(by["gw-b"]["silent"], false);
    assert_eq!(by["gw-a"]["messages"], 2);
    assert_eq!(by["gw-c"]["status"], "online");
}

/// Two meterd instances in one MQTT 5 shared subscription group split the messages: each
/// message is stored by exactly one of them.
#[test]
fn shared_subscription_splits_the_load() {
    let broker = mosquitto::start(false);
    let (a, b) = (Scratch::new(), Scratch::new());
    let extra = "shared_group = \"meterd\"\n";
    let da = Daemon::start(&a, &config(&a, &broker, "meterd-a", extra));
    let db = Daemon::start(&b, &config(&b, &broker, "meterd-b", extra));
    da.wait_for("subscribed", Duration::from_secs(20), subscribed);
    db.wait_for("subscribed", Duration::from_secs(20), subscribed);
    let msgs: Vec<(String, Vec<u8>)> = (0..200u32)
        .map(|i| {
            let frame = ert::scm::Scm {
                id: 1000 + i,
                ert_type: 4,
                tamper_phy: 1,
                tamper_enc: 0,
                consumption: 5000 + i,
                checksum: 0,
            }
            .encode();
            (format!("meters/gw{}/raw", i % 3), hex::encode(frame).into_bytes())
        })
        .collect();
    publish_all(broker.port, &msgs);
    da.wait_until("all committed", Duration::from_secs(30), || {
        da.sum("mqtt: committed", "messages") + db.sum("mqtt: committed", "messages") >= 200
    });
    da.stop();
    db.stop();
    let count = |s: &Scratch| open(s).begin_read().unwrap().count_reads().unwrap();
    let (na, nb) = (count(&a), count(&b));
    assert_eq!(na + nb, 200, "each message stored by one instance");
    assert!(na > 0 && nb > 0, "the group split the load: {na} / {nb}");
}

/// Gateway health you can act on: undecodable messages counted by reason, in `gateways list`
/// (over the control socket, while the daemon runs) and `/metrics`; a gateway whose
/// undecodable share rises above the limit is logged and alerted, a healthy one is not.
#[test]
fn gateway_health_by_reason_and_undecodable_alert() {
    let broker = mosquitto::start(false);
    let s = Scratch::new();
    let port = crate::common::free_port();
    let collector = Collector::start(broker.port, "health-consumer", "meterd/out");
    let cfg = config(
        &s,
        &broker,
        "meterd-health",
        &format!(
            "publish_topic = \"meterd/out\"\nsilence_after_secs = 4\nundecodable_alert_percent = 25\n\
             undecodable_alert_min_messages = 20\n[http]\nlisten = \"127.0.0.1:{port}\"\n"
        ),
    );
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(20), subscribed);

    let good = "F95306F008951840EA0C101A";
    // The same frame with two bits flipped: its BCH check fails.
    let bch = "F95306F0086A1840EA0C101A";
    let mut messages: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..30 {
        messages.push(("meters/van-2/raw".into(), good.into()));
        if i < 10 {
            messages.push(("meters/pole-1/raw".into(), good.into()));
        }
        if i < 25 {
            messages.push(("meters/pole-1/raw".into(), bch.into()));
        }
    }
    messages.push(("meters/pole-1/raw".into(), b"not a frame".to_vec()));
    publish_all(broker.port, &messages);

    // The health check may run while the messages still arrive: the alert names what was
    // counted then; the counts are checked once everything is committed.
    d.wait_for("the undecodable share logged", Duration::from_secs(30), |l| {
        l.contains("undecodable share") && l.contains("pole-1") && l.contains("bch ")
    });
    d.wait_until("the undecodable alert published", Duration::from_secs(20), || {
        collector
            .received
            .lock()
            .unwrap()
            .iter()
            .any(|(_, p, _)| String::from_utf8_lossy(p).contains("gateway_undecodable"))
    });
    let alerts: Vec<serde_json::Value> = collector
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, p, _)| serde_json::from_slice::<serde_json::Value>(p).unwrap())
        .filter(|v| v["alert"] == "gateway_undecodable")
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["gateway"], "pole-1");
    let (counted, bad) = (
        alerts[0]["messages"].as_u64().unwrap(),
        alerts[0]["undecodable"].as_u64().unwrap(),
    );
    assert!(counted >= 20 && bad * 100 > counted * 25, "{alerts:?}");
    assert!(alerts[0]["by_reason"]["bch"].as_u64().unwrap() >= 1, "{alerts:?}");
    assert!(
        !d.log()
            .lines()
            .any(|l| l.contains("is over the limit") && l.contains("van-2")),
        "van-2 is healthy"
    );

    // `gateways list` against the running daemon, once every message is committed.
    let list_json = || s.json(&["--config", cfg.to_str().unwrap(), "gateways", "list", "--json"]);
    d.wait_until("every message counted", Duration::from_secs(30), || {
        list_json()
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["messages"].as_u64().unwrap())
            .sum::<u64>()
            == 66
    });
    let list = list_json();
    let by: BTreeMap<String, serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["gateway"].as_str().unwrap().to_owned(), g.clone()))
        .collect();
    let pole = &by["pole-1"];
    assert_eq!(
        (pole["messages"].as_u64(), pole["decoded"].as_u64()),
        (Some(36), Some(10))
    );
    assert_eq!(pole["undecodable"], 26);
    assert_eq!(pole["undecodable_by"], serde_json::json!({"bch": 25, "format": 1}));
    assert_eq!(pole["recent"]["undecodable"], 26);
    assert_eq!(pole["undecodable_alert"], true);
    let van = &by["van-2"];
    assert_eq!(
        (van["decoded"].as_u64(), van["undecodable"].as_u64()),
        (Some(30), Some(0))
    );
    assert_eq!(van["undecodable_alert"], false);
    let text = s.ok(&["--config", cfg.to_str().unwrap(), "gateways", "list"]);
    assert!(text.contains("bch 25, format 1"), "{text}");

    // /metrics, from the same daemon.
    let token = s.ok(&["tokens", "create", "ops"]).trim().to_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let metrics = rt.block_on(async {
        let r = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    });
    for line in [
        "meterd_gateway_undecodable_total{gateway=\"pole-1\",reason=\"bch\"} 25",
        "meterd_gateway_undecodable_total{gateway=\"pole-1\",reason=\"format\"} 1",
        "meterd_gateway_undecodable_total{gateway=\"van-2\",reason=\"bch\"} 0",
        "meterd_gateway_decoded_total{gateway=\"van-2\"} 30",
        "meterd_gateway_messages_total{gateway=\"pole-1\"} 36",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} not in:\n{metrics}");
    }
    d.stop();
}

/// A graceful stop (the cancellation token, as on SIGTERM) acks every message whose group
/// committed before the DISCONNECT is written: the next session gets nothing back. (The acks
/// still queued in the client at the stop used to be dropped with its event loop, and the
/// broker redelivered them at the next start.) And only what committed is acked: the
/// messages all come back to a session that stops before any commit.
#[test]
fn a_graceful_stop_acks_every_committed_message_and_nothing_else() {
    use meterd::cli::simulate::gateway::{GatewayArgs, simulate};
    use meterd::ingest::mqtt::{GatewayIngest, MqttConfig, client};
    use std::sync::Arc;
    use tokio_util::sync::CancellationToken;

    const MESSAGES: u64 = 3000;
    let broker = mosquitto::start(false);
    let s = Scratch::new();
    let store: Arc<dyn Store> = Arc::new(RedbStore::open_dir(s.dir.path()).unwrap());
    let cfg = Arc::new(MqttConfig {
        broker: broker.url(),
        client_id: "meterd-graceful".into(),
        ..MqttConfig::default()
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // One session: runs until `until` messages committed (or for `quiet` when None); returns
    // the messages it committed.
    let session = |until: Option<u64>, quiet: Duration| -> u64 {
        let (tx, mut rx) = tokio::sync::watch::channel(0u64);
        let ingest = GatewayIngest {
            store: Arc::clone(&store),
            config: Arc::clone(&cfg),
            vee: Arc::default(),
            intervals: Arc::default(),
            keys: Arc::default(),
            progress: Some(tx),
        };
        rt.block_on(async move {
            let token = CancellationToken::new();
            let task = tokio::spawn(client::run(ingest, token.clone()));
            match until {
                Some(n) => client::committed(&mut rx, n, Duration::from_secs(60)).await.unwrap(),
                None => tokio::time::sleep(quiet).await,
            }
            token.cancel();
            task.await.unwrap().unwrap();
            *rx.borrow()
        })
    };
    let publish = |seed: u64| {
        let args = GatewayArgs {
            broker: broker.url(),
            meters: 500,
            rate: 0.0,
            gateways: 3,
            count: Some(MESSAGES),
            corrupt_rate: 0.02,
            seed,
            topic_prefix: "meters".into(),
            manifest: None,
            tls: Default::default(),
            client_id: Some(format!("sim-graceful-{seed}")),
        };
        rt.block_on(simulate(args)).unwrap();
    };

    // The persistent session and its subscriptions; then messages queued while it is offline.
    assert_eq!(session(None, Duration::from_millis(1000)), 0);
    publish(1);
    // Stopped as soon as everything committed: the last group's acks are still queued then.
    assert_eq!(session(Some(MESSAGES), Duration::ZERO), MESSAGES);
    assert_eq!(
        session(None, Duration::from_millis(1500)),
        0,
        "the broker redelivered messages meterd had committed and stopped gracefully"
    );

    // A stop before the first group's deadline (no commit, so no ack): everything comes back.
    publish(2);
    let cut_short = Arc::new(MqttConfig {
        batch_size: usize::MAX,
        batch_latency_ms: 60_000,
        ..(*cfg).clone()
    });
    {
        let ingest = GatewayIngest {
            store: Arc::clone(&store),
            config: cut_short,
            vee: Arc::default(),
            intervals: Arc::default(),
            keys: Arc::default(),
            progress: None,
        };
        rt.block_on(async move {
            let token = CancellationToken::new();
            let task = tokio::spawn(client::run(ingest, token.clone()));
            tokio::time::sleep(Duration::from_millis(1000)).await;
            token.cancel();
            task.await.unwrap().unwrap();
        });
    }
    assert_eq!(session(Some(MESSAGES), Duration::ZERO), MESSAGES);
}
