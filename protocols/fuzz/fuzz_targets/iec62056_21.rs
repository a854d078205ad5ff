//! IEC 62056-21: the readout decoder, the message parsers, the data set grammar (emit → reparse
//! must give the same data sets), and both session state machines fed arbitrary bytes.
//! The checks live in `meterd_protocols::fuzz_checks`, shared with the corpus replay test.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| meterd_protocols::fuzz_checks::iec62056_21(data));
