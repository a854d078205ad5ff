//! Text protocols: IEC 62056-21 readouts and DSMR P1 telegrams decoded per second, the P1 stream
//! splitter, and a whole simulated probe session (state machines only, no line time).
//!
//! `cargo bench -p meterd-protocols --bench text -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use meterd_protocols::dsmr::{self, Splitter};
use meterd_protocols::iec62056_21::meter::{MeterConfig, MeterSim};
use meterd_protocols::iec62056_21::{self, Action};
use meterd_protocols::iec62056_21::{ProbeConfig, ProbeSession, dataset};

const E350: &[u8] = include_bytes!("../../firmware-fixtures/iec62056-21/landis-gyr-e350/readout.in");
const EK280: &[u8] = include_bytes!("../../firmware-fixtures/iec62056-21/elster-ek280/readout.in");
const DSMR5: &[u8] = include_bytes!("../../firmware-fixtures/dsmr/iskra-mt382/v5.in");
const DSMR42: &[u8] = include_bytes!("../../firmware-fixtures/dsmr/kaifa-ma105/v4.2.in");

fn iec(c: &mut Criterion) {
    let mut g = c.benchmark_group("iec62056-21");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode E350 readout (9 data sets)", |b| {
        b.iter(|| iec62056_21::decode(black_box(E350)).unwrap())
    });
    g.bench_function("decode EK280 readout (2 data sets)", |b| {
        b.iter(|| iec62056_21::decode(black_box(EK280)).unwrap())
    });
    g.bench_function("probe session vs meter simulator (readout)", |b| {
        let ident = iec62056_21::message::Identification::parse(E350).unwrap().1;
        let block = &E350[E350.iter().position(|&x| x == 2).unwrap() + 1..];
        let sets = dataset::parse_lines(block).unwrap();
        let meter_cfg = MeterConfig::new(ident, sets);
        b.iter(|| session(ProbeConfig::default(), meter_cfg.clone()));
    });
    g.finish();
}

/// Pumps bytes between the two machines in virtual time: sends arrive at once, and when both
/// are quiet the earlier of the two armed timers fires.
fn session(probe_cfg: ProbeConfig, meter_cfg: MeterConfig) -> usize {
    let mut probe = ProbeSession::new(probe_cfg);
    let mut meter = MeterSim::new(meter_cfg);
    probe.start();
    let mut now = Duration::ZERO;
    let (mut probe_timer, mut meter_timer): (Option<Duration>, Option<Duration>) = (None, None);
    while !probe.is_done() {
        let mut moved = false;
        while let Some(a) = probe.poll_action() {
            match a {
                Action::Send(bytes) => {
                    meter.on_bytes(&bytes);
                    moved = true;
                }
                Action::Timer(d) => probe_timer = Some(now + d),
                Action::CancelTimer => probe_timer = None,
                _ => {}
            }
        }
        while let Some(a) = meter.poll_action() {
            match a {
                Action::Send(bytes) => {
                    probe.on_bytes(&bytes);
                    moved = true;
                }
                Action::Timer(d) => meter_timer = Some(now + d),
                Action::CancelTimer => meter_timer = None,
                _ => {}
            }
        }
        if !moved {
            match (probe_timer, meter_timer) {
                (Some(p), Some(m)) if m <= p => {
                    now = m;
                    meter_timer = None;
                    meter.on_timeout();
                }
                (Some(p), _) => {
                    now = p;
                    probe_timer = None;
                    probe.on_timeout();
                }
                (None, Some(m)) => {
                    now = m;
                    meter_timer = None;
                    meter.on_timeout();
                }
                (None, None) => break,
            }
        }
    }
    probe
        .take_outcome()
        .expect("session ended")
        .expect("session succeeded")
        .data
        .len()
}

fn dsmr(c: &mut Criterion) {
    let mut g = c.benchmark_group("dsmr");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode DSMR 5 telegram (40 objects)", |b| {
        b.iter(|| dsmr::decode(black_box(DSMR5)).unwrap())
    });
    g.bench_function("decode DSMR 4.2 telegram (36 objects)", |b| {
        b.iter(|| dsmr::decode(black_box(DSMR42)).unwrap())
    });
    g.bench_function("split P1 stream in 64-byte reads", |b| {
        b.iter(|| {
            let mut s = Splitter::default();
            let mut n = 0;
            for chunk in DSMR5.chunks(64) {
                s.push(chunk);
                while s.next_event().is_some() {
                    n += 1;
                }
            }
            assert_eq!(n, 1);
        })
    });
    g.finish();
}

criterion_group!(benches, iec, dsmr);
criterion_main!(benches);
