//! Cradle link throughput: frame encode/decode, record encode/parse per firmware, and the CPU
//! cost of simulating a whole 2,000-read unload. The unload *efficiency* (virtual line time vs
//! payload at line rate) is deterministic and printed once before the timed runs; it is
//! asserted by the `windowed_unload_of_2000_reads_is_within_115_percent_of_line_rate` test.
//!
//! Run: `cargo bench -p meterd-protocols --bench cradle -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use meterd_protocols::cradle::frame::{Frame, FrameDecoder, FrameKind};
use meterd_protocols::cradle::sim::{HostApp, LineConfig, Simulation, XorShift64, read_routes, sample_route};
use meterd_protocols::cradle::{
    Firmware, HostConfig, HostEvent, LineTiming, Message, ReadRecord, Recorder, RecorderConfig, RecorderData,
};

fn reads(n: usize) -> Vec<ReadRecord> {
    let route = sample_route("B01", n, &mut XorShift64::new(1));
    let mut data = RecorderData {
        routes: vec![route],
        ..Default::default()
    };
    read_routes(&mut data, &mut XorShift64::new(2), 1_795_339_805).unwrap();
    data.reads
}

fn timing() -> LineTiming {
    LineTiming::new(115_200, Duration::from_millis(10))
}

/// Simulates an unload of `reads` and returns (unload time, payload time at line rate).
fn unload(fw: Firmware, reads: &[ReadRecord]) -> (Duration, Duration) {
    let data = RecorderData {
        reads: reads.to_vec(),
        next_seq: reads.len() as u32,
        ..Default::default()
    };
    let recorder = Recorder::new(RecorderConfig::new("HH-B", fw, timing()), data);
    let line = LineConfig {
        timing: timing(),
        corrupt_rate: 0.0,
        seed: 1,
    };
    let mut sim = Simulation::new(line, HostConfig::new(timing(), 1, 0), recorder, HostApp::new(vec![]));
    sim.run(Duration::from_secs(3600));
    let start = sim.app.time_of(|e| matches!(e, HostEvent::Docked(_))).unwrap();
    let end = sim
        .app
        .time_of(|e| matches!(e, HostEvent::UnloadComplete { .. }))
        .unwrap();
    let payload: usize = reads.iter().map(|r| fw.read_len(r)).sum();
    (end - start, timing().bytes_time(payload))
}

fn bench(c: &mut Criterion) {
    let reads = reads(2000);
    for fw in [Firmware::V1, Firmware::V2] {
        let (took, line_rate) = unload(fw, &reads);
        println!(
            "unload efficiency {fw:?}: 2000 reads in {:.3} s virtual, payload at line rate {:.3} s, ratio {:.3}",
            took.as_secs_f64(),
            line_rate.as_secs_f64(),
            took.as_secs_f64() / line_rate.as_secs_f64()
        );
    }

    // 512-byte payloads of binary reads, as firmware 2 sends them.
    let batch = Message::Reads(reads[..14].to_vec()).encode(Firmware::V2).unwrap();
    let frames: Vec<Vec<u8>> = (0..64u32)
        .map(|s| Frame::new(FrameKind::Data, s * 512, batch.clone()).encode().unwrap())
        .collect();
    let stream: Vec<u8> = frames.concat();

    let mut g = c.benchmark_group("cradle_frame");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("encode_64_frames", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(stream.len());
            for s in 0..64u32 {
                Frame::new(FrameKind::Data, s, black_box(batch.clone()))
                    .encode_into(&mut out)
                    .unwrap();
            }
            out
        })
    });
    g.bench_function("decode_64_frames_in_256_byte_reads", |b| {
        b.iter(|| {
            let mut dec = FrameDecoder::new();
            let mut n = 0;
            for chunk in black_box(&stream).chunks(256) {
                dec.push(chunk);
                while let Some(f) = dec.next_frame() {
                    n += f.unwrap().payload.len();
                }
            }
            n
        })
    });
    g.finish();

    let mut g = c.benchmark_group("cradle_records");
    for fw in [Firmware::V1, Firmware::V2] {
        let encoded: Vec<u8> = {
            let mut out = Vec::new();
            for r in &reads {
                fw.emit_read(r, &mut out).unwrap();
            }
            out
        };
        g.throughput(Throughput::Bytes(encoded.len() as u64));
        g.bench_function(format!("emit_2000_reads_{fw:?}"), |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(encoded.len());
                for r in black_box(&reads) {
                    fw.emit_read(r, &mut out).unwrap();
                }
                out
            })
        });
        g.bench_function(format!("parse_2000_reads_{fw:?}"), |b| {
            b.iter(|| {
                let mut rest = black_box(&encoded[..]);
                let mut n = 0;
                while !rest.is_empty() {
                    let (r, next) = fw.parse_read(rest).unwrap();
                    n += r.seq as usize;
                    rest = next;
                }
                n
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("cradle_session");
    g.sample_size(10);
    g.bench_function("simulate_unload_2000_reads_V2", |b| {
        b.iter(|| unload(Firmware::V2, black_box(&reads)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
