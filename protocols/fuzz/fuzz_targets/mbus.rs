//! Wired M-Bus: frame parser (streaming), whole-frame decode, and the record layer on raw bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use meterd_protocols::mbus::{self, frame, link, record::Item, record::Records};

fuzz_target!(|data: &[u8]| {
    if let Ok((f, used)) = frame::parse(data) {
        assert!(used <= data.len());
        // What parses must re-encode to the same bytes.
        let mut out = Vec::new();
        frame::encode(&f, &mut out).unwrap();
        assert_eq!(&out[..], &data[..used]);
    }
    let _ = link::parse_reply(data);
    let _ = mbus::decode(data);
    for item in Records::new(data).chain(Records::msb_first(data)) {
        if let Ok(Item::Record(rec)) = item {
            let _ = mbus::readings::reading(&rec);
        }
    }
});
