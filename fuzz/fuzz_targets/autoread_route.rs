//! The Sensus AutoRead route import (`meterd meters import --format autoread`): any bytes give
//! meters or an error naming the file and line, never a panic.
//! The checks live in `meterd::fuzz_checks`, shared with the corpus replay test.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| meterd::fuzz_checks::autoread_route(data));
