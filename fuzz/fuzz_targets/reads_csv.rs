//! The CSV imports (`meterd reads import`, `meterd meters import`): any bytes give meters, reads
//! or an error naming the file, never a panic.
//! The checks live in `meterd::fuzz_checks`, shared with the corpus replay test.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| meterd::fuzz_checks::reads_csv(data));
