//! What each fuzz target checks, written once: the cargo-fuzz targets (`protocols/fuzz/`) call
//! these functions and the corpus replay test (`tests/fuzz_corpus.rs`) calls the same ones on
//! every saved input, so a replay checks exactly what the fuzzer checked (x509-parser's
//! `run_all_fuzz_files`). Each check panics when a property fails: no input may panic a parser,
//! and where a format has an encoder, parse → encode → parse gives back the same value (or the
//! same bytes).

use crate::cradle::frame::{FrameDecoder, parse_frame};
use crate::cradle::{Firmware, Message};
use crate::decode::{Keys, Protocol, decode_binary, decode_input};
use crate::dsmr::{self, Event, Splitter};
use crate::ert::idm::{Idm, NetIdm};
use crate::ert::r900::{self, R900};
use crate::ert::scm::Scm;
use crate::ert::scm_plus::ScmPlus;
use crate::ert::{Envelope, parse_json_line};
use crate::iec62056_21::meter::{MeterConfig, MeterSim};
use crate::iec62056_21::{self, ProbeConfig, ProbeSession, ReadMode, dataset, message};
use crate::mbus::{self, frame, link, record::Item, record::Records};
use crate::stream::Framer;
use crate::wmbus;

/// A fuzz target's check: panics when a property fails.
pub type Check = fn(&[u8]);

/// Every fuzz target by name with its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("scm", scm),
    ("scm_plus", scm_plus),
    ("idm", idm),
    ("r900", r900),
    ("ert_json", ert_json),
    ("mbus", mbus),
    ("wmbus", wmbus),
    ("iec62056_21", iec62056_21),
    ("dsmr", dsmr),
    ("cradle_frame", cradle_frame),
    ("cradle_records", cradle_records),
];

/// The check of the named target.
pub fn check_for(target: &str) -> Option<Check> {
    TARGETS.iter().find(|(name, _)| *name == target).map(|(_, f)| *f)
}

/// SCM: what parses re-encodes to the same bytes (the reserved bit kept) and converts.
pub fn scm(data: &[u8]) {
    let _ = decode_binary(Protocol::Scm, data, &Keys::new());
    if let Ok(m) = Scm::parse(data) {
        assert_eq!(m.encode_with(data[2] & 1 == 1).as_slice(), data, "SCM re-encode");
        let _ = m.to_decoded();
    }
}

/// SCM+: what parses re-encodes to the same bytes and converts.
pub fn scm_plus(data: &[u8]) {
    let _ = decode_binary(Protocol::ScmPlus, data, &Keys::new());
    if let Ok(m) = ScmPlus::parse(data) {
        assert_eq!(m.encode().as_slice(), data, "SCM+ re-encode");
        let _ = m.to_decoded();
    }
}

/// IDM and NetIDM share a frame: both parse or neither; what parses re-encodes to its bytes.
pub fn idm(data: &[u8]) {
    let keys = Keys::new();
    let _ = decode_binary(Protocol::Idm, data, &keys);
    let _ = decode_binary(Protocol::NetIdm, data, &keys);
    let idm = Idm::parse(data);
    assert_eq!(idm.is_ok(), NetIdm::parse(data).is_ok(), "IDM and NetIDM disagree");
    if let Ok(m) = idm {
        assert!(m.encode().ends_with(data), "IDM re-encode");
        let _ = m.to_decoded("2026-01-01T00:00:00Z".parse().ok());
    }
}

/// R900: what parses re-encodes to the same bytes; 21 bytes also go through the chip decoder.
pub fn r900(data: &[u8]) {
    let keys = Keys::new();
    let _ = decode_binary(Protocol::R900, data, &keys);
    let _ = decode_binary(Protocol::R900Bcd, data, &keys);
    if let Ok(m) = R900::parse(data) {
        assert_eq!(m.encode().as_slice(), data, "R900 re-encode");
        let _ = (m.to_decoded(false), m.to_decoded(true));
    }
    if let Ok(chips) = <[u8; 21]>::try_from(data) {
        let _ = r900::digits_from_chips(&chips)
            .and_then(|d| r900::symbols_from_digits(&d))
            .and_then(|s| R900::from_symbols(&s));
    }
}

/// JSON lines (rtlamr, rtl_433, gateway envelopes) and input as a whole; the stream framer
/// cuts the same pieces whether the bytes come at once or a few at a time.
pub fn ert_json(data: &[u8]) {
    let keys = Keys::new();
    let _ = decode_input(data, None, &keys);
    let step = data.first().map_or(1, |&b| usize::from(b % 13) + 1);
    assert_eq!(
        pieces(data, data.len().max(1)),
        pieces(data, step),
        "framer pieces depend on chunking"
    );
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = parse_json_line(line, &keys);
        let _ = Envelope::parse(line);
    }
}

