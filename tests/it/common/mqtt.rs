//! A test MQTT client: publish QoS 1 and wait for every PUBACK; subscribe and collect.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Publishes every message at QoS 1 and returns once the broker acknowledged them all.
pub fn publish_all(port: u16, msgs: &[(String, Vec<u8>)]) {
    runtime().block_on(async {
        let mut o = MqttOptions::new(format!("test-pub-{}", std::process::id()), "127.0.0.1", port);
        o.set_outgoing_inflight_upper_limit(100);
        let (client, mut ev) = AsyncClient::new(o, 200);
        let msgs = msgs.to_vec();
        let n = msgs.len();
        let sender = tokio::spawn(async move {
            for (t, p) in msgs {
                client.publish(t, QoS::AtLeastOnce, false, p).await.unwrap();
            }
            client
        });
        let mut acked = 0;
        while acked < n {
            let ev = tokio::time::timeout(Duration::from_secs(20), ev.poll())
                .await
                .expect("broker silent")
                .expect("broker");
            if let Event::Incoming(Packet::PubAck(_)) = ev {
                acked += 1;
            }
        }
        let client = sender.await.unwrap();
        client.disconnect().await.unwrap();
        let _ = tokio::time::timeout(Duration::from_millis(200), ev.poll()).await;
    });
}

/// A subscriber that collects messages on `filter` in a background thread (persistent
/// session under `client_id`, so nothing published while it reconnects is missed).
/// (topic, payload, MQTT 5 user properties)
pub type Received = (String, Vec<u8>, Vec<(String, String)>);

pub struct Collector {
    pub received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
}

impl Collector {
    pub fn start(port: u16, client_id: &str, filter: &str) -> Self {
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&received);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (id, filter) = (client_id.to_owned(), filter.to_owned());
        std::thread::spawn(move || {
            runtime().block_on(async move {
                let mut o = MqttOptions::new(id, "127.0.0.1", port);
                o.set_clean_start(false).set_session_expiry_interval(Some(600));
                let (client, mut ev) = AsyncClient::new(o, 100);
                client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
                loop {
                    match ev.poll().await {
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            let _ = ready_tx.send(());
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            let props = p.properties.map(|pp| pp.user_properties).unwrap_or_default();
                            sink.lock().unwrap().push((
                                String::from_utf8_lossy(&p.topic).into_owned(),
                                p.payload.to_vec(),
                                props,
                            ));
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            });
        });
        ready_rx.recv_timeout(Duration::from_secs(10)).expect("subscribed");
        Collector { received }
    }
}

/// The log line of `meterd run` once its MQTT session is connected and subscribed.
pub fn subscribed(line: &str) -> bool {
    line.contains("connected and subscribed")
}

/// The transmissions a `meterd simulate gateway --manifest FILE` run sent, as (endpoint,
/// register): what the store must hold once, whatever the repeats and gateways.
pub fn transmissions(manifest: &Path) -> HashSet<(String, String)> {
    std::fs::read_to_string(manifest)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|e| {
            (
                e["endpoint"].as_str().unwrap().to_owned(),
                e["register"].as_u64().unwrap().to_string(),
            )
        })
        .collect()
}

/// The store in `data_dir` holds every transmission of `manifest` exactly once (nothing
/// missing, nothing extra, nothing twice) and `corrupt` quarantine entries: what an ingest
/// interrupted by a kill or a broker restart must have left.
pub fn assert_stored_exactly_once(data_dir: &Path, manifest: &Path, corrupt: u64) {
    use meterd::store::prelude::*;
    let store = meterd::store::RedbStore::open_dir(data_dir).unwrap();
    let txn = store.begin_read().unwrap();
    let stored = txn.all_reads().unwrap();
    let got: HashSet<(String, String)> = stored
        .iter()
        .map(|r| (r.read.meter_id.clone(), r.read.raw.clone()))
        .collect();
    assert_eq!(got.len(), stored.len(), "a read stored twice");
    let want = transmissions(manifest);
    let missing: Vec<_> = want.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&want).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    let lines = std::fs::read_to_string(manifest).unwrap().lines().count();
    assert_eq!(stored.len(), lines, "one read per transmission of the manifest");
    assert_eq!(
        txn.quarantined().unwrap().len() as u64,
        corrupt,
        "each corrupt message quarantined once"
    );
}
