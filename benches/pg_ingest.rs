//! The PostgreSQL store on this machine: import + VEE + durable commit of 1,000,000 reads over
//! 100,000 meters, against a raw server-side `COPY` of the same rows into a table of the same
//! shape (same partitions and indexes) in the same run: the ratio is the figure that matters.
//! Then a billing pull of 100,000 reads. Then MQTT ingest from a private mosquitto with one
//! and with two instances (each its own connection pool and MQTT session, one shared
//! subscription) on one database: 20,000 simulated gateway messages, timed from the first
//! publish until every message is committed and acked.
//!
//! The bench starts its own PostgreSQL (the Debian package's binaries, as `postgres` when run
//! as root) in a temporary folder on a free loopback port, with durable settings (fsync and
//! synchronous_commit on, as in production), and stops it at the end.
//!
//! Run: `cargo bench --bench pg_ingest` (prints the figures; `cargo test --benches` skips it).

use std::time::Instant;

use jiff::Timestamp;
#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/pg_cluster.rs"]
mod pg_cluster;
use fleet::{METERS, meters, read};
use meterd::ingest::accept_reads;
use meterd::ingest::files::store_meters;
use meterd::model::Read;
use meterd::store::Store;
use meterd::store::postgres::{PgStore, SslMode, StoreConfig};
use meterd::vee::VeeConfig;
use pg_cluster::Cluster;

const MONTHS: i64 = 10;
/// Reads per import transaction (as `meterd reads import` commits).
const CHUNK: usize = 100_000;

fn store_on(cluster: &Cluster, db: &str) -> PgStore {
    cluster.psql("postgres", &format!("CREATE DATABASE {db}"));
    PgStore::open(&StoreConfig {
        url: Some(cluster.url(db)),
        sslmode: SslMode::Disable,
        ..StoreConfig::default()
    })
    .unwrap()
}

/// CPU seconds (user + system) of this process so far.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn one_million(cluster: &Cluster) {
    let store = store_on(cluster, "bench_import");
    store_meters(&store, &meters()).unwrap();
    let mut reads: Vec<Read> = (0..MONTHS).flat_map(|m| (0..METERS).map(move |i| read(i, m))).collect();
    let n = reads.len();
    // The file importer's order: by meter, then time.
    reads.sort_by(|a, b| a.meter_id.cmp(&b.meter_id).then(a.read_at.cmp(&b.read_at)));
    store.prepare_months(reads.iter().map(|r| r.read_at)).unwrap();
    let config = VeeConfig::default();
    let cpu = cpu_seconds();
    let t = Instant::now();
    let mut imported = 0;
    let mut rest = reads;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(CHUNK));
        imported += accept_reads(&store, &config, std::mem::replace(&mut rest, tail))
            .unwrap()
            .imported;
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(imported as usize, n);
    println!(
        "pg_ingest/one_million_reads: {n} reads over {METERS} meters in {secs:.2} s = {:.0} reads/s (import + VEE + durable commit)",
        n as f64 / secs
    );
    if let (Some(a), Some(b)) = (cpu, cpu_seconds()) {
        println!("pg_ingest/one_million_reads: meterd's own CPU {:.2} s", b - a);
    }

    // The same rows, as stored, by the server's own COPY into a table of the same shape.
    let csv = cluster.dir.path().join("reads.csv");
    cluster.psql(
        "bench_import",
        &format!(
            "COPY (SELECT * FROM reads ORDER BY id) TO '{}' (FORMAT csv)",
            csv.display()
        ),
    );
    cluster.psql(
        "bench_import",
        "CREATE TABLE reads_raw (LIKE reads INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (read_at); \
         CREATE INDEX ON reads_raw (id); \
         CREATE INDEX ON reads_raw (meter_id, read_at, id) INCLUDE (value, consumption, status, excluded); \
         CREATE INDEX ON reads_raw (status, id); \
         ALTER TABLE reads_raw ADD PRIMARY KEY (id, read_at);",
    );
    for m in 0..MONTHS {
        let from = format!("2020-{:02}-01", m + 1);
        let to = if m == 11 {
            "2021-01-01".to_owned()
        } else {
            format!("2020-{:02}-01", m + 2)
        };
        cluster.psql(
            "bench_import",
            &format!("CREATE TABLE reads_raw_{m} PARTITION OF reads_raw FOR VALUES FROM ('{from}') TO ('{to}')"),
        );
    }
    let t = Instant::now();
    let copied = cluster.psql(
        "bench_import",
        &format!("COPY reads_raw FROM '{}' (FORMAT csv)", csv.display()),
    );
    let raw = t.elapsed().as_secs_f64();
    println!(
        "pg_ingest/raw_copy: {} in {raw:.2} s = {:.0} rows/s; meterd's import takes {:.1}× the raw COPY ({:.0}% of its speed)",
        copied.trim(),
        n as f64 / raw,
        secs / raw,
        100.0 * raw / secs
    );

    // Billing pull: every read above is billable.
    let t = Instant::now();
    let doc = meterd::billing::pull(&store, "bench", 100_000, Timestamp::now())
        .unwrap()
        .expect("a batch");
    let pull = t.elapsed().as_secs_f64();
    println!(
        "pg_ingest/billing_pull: batch of {} reads in {pull:.3} s",
        doc.contents.lines.len()
    );
    let txn = store.begin_read().unwrap();
    assert_eq!(txn.count_reads().unwrap(), n as u64);
}

