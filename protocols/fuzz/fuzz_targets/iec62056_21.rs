//! IEC 62056-21: the readout decoder, the message parsers, the data set grammar (emit → reparse
//! must give the same data sets), and both session state machines fed arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterd_protocols::iec62056_21::meter::{MeterConfig, MeterSim};
use meterd_protocols::iec62056_21::{ProbeConfig, ProbeSession, ReadMode, dataset, decode, message};

fuzz_target!(|data: &[u8]| {
    let _ = decode(data);
    let _ = message::parse_message(data, true);
    let _ = message::parse_message(data, false);

    if let Ok(sets) = dataset::parse_lines(data) {
        let emitted = dataset::emit_lines(&sets);
        let again = dataset::parse_lines(&emitted).expect("emitted data sets must parse");
        assert_eq!(again, sets, "emit → reparse changed the data sets");
        for set in &sets {
            let _ = dataset::readings(set);
        }
    }

    // Drive both machines: the first byte of each chunk says bytes or timeout.
    let mode = if data.first().is_some_and(|b| b & 1 == 1) {
        ReadMode::Registers {
            read_command: b'1',
            password: Some("1".into()),
            addresses: vec!["1.8.0".into()],
        }
    } else {
        ReadMode::Readout
    };
    let mut probe = ProbeSession::new(ProbeConfig {
        mode,
        software_parity: data.len() % 3 == 0,
        ..ProbeConfig::default()
    });
    let ident = message::Identification {
        manufacturer: "ABC".into(),
        baud_char: b'5',
        enhanced: None,
        ident: "F".into(),
    };
    let mut meter = MeterSim::new(MeterConfig::new(ident, Vec::new()));
    probe.start();
    for chunk in data.chunks(7) {
        if chunk[0] == 0xEE {
            probe.on_timeout();
            meter.on_timeout();
        } else {
            probe.on_bytes(chunk);
            meter.on_bytes(chunk);
        }
        while probe.poll_action().is_some() {}
        while meter.poll_action().is_some() {}
    }
});
