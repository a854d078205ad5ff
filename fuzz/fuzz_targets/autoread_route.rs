//! The Sensus AutoRead route import (`meterd meters import --format autoread`): any bytes give
//! meters or an error naming the file and line, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use meterd::ingest::files::{RouteFileOptions, parse_sensus_route_bytes};

fuzz_target!(|data: &[u8]| {
    let _ = parse_sensus_route_bytes("ROUTE01.DAT", data.to_vec(), &RouteFileOptions::default());
});
