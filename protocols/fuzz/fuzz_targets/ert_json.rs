#![no_main]
use libfuzzer_sys::fuzz_target;
use meterd_protocols::decode::Keys;
use meterd_protocols::ert::{Envelope, parse_json_line};

// rtlamr lines, rtl_433 lines and gateway envelopes: any text gives a read or an error, never a panic.
fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = parse_json_line(line, &Keys::new());
        let _ = Envelope::parse(line);
    }
});
