//! Record and message parsers of both firmwares: never panic; whatever parses re-emits to the
//! same bytes and reparses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterd_protocols::cradle::{Firmware, Message};

fuzz_target!(|data: &[u8]| {
    for fw in [Firmware::V1, Firmware::V2] {
        if let Ok((read, rest)) = fw.parse_read(data) {
            let mut out = Vec::new();
            fw.emit_read(&read, &mut out).expect("parsed reads are valid");
            assert_eq!(
                out,
                &data[..data.len() - rest.len()],
                "{fw:?} read re-emits identically"
            );
        }
        if let Ok((meter, _)) = fw.parse_meter(data) {
            let mut out = Vec::new();
            fw.emit_meter(&meter, &mut out).expect("parsed meters are valid");
            assert_eq!(fw.parse_meter(&out).expect("reparse").0, meter);
        }
        if let Ok((code, _)) = fw.parse_code(data) {
            let mut out = Vec::new();
            fw.emit_code(&code, &mut out).expect("parsed codes are valid");
            assert_eq!(fw.parse_code(&out).expect("reparse").0, code);
        }
        if let Ok(msg) = Message::decode(data, fw) {
            let bytes = msg.encode(fw).expect("decoded messages encode");
            assert_eq!(Message::decode(&bytes, fw).expect("reparse"), msg);
        }
    }
});