fn main() {
    // `cargo test --benches` runs this binary without `--bench`: it needs a server, skip.
    if !std::env::args().any(|a| a == "--bench") {
        println!("pg_ingest: run with `cargo bench --bench pg_ingest`");
        return;
    }
    let cluster = Cluster::start();
    one_million(&cluster);
    for instances in [1, 2] {
        mqtt_instances(&cluster, instances);
    }
}

/// Simulated gateway messages per MQTT run.
const MQTT_MESSAGES: u64 = 20_000;

fn mqtt_instances(cluster: &Cluster, instances: usize) {
    use meterd::cli::simulate::gateway::{GatewayArgs, simulate};
    use meterd::ingest::mqtt::{GatewayIngest, MqttConfig, client};
    use meterd::simulate::broker::Mosquitto;
    use meterd::vee::VeeConfig;
    use meterd_protocols::decode::Keys;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio_util::sync::CancellationToken;

    let Some(broker) = Mosquitto::start(false).unwrap() else {
        println!("pg_ingest: mosquitto is not installed; MQTT figures skipped");
        return;
    };
    let db = format!("bench_mqtt_{instances}");
    drop(store_on(cluster, &db));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    let mut progress = Vec::new();
    let token = CancellationToken::new();
    let cpu0 = cpu_seconds();
    for i in 0..instances {
        let store: Arc<dyn Store> = Arc::new(
            PgStore::open(&StoreConfig {
                url: Some(cluster.url(&db)),
                sslmode: SslMode::Disable,
                ..StoreConfig::default()
            })
            .unwrap(),
        );
        let (tx, rx) = tokio::sync::watch::channel(0u64);
        let ingest = GatewayIngest {
            store,
            config: Arc::new(MqttConfig {
                broker: broker.url(),
                client_id: format!("bench-meterd-{i}"),
                shared_group: Some("meterd".into()),
                batch_size: 2000,
                receive_maximum: 4000,
                batch_latency_ms: 5,
                ..MqttConfig::default()
            }),
            vee: Arc::new(VeeConfig::default()),
            intervals: Arc::new(Default::default()),
            keys: Arc::new(Keys::new()),
            progress: Some(tx),
        };
        let _in_runtime = rt.enter();
        tasks.push(rt.spawn(client::run(ingest, token.clone())));
        progress.push(rx);
    }
    // Sessions and subscriptions first.
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let args = GatewayArgs {
        broker: broker.url(),
        meters: 5_000,
        rate: 0.0,
        gateways: 3,
        count: Some(MQTT_MESSAGES),
        corrupt_rate: 0.02,
        seed: 1,
        topic_prefix: "meters".into(),
        manifest: None,
        tls: Default::default(),
        client_id: Some(format!("bench-sim-{instances}")),
    };
    rt.block_on(simulate(args)).unwrap();
    let published = started.elapsed();
    rt.block_on(async {
        loop {
            let done: u64 = progress.iter().map(|rx| *rx.borrow()).sum();
            if done >= MQTT_MESSAGES {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "MQTT ingest stalled at {done}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let took = started.elapsed();
    let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    token.cancel();
    for t in tasks {
        rt.block_on(t).unwrap().unwrap();
    }
    let shares: Vec<u64> = progress.iter().map(|rx| *rx.borrow()).collect();
    let reads = cluster.psql(&db, "SELECT count(*) FROM reads");
    println!(
        "pg_ingest: MQTT, {instances} instance(s): {MQTT_MESSAGES} messages committed and acked in {:.2} s = {:.0} msgs/s \
         (published in {:.2} s; per instance {shares:?}; {reads} reads stored){}",
        took.as_secs_f64(),
        MQTT_MESSAGES as f64 / took.as_secs_f64(),
        published.as_secs_f64(),
        cpu.map(|c| format!("; {c:.1} CPU s in this process (meterd + simulator)"))
            .unwrap_or_default()
    );
}
