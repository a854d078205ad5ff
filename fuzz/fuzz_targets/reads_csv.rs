//! The CSV imports (`meterd reads import`, `meterd meters import`): any bytes give meters, reads
//! or an error naming the file, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use meterd::ingest::files::{parse_meters_csv_bytes, parse_reads_csv_bytes};

fuzz_target!(|data: &[u8]| {
    let _ = parse_reads_csv_bytes("fuzz.csv", data);
    let _ = parse_meters_csv_bytes("fuzz.csv", data);
});
