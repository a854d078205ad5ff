//! Reads/s through import + VEE + durable commit: 1,000,000 reads over 100,000 meters.
//!
//! Two measurements:
//! - criterion `ingest/month_of_100k_meters`: each iteration hands the next month's read of
//!   every one of 100,000 meters to `accept_reads` (in transactions of `CHUNK` reads) on a
//!   store that keeps growing; ten samples are ten months, i.e. 1,000,000 reads.
//! - `ingest/one_million_reads` (printed): a fresh store, 1,000,000 reads (10 per meter, in
//!   file order: month by month) through the same path as `meterd reads import`, timed once.
//!
//! Run: `cargo bench --bench ingest -- --warm-up-time 1 --measurement-time 3`

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
#[path = "support/fleet.rs"]
mod fleet;
use fleet::{METERS, meters, read};
use meterd::ingest::accept_reads;
use meterd::ingest::files::store_meters;
use meterd::model::Read;
use meterd::store::RedbStore;
use meterd::vee::VeeConfig;

const CHUNK: usize = 100_000;

fn fresh_store() -> (tempfile::TempDir, RedbStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open_dir(dir.path()).unwrap();
    store_meters(&store, &meters()).unwrap();
    (dir, store)
}

fn import(store: &RedbStore, config: &VeeConfig, reads: Vec<Read>) -> u64 {
    let mut n = 0;
    let mut rest = reads;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(CHUNK));
        n += accept_reads(store, config, std::mem::replace(&mut rest, tail))
            .unwrap()
            .imported;
    }
    n
}

fn month_of_reads(c: &mut Criterion) {
    let config = VeeConfig::default();
    let (_dir, store) = fresh_store();
    let mut month = 0i64;
    let mut group = c.benchmark_group("ingest");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(METERS as u64));
    group.bench_function("month_of_100k_meters", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let reads: Vec<Read> = (0..METERS).map(|i| read(i, month)).collect();
                month += 1;
                let t = Instant::now();
                assert_eq!(import(&store, &config, reads), METERS as u64);
                total += t.elapsed();
            }
            total
        })
    });
    group.finish();
}

/// CPU seconds (user + system) of this process so far, from /proc (Linux); the machine is
/// shared, so wall time alone says as much about the neighbours as about meterd.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn one_million(config: &VeeConfig) {
    let (_dir, store) = fresh_store();
    let reads: Vec<Read> = (0..10).flat_map(|m| (0..METERS).map(move |i| read(i, m))).collect();
    let n = reads.len();
    let cpu = cpu_seconds();
    let t = Instant::now();
    // The file importer's order: sorted by meter, then time, so each meter's reads arrive together.
    let mut sorted = reads;
    sorted.sort_by(|a, b| a.meter_id.cmp(&b.meter_id).then(a.read_at.cmp(&b.read_at)));
    let imported = import(&store, config, sorted);
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(imported as usize, n);
    println!(
        "ingest/one_million_reads: {n} reads over {METERS} meters in {secs:.2} s = {:.0} reads/s",
        n as f64 / secs
    );
    if let (Some(a), Some(b)) = (cpu, cpu_seconds()) {
        println!(
            "ingest/one_million_reads: {:.2} CPU s = {:.0} reads per CPU second",
            b - a,
            n as f64 / (b - a)
        );
    }
}

/// 1,000,000 hourly reads of one meter (AMI register reads; 114 years of them) through the same
/// path: the cost per read must not grow with the reads the meter already has, so this is
/// compared per read with [`one_million`].
fn one_meter(config: &VeeConfig) {
    let (_dir, store) = fresh_store();
    let start: jiff::Timestamp = "1990-01-01T00:00:00Z".parse().unwrap();
    let n = 1_000_000i64;
    let reads: Vec<Read> = (0..n)
        .map(|h| {
            let mut r = read(0, 0);
            r.read_at = start + jiff::SignedDuration::from_hours(h);
            let value = 1000 + h * 10 + (h * 7) % 5;
            r.value = meterd::model::Quantity::from_units(value).unwrap();
            r.raw = value.to_string();
            r
        })
        .collect();
    let cpu = cpu_seconds();
    let t = Instant::now();
    let imported = import(&store, config, reads);
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(imported as i64, n);
    println!(
        "ingest/one_meter_million_reads: {n} hourly reads of one meter in {secs:.2} s = {:.0} reads/s",
        n as f64 / secs
    );
    if let (Some(a), Some(b)) = (cpu, cpu_seconds()) {
        println!(
            "ingest/one_meter_million_reads: {:.2} CPU s = {:.0} reads per CPU second",
            b - a,
            n as f64 / (b - a)
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    month_of_reads(&mut c);
    c.final_summary();
    // `cargo test --benches` runs this binary with `--bench` absent: keep that quick.
    if std::env::args().any(|a| a == "--bench") {
        one_million(&VeeConfig::default());
        one_meter(&VeeConfig::default());
    } else if std::env::args().any(|a| a == "one_meter") {
        one_meter(&VeeConfig::default());
    }
}
