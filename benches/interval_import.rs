//! One day of 15-minute interval data for 100,000 meters (9.6 million values) through
//! `intervals import`'s path: the NEM12 file checked whole (first pass), then parsed again,
//! merged, run through interval VEE and estimation, and committed durably in chunks (second
//! pass). 1 % of the meters have a one-hour gap (interpolated), 0.5 % a spike (held). The
//! previous day is imported first (so VEE has history to read), then the measured day.
//!
//! Run: `cargo bench --bench interval_import -- redb` (the embedded store) or `-- pg` (a
//! private PostgreSQL server, see `support/pg_cluster.rs`). Prints the time of each import and
//! the process's peak resident memory (which includes the file's bytes, as the daemon holds an
//! upload). `METERD_BENCH_METERS` changes the number of meters. `cargo test --benches` runs it
//! with 2,000 meters as a smoke test.

use std::fmt::Write as _;
use std::time::Instant;

use meterd::ingest::interval_files::{IntervalFormat, import_bytes};
use meterd::store::Store;
use meterd::vee::interval::IntervalConfig;

#[path = "support/pg_cluster.rs"]
mod pg_cluster;

/// A NEM12 file of one 15-minute day (UTC) for `meters` meters.
fn nem12_day(meters: usize, date: &str, seed: u64) -> Vec<u8> {
    let mut s = String::with_capacity(meters * 620);
    s.push_str("100,NEM12,202611010000,MDP1,RET1\r\n");
    for m in 0..meters {
        let _ = write!(s, "200,NMI{m:07},E1,1,E1,N1,S{m:07},KWH,15,\r\n300,{date}");
        let gap = m % 100 == 7;
        let spike = m % 200 == 11;
        for i in 0..96usize {
            // A daily shape: low at night, a morning and an evening peak, a little noise.
            let base = 120 + 80 * usize::from((28..36).contains(&i)) + 150 * usize::from((68..84).contains(&i));
            let noise = ((m as u64 * 31 + i as u64 * 17 + seed) % 23) as usize;
            let v = if spike && i == 72 { 4_000 } else { base + noise };
            let _ = write!(s, ",{}.{:03}", v / 1000, v % 1000);
        }
        if gap {
            // Intervals 41–44 null: a 400-record day.
            s.push_str(",V,,,20261101000000,\r\n400,1,40,A,,\r\n400,41,44,N,,\r\n400,45,96,A,,\r\n");
        } else {
            s.push_str(",A,,,20261101000000,\r\n");
        }
    }
    s.push_str("900\r\n");
    s.into_bytes()
}

/// The process's peak resident memory (`VmHWM` of /proc/self/status), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn run(store: &dyn Store, meters: usize) {
    let config: IntervalConfig = toml::from_str("time_zone = \"UTC\"").unwrap();
    for (date, label) in [("20261102", "history day"), ("20261103", "measured day")] {
        let bytes = nem12_day(meters, date, date.len() as u64 + u64::from(date.as_bytes()[7]));
        let start = Instant::now();
        let report = import_bytes(
            store,
            &config,
            "bench.csv",
            &bytes,
            Some(IntervalFormat::Nem12),
            2_000,
            &mut |_| {},
        )
        .unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(report.days, meters as u64);
        println!(
            "interval_import: {label}: {meters} meter-days, {} values, {} MB file: {secs:.1} s \
             ({:.0} values/s); {} validated, {} estimated, {} held; peak RSS so far {:.0} MiB",
            report.values,
            bytes.len() / 1_000_000,
            report.values as f64 / secs,
            report.validated,
            report.estimated,
            report.flagged,
            peak_rss_mib()
        );
    }
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let meters: usize = std::env::var("METERD_BENCH_METERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 2_000 } else { 100_000 });
    let pg = std::env::args().any(|a| a == "pg");
    if pg {
        let cluster = pg_cluster::Cluster::start();
        cluster.psql("postgres", "CREATE DATABASE bench");
        let store = meterd::store::postgres::PgStore::open(&meterd::store::postgres::StoreConfig {
            url: Some(cluster.url("bench")),
            sslmode: meterd::store::postgres::SslMode::Disable,
            ..Default::default()
        })
        .unwrap();
        println!("interval_import: PostgreSQL");
        run(&store, meters);
    } else {
        let dir = tempfile::tempdir().unwrap();
        let store = meterd::store::RedbStore::open_dir(dir.path()).unwrap();
        println!("interval_import: redb");
        run(&store, meters);
    }
}
