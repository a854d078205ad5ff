//! Record and message parsers of both firmwares: never panic; whatever parses re-emits to the
//! same bytes and reparses to the same value.
//! The checks live in `meterd_protocols::fuzz_checks`, shared with the corpus replay test.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| meterd_protocols::fuzz_checks::cradle_records(data));
