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
//! A null subscriber drains the same messages in the same run: `mosquitto_sub -c -q 1 -C 20000`
//! (it only acks; stdout to /dev/null) holds a second persistent session (MQTT 5, like
//! meterd's) on the same topics, so each iteration's messages are queued for both while both
//! are offline; after meterd's timed ingest the bench times `mosquitto_sub` draining its copy.
//! At the end one line per transport gives both medians and the ratio meterd / null
//! subscriber (skipped when mosquitto_sub, from mosquitto-clients, is not installed). Over TLS
//! mosquitto_sub verifies the chain with the bench's CA but not the name (`--insecure`: it
//! cannot be told to expect `broker.test` while connecting to 127.0.0.1).
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

/// The null subscriber: `mosquitto_sub` with a persistent MQTT 5 session on meterd's topics,
/// which acks every QoS 1 message and does nothing else.
struct NullSubscriber {
    port: u16,
    client_id: String,
    ca_file: Option<std::path::PathBuf>,
}

impl NullSubscriber {
    fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new("mosquitto_sub");
        c.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-V",
            "5",
            "-x",
            "3600",
            "-c",
            "-q",
            "1",
        ])
        .args(["-i", &self.client_id, "-t", "meters/+/rtlamr", "-t", "meters/+/raw"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
        if let Some(ca) = &self.ca_file {
            c.arg("--cafile").arg(ca).arg("--insecure");
        }
        c
    }

    /// Creates the session and its subscriptions (then offline); `None` without mosquitto_sub.
    fn start(port: u16, name: &str, ca_file: Option<std::path::PathBuf>) -> Option<Self> {
        let null = NullSubscriber {
            port,
            client_id: format!("bench-null-{name}"),
            ca_file,
        };
        match null.command().arg("-E").status() {
            Ok(s) if s.success() => Some(null),
            Ok(s) => panic!("mosquitto_sub -E failed: {s}"),
            Err(e) => {
                eprintln!("mqtt_ingest: mosquitto_sub not runnable ({e}); no null subscriber");
                None
            }
        }
    }

    /// Times the drain of `n` queued messages, from the process start to its exit.
    fn drain(&self, n: u64) -> Duration {
        let started = Instant::now();
        let status = self
            .command()
            .args(["-C", &n.to_string(), "-W", "120"])
            .status()
            .expect("mosquitto_sub");
        let took = started.elapsed();
        assert!(status.success(), "mosquitto_sub did not receive {n} messages: {status}");
        took
    }
}

/// Median and range of messages/s over per-sample durations.
fn rates(took: &[Duration]) -> (f64, f64, f64) {
    let mut r: Vec<f64> = took.iter().map(|t| MESSAGES as f64 / t.as_secs_f64()).collect();
    r.sort_by(f64::total_cmp);
    let median = if r.len() % 2 == 1 {
        r[r.len() / 2]
    } else {
        (r[r.len() / 2 - 1] + r[r.len() / 2]) / 2.0
    };
    (median, r[0], r[r.len() - 1])
}

/// CPU seconds this process has used (user + system), from /proc (100 ticks/s on Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    // Fields 14 and 15 of stat (utime, stime) are the 12th and 13th after the command name,
    // counting the state letter (field 3). Until issue 17 the fields were parsed as numbers
    // first, which dropped the state and read stime + cutime instead: the "messages per CPU
    // second" figures printed before were far too high.
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
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
    // Names of their own: with rcgen's default name on both, OpenSSL (mosquitto_sub) takes
    // the broker's certificate for a self-signed one and refuses it.
    ca.distinguished_name.push(rcgen::DnType::CommonName, "meterd bench CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut cert = CertificateParams::new(vec!["broker.test".to_owned()]).unwrap();
    cert.distinguished_name.push(rcgen::DnType::CommonName, "broker.test");
    let cert = cert.signed_by(&key, &ca).unwrap();
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
    bench_on(c, "tcp", broker.url(), broker.port, TlsSettings::default());
    let (pki, listener) = tls_files();
    let tls_broker = Mosquitto::start_with(false, &listener).unwrap().unwrap();
    let tls = TlsSettings {
        ca_file: Some(pki.path().join("ca.pem")),
        server_name: Some("broker.test".into()),
    };
    bench_on(c, "tls", tls_broker.tls_url(), tls_broker.port, tls);
}

/// The broker's TLS settings, for meterd's `[mqtt]` and the simulator's flags alike.
#[derive(Clone, Default)]
struct TlsSettings {
    ca_file: Option<std::path::PathBuf>,
    server_name: Option<String>,
}

fn bench_on(c: &mut Criterion, name: &str, url: String, port: u16, tls: TlsSettings) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn meterd::store::Store> = Arc::new(RedbStore::open_dir(dir.path()).unwrap());
    let cfg = Arc::new(MqttConfig {
        broker: url.clone(),
        client_id: format!("bench-meterd-{name}"),
        // Group size, latency and in-flight window as shipped (MqttConfig::default()).
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
                Some(n) => client::committed(&mut rx, n, Duration::from_secs(120)).await.unwrap(),
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
    let null = NullSubscriber::start(port, name, tls.ca_file.clone());
    // Per iteration, both from the same queued messages: meterd's time, the null subscriber's.
    let mut meterd_took = Vec::new();
    let mut null_took = Vec::new();
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
                let took = run_for(Some(MESSAGES));
                total += took;
                meterd_took.push(took);
                if let Some(null) = &null {
                    null_took.push(null.drain(MESSAGES));
                }
            }
            total
        })
    });
    group.finish();
    if !null_took.is_empty() {
        let (m, m_lo, m_hi) = rates(&meterd_took);
        let (n, n_lo, n_hi) = rates(&null_took);
        println!(
            "mqtt_ingest/{name}: same {} iterations of {MESSAGES} queued QoS 1 messages: meterd {m:.0} msgs/s \
             ({m_lo:.0}-{m_hi:.0}), null subscriber (mosquitto_sub) {n:.0} msgs/s ({n_lo:.0}-{n_hi:.0}): \
             meterd / null subscriber = {:.2}",
            meterd_took.len(),
            m / n
        );
    }
    let (cpu, n) = cpu_total.get();
    if cpu > 0.0 {
        println!(
            "mqtt_ingest/{name}: {n} messages used {cpu:.2} CPU seconds in meterd's threads (user + system, timed \
             ingest only): {:.0} messages per CPU second, {:.1} µs per message",
            n as f64 / cpu,
            cpu * 1e6 / n as f64
        );
    }
}

criterion::criterion_group!(benches, bench);
criterion::criterion_main!(benches);
