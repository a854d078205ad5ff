//! Frame decoder: arbitrary bytes must never panic, and every frame it yields must re-encode
//! to bytes that parse back to the same frame.
//! The checks live in `meterd_protocols::fuzz_checks`, shared with the corpus replay test.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| meterd_protocols::fuzz_checks::cradle_frame(data));
