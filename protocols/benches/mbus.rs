//! Wired and wireless M-Bus throughput, side by side with the `m-bus-parser` crate on the same
//! frames. Run: `cargo bench -p meterd-protocols --bench mbus -- --warm-up-time 1 --measurement-time 3`.
//!
//! Two levels for meterd: `parse` peels every layer (checksum/CRC, decryption) and walks every
//! record (what m-bus-parser does when its records are iterated); `decode` also builds the
//! `Decoded` output (owned strings and JSON values, where most of the time goes).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use m_bus_parser::mbus_data::MbusData;
use m_bus_parser::{WiredFrame, WirelessFrame};
use meterd_protocols::decode::Keys;
use meterd_protocols::mbus::frame::{self, Frame};
use meterd_protocols::mbus::record::Records;
use meterd_protocols::{mbus, wmbus};

const W1: &str = "681F1F680802727856341224400107550000000313153100DA023B13018B60043718021816";
const W4: &str = "68202068 08FD72785634129315 33032A0000000C14270485 02046D32371F1502FD17000089 16";
const R1: &str = "1844AE4C4455223368077A55000000041389E20100023B0000";
const R5: &str = "3944FA122162092002067A3600202567C94D48D00DC47B11213E23383DB51968A705AAFA60C60E263D50CD259D7C9A03FD0C08000002FD0B0011";
const R5_KEY: [u8; 16] = [
    0xBE, 0xDB, 0x81, 0xB5, 0x2C, 0x29, 0xB5, 0xC1, 0x43, 0x38, 0x8C, 0xBB, 0x0D, 0x15, 0xA0, 0x51,
];

fn bytes(hex: &str) -> Vec<u8> {
    hex::decode(hex.replace(' ', "")).unwrap()
}

/// Walks every record, failing on a bad one.
fn consume<T, E: std::fmt::Debug>(records: impl Iterator<Item = Result<T, E>>) -> usize {
    let mut n = 0;
    for r in records {
        black_box(r.unwrap());
        n += 1;
    }
    n
}

/// meterd, link layer + every record, no output building.
fn meterd_parse_wired(f: &[u8]) -> usize {
    let (Frame::Long { data, .. }, _) = frame::parse(f).unwrap() else {
        unreachable!()
    };
    consume(Records::new(&data[12..]))
}

/// m-bus-parser, frame + application layer + every record.
fn other_parse_wired(f: &[u8]) -> usize {
    let parsed = MbusData::<WiredFrame<'_>>::try_from(f).unwrap();
    parsed.data_records.map_or(0, consume)
}

/// meterd, all layers (with decryption) + every record, no output building.
fn meterd_parse_wireless(f: &[u8], keys: &Keys) -> usize {
    consume(wmbus::parse(f, keys).unwrap().records())
}

fn other_parse_wireless(f: &[u8]) -> usize {
    let parsed = MbusData::<WirelessFrame<'_>>::try_from(f).unwrap();
    parsed.data_records.map_or(0, consume)
}

fn wired(c: &mut Criterion) {
    let mut g = c.benchmark_group("mbus_wired");
    g.throughput(Throughput::Elements(1));
    for (name, hex) in [("W1", W1), ("W4", W4)] {
        let f = bytes(hex);
        assert_eq!(
            meterd_parse_wired(&f),
            other_parse_wired(&f),
            "both parsers see the same records"
        );
        g.bench_function(format!("meterd_parse/{name}"), |b| {
            b.iter(|| meterd_parse_wired(black_box(&f)))
        });
        g.bench_function(format!("meterd_decode/{name}"), |b| {
            b.iter(|| mbus::decode(black_box(&f)).unwrap())
        });
        g.bench_function(format!("m-bus-parser/{name}"), |b| {
            b.iter(|| other_parse_wired(black_box(&f)))
        });
    }
    g.finish();
}

fn wireless(c: &mut Criterion) {
    let mut g = c.benchmark_group("wmbus");
    g.throughput(Throughput::Elements(1));
    let none = Keys::new();
    let r1 = bytes(R1);
    assert_eq!(other_parse_wireless(&r1), 2);
    assert_eq!(meterd_parse_wireless(&r1, &none), 2);
    g.bench_function("meterd_parse/R1_plain", |b| {
        b.iter(|| meterd_parse_wireless(black_box(&r1), &none))
    });
    g.bench_function("meterd_decode/R1_plain", |b| {
        b.iter(|| wmbus::decode(black_box(&r1), &none).unwrap())
    });
    g.bench_function("m-bus-parser/R1_plain", |b| {
        b.iter(|| other_parse_wireless(black_box(&r1)))
    });
    let r5 = bytes(R5);
    let mut keys = Keys::new();
    keys.insert("20096221", R5_KEY);
    g.bench_function("meterd_parse/R5_mode5_aes", |b| {
        b.iter(|| meterd_parse_wireless(black_box(&r5), &keys))
    });
    g.bench_function("meterd_decode/R5_mode5_aes", |b| {
        b.iter(|| wmbus::decode(black_box(&r5), &keys).unwrap())
    });
    g.finish();
}

criterion_group!(benches, wired, wireless);
criterion_main!(benches);
