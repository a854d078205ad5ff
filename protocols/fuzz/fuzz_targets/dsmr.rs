//! DSMR P1: the telegram decoder and the stream splitter (which must account for every byte:
//! what it returns as telegrams and discards adds up to what was pushed).
//! The checks live in `meterd_protocols::fuzz_checks`, shared with the corpus replay test.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| meterd_protocols::fuzz_checks::dsmr(data));
