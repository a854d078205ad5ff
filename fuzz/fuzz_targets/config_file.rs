//! The configuration file: any text is a configuration or an error, never a panic; an accepted
//! configuration prints (`meterd check-config`) and reads back as itself.
//! The checks live in `meterd::fuzz_checks`, shared with the corpus replay test.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| meterd::fuzz_checks::config_file(data));
