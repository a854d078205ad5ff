//! Unload efficiency over a real pseudo-terminal pair: 2,000 reads from a simulated recorder
//! (bytes paced at 115200 baud 8N1, 10 ms turnaround before it answers) into meterd's driver
//! and the real store, for both firmwares. Measured: time from HELLO (`Docked`) to the end of
//! the unload (`UnloadComplete`), against the time the encoded read records alone need at line
//! rate. The ratio is printed per firmware (target for firmware 2: ≤ 1.15).
//!
//! Run: `cargo bench --bench cradle_unload`

use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{Criterion, SamplingMode};
use meterd::ingest::cradle::{Observer, SessionOptions, convert, run_session};
use meterd::ingest::files;
use meterd::simulate::recorder::SimulatedRecorder;
use meterd::store::{RedbStore, Store};
use meterd::vee::VeeConfig;
use meterd_protocols::cradle::sim::{XorShift64, read_routes};
use meterd_protocols::cradle::{Firmware, HostEvent, LineTiming, RecorderConfig, RecorderData};
use tokio_util::sync::CancellationToken;

const READS: usize = 2_000;
const BAUD: u32 = 115_200;
const TURNAROUND: Duration = Duration::from_millis(10);

/// Times the unload phase of a session.
#[derive(Default)]
struct UnloadClock {
    docked: Option<Duration>,
    done: Option<Duration>,
}

impl Observer for UnloadClock {
    fn event(&mut self, event: &HostEvent, elapsed: Duration) {
        match event {
            HostEvent::Docked(_) => self.docked = Some(elapsed),
            HostEvent::UnloadComplete { .. } => self.done = Some(elapsed),
            _ => {}
        }
    }
}

fn recorder_data(store: &RedbStore, fw: Firmware) -> (RecorderData, Duration) {
    let (route, _) = convert::build_route(
        store.begin_read().unwrap().as_ref(),
        &VeeConfig::default(),
        "E01",
        jiff::Timestamp::now(),
    )
    .unwrap();
    let mut data = RecorderData {
        routes: vec![route],
        ..RecorderData::default()
    };
    let mut rng = XorShift64::new(11);
    let now = convert::local_civil_now(&jiff::tz::TimeZone::UTC);
    let mut day = 0;
    while data.reads.len() < READS {
        read_routes(&mut data, &mut rng, now - 86_400 * (100 - day)).unwrap();
        day += 1;
    }
    data.reads.truncate(READS);
    data.next_seq = READS as u32;
    let payload: usize = data.reads.iter().map(|r| fw.read_len(r)).sum();
    (data, LineTiming::new(BAUD, TURNAROUND).bytes_time(payload))
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open_dir(&dir.path().join("store")).unwrap());
    let (meters_file, reads_file) = meterd::demo::write_files(dir.path()).unwrap();
    files::store_meters(store.as_ref(), &files::parse_meters_csv(&meters_file).unwrap()).unwrap();
    files::import_reads_file(store.as_ref(), &VeeConfig::default(), &reads_file, 10_000, &mut |_| {}).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let timing = LineTiming::new(BAUD, TURNAROUND);

    let mut group = c.benchmark_group("cradle_unload");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    for fw in [Firmware::V2, Firmware::V1] {
        let (data, line_time) = recorder_data(&store, fw);
        let ratios = Arc::new(Mutex::new(Vec::new()));
        let mut serial = 0u32;
        group.bench_function(format!("{fw:?}_2000_reads_115200"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // A new recorder each time, so every unload is a full one.
                    serial += 1;
                    let mut sim = SimulatedRecorder::new(
                        RecorderConfig::new(&format!("B{fw:?}-{serial}"), fw, timing),
                        data.clone(),
                        0.0,
                        3,
                    );
                    let mut clock = UnloadClock::default();
                    runtime.block_on(async {
                        let (recorder_end, cradle_end) = tokio_serial::SerialStream::pair().unwrap();
                        let never = CancellationToken::new();
                        let host = run_session(
                            cradle_end,
                            store.clone() as Arc<dyn Store>,
                            Arc::new(VeeConfig::default()),
                            SessionOptions::new("bench", timing),
                            never.clone(),
                            &mut clock,
                        );
                        let (report, _) = tokio::join!(host, sim.serve(recorder_end, &never));
                        let report = report.unwrap();
                        assert!(report.finished.is_some(), "session finished");
                        let link = sim.stats();
                        if link.retransmissions > 0 {
                            eprintln!(
                                "{fw:?}: {} retransmissions, {} timeouts, {} NAKs received",
                                link.retransmissions, link.timeouts, link.naks_received
                            );
                        }
                    });
                    let took = clock.done.unwrap() - clock.docked.unwrap();
                    ratios
                        .lock()
                        .unwrap()
                        .push(took.as_secs_f64() / line_time.as_secs_f64());
                    total += took;
                }
                total
            })
        });
        let mut r = ratios.lock().unwrap().clone();
        if r.is_empty() {
            continue;
        }
        r.sort_by(f64::total_cmp);
        let median = r[r.len() / 2];
        let mean = r.iter().sum::<f64>() / r.len() as f64;
        let max = r.iter().cloned().fold(0.0, f64::max);
        println!(
            "cradle_unload {fw:?}: payload line time {:.3} s; unload/line-rate ratio median {median:.3}, mean {mean:.3}, max {max:.3} over {} unloads",
            line_time.as_secs_f64(),
            r.len()
        );
    }
    group.finish();
}

criterion::criterion_group!(benches, bench);
criterion::criterion_main!(benches);
