//! Frames per second for the ERT parsers: the typed parse (checks + fields) and the full
//! conversion to `Decoded`, per protocol, on the published vectors (firmware-fixtures/ert). Target: SCM typed parse
//! ≥ 5 million frames/s on one core.
//!
//! `cargo bench -p meterd-protocols --bench ert -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use meterd_protocols::decode::Keys;
use meterd_protocols::ert::idm::{Idm, NetIdm};
use meterd_protocols::ert::r900::R900;
use meterd_protocols::ert::scm::Scm;
use meterd_protocols::ert::scm_plus::ScmPlus;
use meterd_protocols::ert::{self, idm, r900, scm, scm_plus};

const SCM: &str = "F95306F008951840EA0C101A";
const SCM_PLUS: &str = "16A31EAB0410D35B00001AE3490039BE";
const IDM: &str = "555516A31C5CC6041700AC171DF6BC020100EF0900000000000000000000053004000000000000000000000000000000000000000000000000000000008000000000000000000000200000000000000000000008000001DCEABA7C37";
const R900_FRAME: &str = "5C24BB46A384062DFA0035B96E80";
const RTLAMR_SCM: &str = r#"{"Time":"2020-02-07T22:09:28.963747635-05:00","Offset":0,"Length":0,"Type":"SCM","Message":{"ID":22277181,"Type":7,"TamperPhy":1,"TamperEnc":0,"Consumption":7329333,"ChecksumVal":63807}}"#;

fn frames(c: &mut Criterion) {
    let scm_frame = hex::decode(SCM).unwrap();
    let scm_plus_frame = hex::decode(SCM_PLUS).unwrap();
    let idm_frame = hex::decode(IDM).unwrap();
    let r900_frame = hex::decode(R900_FRAME).unwrap();

    let mut g = c.benchmark_group("ert_typed_parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("scm", |b| b.iter(|| Scm::parse(black_box(&scm_frame)).unwrap()));
    g.bench_function("scm+", |b| {
        b.iter(|| ScmPlus::parse(black_box(&scm_plus_frame)).unwrap())
    });
    g.bench_function("idm", |b| b.iter(|| Idm::parse(black_box(&idm_frame)).unwrap()));
    g.bench_function("netidm", |b| b.iter(|| NetIdm::parse(black_box(&idm_frame)).unwrap()));
    g.bench_function("r900", |b| b.iter(|| R900::parse(black_box(&r900_frame)).unwrap()));
    g.finish();

    let mut g = c.benchmark_group("ert_decoded");
    g.throughput(Throughput::Elements(1));
    g.bench_function("scm", |b| b.iter(|| scm::decode(black_box(&scm_frame)).unwrap()));
    g.bench_function("scm+", |b| {
        b.iter(|| scm_plus::decode(black_box(&scm_plus_frame)).unwrap())
    });
    g.bench_function("idm", |b| b.iter(|| idm::decode(black_box(&idm_frame), false).unwrap()));
    g.bench_function("r900", |b| {
        b.iter(|| r900::decode(black_box(&r900_frame), false).unwrap())
    });
    let keys = Keys::new();
    g.bench_function("rtlamr_json_scm", |b| {
        b.iter(|| ert::decode_json_line(black_box(RTLAMR_SCM), &keys).unwrap())
    });
    g.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
