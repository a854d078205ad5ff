#![no_main]
use libfuzzer_sys::fuzz_target;
use meterd_protocols::ert::scm::Scm;

// Whatever SCM parses must be exactly what the encoder writes for those fields.
fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Scm::parse(data) {
        assert_eq!(m.encode_with(data[2] & 1 == 1).as_slice(), data);
        let _ = m.to_decoded();
    }
});
