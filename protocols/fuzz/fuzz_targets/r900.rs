#![no_main]
use libfuzzer_sys::fuzz_target;
use meterd_protocols::ert::r900::{self, R900};

// An accepted R900 re-encodes to the same bytes; chips and digits never panic.
fuzz_target!(|data: &[u8]| {
    if let Ok(m) = R900::parse(data) {
        assert_eq!(m.encode().as_slice(), data);
        let _ = (m.to_decoded(false), m.to_decoded(true));
    }
    if let Ok(chips) = <[u8; 21]>::try_from(data) {
        let _ = r900::digits_from_chips(&chips)
            .and_then(|d| r900::symbols_from_digits(&d))
            .and_then(|s| R900::from_symbols(&s));
    }
});
