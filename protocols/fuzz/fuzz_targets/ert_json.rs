//! The checks live in `meterd_protocols::fuzz_checks`, shared with the corpus replay test.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| meterd_protocols::fuzz_checks::ert_json(data));
