//! Sustained MQTT ingest: messages/s from a private mosquitto on loopback through decode +
//! dedup + VEE + durable commit + ack (the daemon's own ingest task, in process).
//!
//! Each iteration queues `MESSAGES` simulated gateway messages (SCM, SCM+, IDM, R900; repeats,
//! several gateways per transmission, 2 % corrupt) for meterd's persistent session while it is
//! offline (not timed), then times the ingest from connect until every message is committed
//! and acked. Needs mosquitto.
//!
//! The same ingest runs twice in one run: over plain TCP (`mqtt_ingest/tcp`) and over TLS
//! (`mqtt_ingest/tls`: a second mosquitto with a TLS listener and certificates made here with
//! rcgen; meterd and the simulator verify the broker for `broker.test`).
//!
//! Run: `cargo bench --bench mqtt_ingest -- --warm-up-time 1 --measurement-time 10`

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use meterd::cli::simulate::gateway::{GatewayArgs, simulate};
use meterd::ingest::mqtt::{GatewayIngest, MqttConfig, client};
use meterd::simulate::broker::Mosquitto;
use meterd::store::RedbStore;
use meterd::vee::VeeConfig;
use meterd_protocols::decode::Keys;
use tokio_util::sync::CancellationToken;

const MESSAGES: u64 = 20_000;

/// CPU seconds this process has used (user + system), from /proc (100 ticks/s on Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // Fields 14 and 15 of stat are the 12th and 13th after the command name.
    f.get(11).zip(f.get(12)).map_or(0.0, |(u, s)| (u + s) / 100.0)
}

/// A CA and a broker certificate for `broker.test`, in a folder the mosquitto user can read;
/// returns the folder and the mosquitto listener lines.
fn tls_files() -> (tempfile::TempDir, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["broker.test".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    for (name, text) in [
        ("ca.pem", ca.pem()),
        ("server.pem", cert.pem()),
        ("server.key", key.serialize_pem()),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let listener = format!(
        "cafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n",
        dir.path().display()
    );
    (dir, listener)
}

fn bench(c: &mut Criterion) {
    let Some(broker) = Mosquitto::start(false).unwrap() else {
        eprintln!("mqtt_ingest: mosquitto is not installed; skipping");
        return;
    };
    bench_on(c, "tcp", broker.url(), TlsSettings::default());
    let (pki, listener) = tls_files();
    let tls_broker = Mosquitto::start_with(false, &listener).unwrap().unwrap();
    let tls = TlsSettings {
        ca_file: Some(pki.path().join("ca.pem")),
        server_name: Some("broker.test".into()),
    };
    bench_on(c, "tls", tls_broker.tls_url(), tls);
}

/// The broker's TLS settings, for meterd's `[mqtt]` and the simulator's flags alike.
#[derive(Clone, Default)]
struct TlsSettings {
    ca_file: Option<std::path::PathBuf>,
    server_name: Option<String>,
}

fn bench_on(c: &mut Criterion, name: &str, url: String, tls: TlsSettings) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn meterd::store::Store> = Arc::new(RedbStore::open_dir(dir.path()).unwrap());
    let cfg = Arc::new(MqttConfig {
        broker: url.clone(),
        client_id: format!("bench-meterd-{name}"),
        batch_size: 2000,
        receive_maximum: 4000,
        batch_latency_ms: 5,
        ca_file: tls.ca_file.clone(),
        server_name: tls.server_name.clone(),
        ..MqttConfig::default()
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let run_for = |until: Option<u64>| {
        let (tx, mut rx) = tokio::sync::watch::channel(0u64);
        let ingest = GatewayIngest {
            store: Arc::clone(&store),
            config: Arc::clone(&cfg),
            vee: Arc::new(VeeConfig::default()),
            intervals: Arc::new(Default::default()),
            keys: Arc::new(Keys::new()),
            progress: Some(tx),
        };
        rt.block_on(async move {
            let token = CancellationToken::new();
            let task = tokio::spawn(client::run(ingest, token.clone()));
            let started = Instant::now();
            let cpu0 = cpu_seconds();
            match until {
                Some(n) => {
                    while *rx.borrow_and_update() < n {
                        tokio::time::timeout(Duration::from_secs(120), rx.changed())
                            .await
                            .expect("ingest stalled")
                            .unwrap();
                    }
                }
                // First run: just establish the session and its subscriptions.
                None => tokio::time::sleep(Duration::from_millis(500)).await,
            }
            let took = started.elapsed();
            let cpu = cpu_seconds() - cpu0;
            token.cancel();
            task.await.unwrap().unwrap();
            (took, cpu)
        })
    };
    let cpu_total = std::cell::Cell::new((0.0f64, 0u64));
    let run_for = |until: Option<u64>| {
        let (took, cpu) = run_for(until);
        if let Some(n) = until {
            let (c, m) = cpu_total.get();
            cpu_total.set((c + cpu, m + n));
        }
        took
    };
    run_for(None);
    let mut seed = 0;
    let mut group = c.benchmark_group("mqtt_ingest");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .throughput(Throughput::Elements(MESSAGES));
    group.bench_function(format!("decode_dedup_vee_commit_ack/{name}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                seed += 1;
                let args = GatewayArgs {
                    broker: url.clone(),
                    meters: 5_000,
                    rate: 0.0,
                    gateways: 3,
                    count: Some(MESSAGES),
                    corrupt_rate: 0.02,
                    seed,
                    topic_prefix: "meters".into(),
                    manifest: None,
                    tls: meterd::cli::simulate::gateway::TlsArgs {
                        ca_file: tls.ca_file.clone(),
                        server_name: tls.server_name.clone(),
                        ..Default::default()
                    },
                    client_id: Some(format!("bench-sim-{name}-{seed}")),
                };
                rt.block_on(simulate(args)).unwrap();
                total += run_for(Some(MESSAGES));
            }
            total
        })
    });
    group.finish();
    let (cpu, n) = cpu_total.get();
    if cpu > 0.0 {
        println!(
            "mqtt_ingest/{name}: {n} messages used {cpu:.2} CPU seconds in meterd's threads: {:.0} messages per CPU \
             second (wall-clock throughput is bounded by mosquitto, fsync and the machine's load)",
            n as f64 / cpu
        );
    }
}

criterion::criterion_group!(benches, bench);
criterion::criterion_main!(benches);
