//! Pulling a batch of 100,000 reads through the billing API on loopback, batch creation
//! included: a fresh copy of a seeded store per pull, a real HTTP request, the whole body
//! read. Target: under 1 s each for JSON and CSV on 2 cores.
//!
//! `cargo bench --bench billing_pull`

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::Timestamp;
use meterd::billing::http::{ApiState, HttpConfig, serve};
use meterd::model::{Meter, MeterStatus, Origin, Quantity, Read, ReadType, Service};
use meterd::store::{RedbStore, STORE_FILE, Store};
use meterd::vee::VeeConfig;
use tokio_util::sync::CancellationToken;

const READS: usize = 100_000;

fn seed(dir: &std::path::Path) -> String {
    let store = RedbStore::open_dir(dir).unwrap();
    let mut txn = store.begin_write().unwrap();
    for i in 0..READS {
        txn.put_meter(&Meter {
            meter_id: format!("W{i:07}"),
            account: format!("{:010}", 5_000_000 + i),
            route: format!("R{:03}", i / 500),
            sequence: (i % 500) as u32,
            service: Service::Water,
            unit: "gal".into(),
            dials: 8,
            decimals: 0,
            multiplier: Quantity::from_units(1).unwrap(),
            status: MeterStatus::Active,
            address: format!("{} Elm St", i),
            notes: String::new(),
        })
        .unwrap();
    }
    txn.commit().unwrap();
    let at: Timestamp = "2026-11-02T13:45:00Z".parse().unwrap();
    for chunk in (0..READS).collect::<Vec<_>>().chunks(20_000) {
        let reads = chunk
            .iter()
            .map(|&i| Read {
                meter_id: format!("W{i:07}"),
                read_at: at,
                value: Quantity::from_units(10_000 + i as i64).unwrap(),
                raw: (10_000 + i).to_string(),
                read_type: ReadType::Radio,
                codes: vec![],
                reader: Some("HH-07".into()),
                origin: Origin::file_line("route.csv", i as u64 + 1),
            })
            .collect();
        meterd::ingest::accept_reads(&store, &VeeConfig::default(), reads).unwrap();
    }
    meterd::billing::tokens::create(&store, "cis", Timestamp::now()).unwrap()
}

fn pull(c: &mut Criterion) {
    let seeded = tempfile::tempdir().unwrap();
    let token = seed(seeded.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    let mut group = c.benchmark_group("billing_pull_100k");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(5));
    for format in ["json", "csv"] {
        group.bench_function(format, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // Untimed: a fresh copy of the seeded store (no read batched yet) and a server.
                    let dir = tempfile::tempdir().unwrap();
                    std::fs::copy(seeded.path().join(STORE_FILE), dir.path().join(STORE_FILE)).unwrap();
                    let store: Arc<dyn Store> = Arc::new(RedbStore::open_dir(dir.path()).unwrap());
                    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                    let url = format!(
                        "http://{}/v1/batches/next?max={READS}&format={format}",
                        listener.local_addr().unwrap()
                    );
                    let stop = CancellationToken::new();
                    let state = ApiState::new(store, &HttpConfig::default()).unwrap();
                    rt.spawn(serve(listener, None, state, stop.clone()));
                    let start = Instant::now();
                    let body = rt.block_on(async {
                        http.get(&url)
                            .bearer_auth(&token)
                            .send()
                            .await
                            .unwrap()
                            .bytes()
                            .await
                            .unwrap()
                    });
                    total += start.elapsed();
                    assert!(body.len() > READS * 50, "{} bytes", body.len());
                    stop.cancel();
                }
                total
            })
        });
    }
    // Where the time goes: batch creation alone (store work, committed), and rendering alone.
    let mut doc = None;
    group.bench_function("create_batch_only", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                std::fs::copy(seeded.path().join(STORE_FILE), dir.path().join(STORE_FILE)).unwrap();
                let store = RedbStore::open_dir(dir.path()).unwrap();
                let start = Instant::now();
                let d = meterd::billing::pull(&store, "cis", READS, Timestamp::now())
                    .unwrap()
                    .unwrap();
                total += start.elapsed();
                assert_eq!(d.contents.lines.len(), READS);
                doc = Some(d);
            }
            total
        })
    });
    let doc = doc.unwrap();
    for (name, format) in [
        ("render_json_only", meterd::billing::render::Format::Json),
        ("render_csv_only", meterd::billing::render::Format::Csv),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| meterd::billing::render::render(&doc, &format).unwrap().len())
        });
    }
    group.finish();
}

criterion_group!(benches, pull);
criterion_main!(benches);
