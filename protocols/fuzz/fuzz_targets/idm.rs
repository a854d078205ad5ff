#![no_main]
use libfuzzer_sys::fuzz_target;
use meterd_protocols::ert::idm::{Idm, NetIdm};

// Both layouts accept the same frames; an accepted IDM re-encodes to the same bytes.
fuzz_target!(|data: &[u8]| {
    let idm = Idm::parse(data);
    assert_eq!(idm.is_ok(), NetIdm::parse(data).is_ok());
    if let Ok(m) = idm {
        assert!(m.encode().ends_with(data));
        let _ = m.to_decoded("2026-01-01T00:00:00Z".parse().ok());
    }
});