/// Every piece the stream framer cuts from `data` pushed `step` bytes at a time.
fn pieces(data: &[u8], step: usize) -> Vec<String> {
    let mut framer = Framer::new(None, None);
    let mut out = Vec::new();
    for chunk in data.chunks(step) {
        framer.push(chunk);
        while let Some(p) = framer.next_piece() {
            out.push(format!("{p:?}"));
        }
    }
    framer.finish();
    while let Some(p) = framer.next_piece() {
        out.push(format!("{p:?}"));
    }
    out
}

/// Wired M-Bus: what the frame parser takes re-encodes to the same bytes; the record layer on
/// raw bytes in both byte orders.
pub fn mbus(data: &[u8]) {
    if let Ok((f, used)) = frame::parse(data) {
        assert!(used <= data.len(), "M-Bus frame used more than it was given");
        let mut out = Vec::new();
        frame::encode(&f, &mut out).expect("a parsed M-Bus frame encodes");
        assert_eq!(&out[..], &data[..used], "M-Bus frame re-encode");
    }
    let _ = link::parse_reply(data);
    let _ = mbus::decode(data);
    for item in Records::new(data).chain(Records::msb_first(data)) {
        if let Ok(Item::Record(rec)) = item {
            let _ = mbus::readings::reading(&rec);
        }
    }
}

/// Wireless M-Bus: CRC stripping and the whole layer stack, with a key for the id the input
/// carries so the decryption paths run too.
pub fn wmbus(data: &[u8]) {
    let mut keys = Keys::new();
    if data.len() >= 8 {
        let id = format!("{:02X}{:02X}{:02X}{:02X}", data[7], data[6], data[5], data[4]);
        keys.insert(&id, [0x42; 16]);
    }
    let _ = wmbus::dll::strip(data);
    let _ = wmbus::looks_like(data);
    let _ = wmbus::decode(data, &keys);
}

/// IEC 62056-21: the readout decoder, the message parsers, the data set grammar (emit →
/// reparse gives the same data sets), and both session state machines fed the bytes.
pub fn iec62056_21(data: &[u8]) {
    let _ = iec62056_21::decode(data);
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
    // The first byte says which read mode the probe asks for; a chunk starting 0xEE is a
    // timeout instead of bytes.
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
        software_parity: data.len().is_multiple_of(3),
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
}

/// DSMR P1: the telegram decoder, and the stream splitter, which must account for every byte
/// (what it returns as telegrams and discards adds up to what was pushed).
pub fn dsmr(data: &[u8]) {
    let _ = dsmr::decode(data);
    let mut splitter = Splitter::new(512);
    let mut seen = 0;
    for chunk in data.chunks(13) {
        splitter.push(chunk);
        while let Some(event) = splitter.next_event() {
            seen += match event {
                Event::Telegram(t) => {
                    let _ = dsmr::decode(&t);
                    t.len()
                }
                Event::Discarded { bytes, .. } => bytes.len(),
            };
        }
    }
    if let Some(Event::Discarded { bytes, .. }) = splitter.flush() {
        seen += bytes.len();
    }
    assert_eq!(seen, data.len(), "splitter lost or invented bytes");
}

/// Cradle frames: never a panic, in one piece or split where the first byte says; every frame
/// the decoder yields re-encodes to bytes that parse back to the same frame.
pub fn cradle_frame(data: &[u8]) {
    let _ = parse_frame(data);
    let mut dec = FrameDecoder::new();
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    for piece in [&data[..cut], &data[cut..]] {
        dec.push(piece);
        while let Some(r) = dec.next_frame() {
            if let Ok(frame) = r {
                let bytes = frame.encode().expect("decoded frames fit");
                let (again, used) = parse_frame(&bytes).expect("re-encoded frame parses");
                assert_eq!(used, bytes.len(), "re-encoded frame length");
                assert_eq!(again, frame, "cradle frame round trip");
            }
        }
    }
}

/// Cradle records and messages of both firmwares: whatever parses re-emits to the same bytes
/// (reads) or reparses to the same value (meters, codes, messages).
pub fn cradle_records(data: &[u8]) {
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
            assert_eq!(
                fw.parse_meter(&out).expect("reparse").0,
                meter,
                "{fw:?} meter round trip"
            );
        }
        if let Ok((code, _)) = fw.parse_code(data) {
            let mut out = Vec::new();
            fw.emit_code(&code, &mut out).expect("parsed codes are valid");
            assert_eq!(fw.parse_code(&out).expect("reparse").0, code, "{fw:?} code round trip");
        }
        if let Ok(msg) = Message::decode(data, fw) {
            let bytes = msg.encode(fw).expect("decoded messages encode");
            assert_eq!(
                Message::decode(&bytes, fw).expect("reparse"),
                msg,
                "{fw:?} message round trip"
            );
        }
    }
}
