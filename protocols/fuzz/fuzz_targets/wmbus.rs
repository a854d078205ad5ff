//! Wireless M-Bus: CRC stripping and the whole layer stack, with keys for the ids the fuzzer is
//! likely to build so the decryption paths run too.
//! The checks live in `meterd_protocols::fuzz_checks`, shared with the corpus replay test.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| meterd_protocols::fuzz_checks::wmbus(data));
