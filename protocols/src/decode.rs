//! Format detection and dispatch: one entry point that turns raw input (hex lines, JSON lines,
//! or text telegrams) into [`Decoded`] frames, used by `meterd decode`, the golden fixture test
//! and the ingest paths.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crate::decoded::Decoded;
use crate::error::{Check, Error, Result};
use crate::stream::{Framer, Framing, Piece};
use crate::{dsmr, ert, hexline, iec62056_21, mbus, wmbus};

/// Every protocol `meterd decode` names in its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Scm,
    ScmPlus,
    Idm,
    NetIdm,
    R900,
    R900Bcd,
    Wmbus,
    Mbus,
    Iec62056_21,
    Dsmr,
}

impl Protocol {
    /// All protocols, in the order the contract lists them.
    pub const ALL: [Protocol; 10] = [
        Protocol::Scm,
        Protocol::ScmPlus,
        Protocol::Idm,
        Protocol::NetIdm,
        Protocol::R900,
        Protocol::R900Bcd,
        Protocol::Wmbus,
        Protocol::Mbus,
        Protocol::Iec62056_21,
        Protocol::Dsmr,
    ];

    /// The contract name (`scm`, `scm+`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Scm => "scm",
            Protocol::ScmPlus => "scm+",
            Protocol::Idm => "idm",
            Protocol::NetIdm => "netidm",
            Protocol::R900 => "r900",
            Protocol::R900Bcd => "r900bcd",
            Protocol::Wmbus => "wmbus",
            Protocol::Mbus => "mbus",
            Protocol::Iec62056_21 => "iec62056-21",
            Protocol::Dsmr => "dsmr",
        }
    }

    /// Text protocols take raw bytes; the others take one hex frame per line.
    pub fn is_text(self) -> bool {
        matches!(self, Protocol::Iec62056_21 | Protocol::Dsmr)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Protocol {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.to_ascii_lowercase();
        Protocol::ALL
            .into_iter()
            .find(|p| p.name() == lower || (lower == "scmplus" && *p == Protocol::ScmPlus))
            .ok_or_else(|| Error::invalid("protocol", format!("unknown protocol {s:?}")))
    }
}

/// Wireless M-Bus AES-128 keys by meter identification (8 digits).
#[derive(Debug, Clone, Default)]
pub struct Keys {
    by_meter: HashMap<String, [u8; 16]>,
}

impl Keys {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key for a meter id (8 digits).
    pub fn insert(&mut self, meter_id: &str, key: [u8; 16]) {
        self.by_meter.insert(meter_id.to_owned(), key);
    }

    /// The key for a meter id, if any.
    pub fn get(&self, meter_id: &str) -> Option<&[u8; 16]> {
        self.by_meter.get(meter_id)
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.by_meter.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.by_meter.is_empty()
    }

    /// Parses one `METER_ID=HEX` assignment (the `--key` option and a key file line).
    pub fn parse_assignment(text: &str) -> Result<(String, [u8; 16])> {
        let (id, key) = text
            .split_once('=')
            .ok_or_else(|| Error::invalid("key", "expected METER_ID=HEX"))?;
        let id = id.trim();
        if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid("key", format!("meter id {id:?} is not 8 digits")));
        }
        let bytes = hexline::parse(key)?;
        let key: [u8; 16] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| Error::invalid("key", format!("AES-128 key must be 16 bytes, got {}", b.len())))?;
        Ok((id.to_owned(), key))
    }

    /// Parses a key file: one `METER_ID=HEX` per line, `#` comments and blank lines ignored.
    /// Errors name the line.
    pub fn parse_file(text: &str) -> Result<Self> {
        let mut keys = Keys::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (id, key) =
                Self::parse_assignment(line).map_err(|e| Error::invalid("key", format!("line {}: {e}", n + 1)))?;
            keys.insert(&id, key);
        }
        Ok(keys)
    }
}

/// Detects the protocol of one binary frame from its length and leading bytes (without keys:
/// see [`detect_binary_with`]).
pub fn detect_binary(frame: &[u8]) -> Option<Protocol> {
    detect_binary_with(frame, &Keys::new())
}

/// Detects the protocol of one binary frame from its length and leading bytes. When the shape
/// fits two formats (a 14-byte frame is both an R900 packet and a short wireless M-Bus telegram
/// without CRC blocks), the one whose check passes wins: R900's Reed-Solomon code first, else a
/// wM-Bus telegram that decodes (or needs a key it was not given); if neither passes, R900, whose
/// refusal then names its check.
pub fn detect_binary_with(frame: &[u8], keys: &Keys) -> Option<Protocol> {
    if let Some(p) = ert::detect(frame) {
        if p == Protocol::R900 && wmbus::looks_like(frame) && ert::r900::decode(frame, false).is_err() {
            let wmbus_passes = match wmbus::decode(frame, keys) {
                Ok(_) => true,
                Err(Error::CompactFormat { .. }) => true,
                Err(e) => matches!(e.failed_check(), Some(Check::Decryption | Check::Mac)),
            };
            if wmbus_passes {
                return Some(Protocol::Wmbus);
            }
        }
        return Some(p);
    }
    if mbus::looks_like(frame) {
        return Some(Protocol::Mbus);
    }
    if wmbus::looks_like(frame) {
        return Some(Protocol::Wmbus);
    }
    None
}

/// Decodes one binary frame with a known protocol.
pub fn decode_binary(protocol: Protocol, frame: &[u8], keys: &Keys) -> Result<Decoded> {
    match protocol {
        Protocol::Scm => ert::scm::decode(frame),
        Protocol::ScmPlus => ert::scm_plus::decode(frame),
        Protocol::Idm => ert::idm::decode(frame, false),
        Protocol::NetIdm => ert::idm::decode(frame, true),
        Protocol::R900 => ert::r900::decode(frame, false),
        Protocol::R900Bcd => ert::r900::decode(frame, true),
        Protocol::Wmbus => wmbus::decode(frame, keys),
        Protocol::Mbus => mbus::decode(frame),
        Protocol::Iec62056_21 => iec62056_21::decode(frame),
        Protocol::Dsmr => dsmr::decode(frame),
    }
}

/// [`decode_binary`] with the wM-Bus compact-frame layouts learned so far.
pub fn decode_binary_with(
    protocol: Protocol,
    frame: &[u8],
    keys: &Keys,
    formats: &dyn wmbus::compact::Formats,
) -> Result<Decoded> {
    match protocol {
        Protocol::Wmbus => wmbus::decode_with(frame, keys, formats),
        p => decode_binary(p, frame, keys),
    }
}

/// One unit of input and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameResult {
    /// 1-based line number where the frame starts in the input.
    pub line: usize,
    /// The decoded frame or why it was refused.
    pub result: Result<Decoded>,
}

/// Decodes a whole input: hex frames one per line, rtlamr JSON lines, gateway envelopes, text
/// telegrams (IEC 62056-21, DSMR) or raw binary M-Bus/wM-Bus frames. Without `protocol` the
/// format is detected per frame. Cut by the same [`Framer`] `meterd decode` streams with;
/// skipped bytes and M-Bus control frames are not frames and give no result.
pub fn decode_input(input: &[u8], protocol: Option<Protocol>, keys: &Keys) -> Vec<FrameResult> {
    let mut framer = Framer::new(protocol, None);
    framer.push(input);
    framer.finish();
    let mut out = Vec::new();
    while let Some(piece) = framer.next_piece() {
        match piece {
            Piece::Frame(at, framing, bytes) => {
                if let Some(result) = decode_piece(framing, bytes, protocol, keys) {
                    out.push(FrameResult { line: at.line, result });
                }
            }
            Piece::Refused(at, e) => out.push(FrameResult {
                line: at.line,
                result: Err(e),
            }),
            Piece::Skipped(..) | Piece::Control(_) => {}
        }
    }
    out
}

/// Decodes one frame the [`Framer`] cut with `framing`; `None` for a blank or comment line.
pub fn decode_piece(
    framing: Framing,
    bytes: &[u8],
    protocol: Option<Protocol>,
    keys: &Keys,
) -> Option<Result<Decoded>> {
    match framing {
        Framing::Lines => decode_line(&String::from_utf8_lossy(bytes), protocol, keys),
        Framing::Telegrams => {
            let p = protocol.unwrap_or_else(|| detect_text(bytes));
            Some(decode_binary(p, bytes, keys))
        }
        Framing::Binary => Some(decode_frame(bytes, protocol, keys)),
    }
}

/// Decodes one binary frame, detecting its protocol unless given.
fn decode_frame(frame: &[u8], protocol: Option<Protocol>, keys: &Keys) -> Result<Decoded> {
    let p = match protocol {
        Some(p) => p,
        None => detect_binary_with(frame, keys).ok_or_else(|| {
            Error::Unrecognised(format!(
                "{} bytes starting {}",
                frame.len(),
                hexline::format(&frame[..frame.len().min(4)])
            ))
        })?,
    };
    decode_binary(p, frame, keys)
}

/// Decodes one line of line-framed input (a hex frame, an rtlamr or rtl_433 JSON line, a
/// gateway envelope); `None` for a blank line or a `#` comment. What [`decode_input`] does per
/// line, for a reader that goes line by line.
pub fn decode_line(raw: &str, protocol: Option<Protocol>, keys: &Keys) -> Option<Result<Decoded>> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    Some(if line.starts_with('{') {
        ert::decode_json_line(line, keys)
    } else {
        hexline::parse(line).and_then(|frame| decode_frame(&frame, protocol, keys))
    })
}

/// IEC 62056-21 data messages carry STX; DSMR telegrams do not.
fn detect_text(unit: &[u8]) -> Protocol {
    if unit.iter().any(|&b| b & 0x7F == 0x02) {
        Protocol::Iec62056_21
    } else {
        Protocol::Dsmr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_round_trip() {
        for p in Protocol::ALL {
            assert_eq!(p.name().parse::<Protocol>().unwrap(), p);
        }
        assert!("modbus".parse::<Protocol>().is_err());
    }

    #[test]
    fn key_assignments_are_checked() {
        let (id, key) = Keys::parse_assignment("12345678=000102030405060708090A0B0C0D0E0F").unwrap();
        assert_eq!(id, "12345678");
        assert_eq!(key[15], 0x0F);
        assert!(Keys::parse_assignment("1234567=00").is_err());
        assert!(Keys::parse_assignment("12345678=0001").is_err());
        let err = Keys::parse_file("# keys\n12345678=000102030405060708090A0B0C0D0E0F\nbad\n").unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn text_detection_ignores_the_parity_bit() {
        // `/?!` CR LF `/ISk5MT174` with 7E1 parity as an 8N1 port records it.
        let plain = b"/?!\r\n/ISk5MT174-0001\r\n\x020.0.0(12345678)\r\n!\r\n\x03";
        let mut readout = plain.to_vec();
        readout.push(crate::iec62056_21::bcc(
            &plain[plain.iter().position(|&b| b == 2).unwrap() + 1..],
        ));
        let wire = crate::iec62056_21::encode_7e1(&readout);
        assert_eq!(wire[0], 0xAF);
        let frames = decode_input(&wire, None, &Keys::new());
        assert_eq!(frames.len(), 1, "{frames:?}");
        let decoded = frames[0].result.as_ref().unwrap();
        assert_eq!(decoded.protocol, "iec62056-21");
        assert_eq!(decoded.meter_id, "12345678");
    }

    #[test]
    fn a_14_byte_frame_goes_to_the_format_whose_check_passes() {
        // A short wM-Bus telegram without CRC blocks (L = 0x0D, CI 0x78, one 8-bit volume
        // record) is 14 bytes with a last byte of 0x80: R900-shaped, but its Reed-Solomon
        // check fails.
        let frame = crate::hexline::parse("0D 44 2D 2C 78 56 34 12 01 07 78 01 13 80").unwrap();
        assert_eq!(frame.len(), 14);
        assert_eq!(ert::detect(&frame), Some(Protocol::R900));
        assert!(ert::r900::decode(&frame, false).is_err());
        assert_eq!(detect_binary(&frame), Some(Protocol::Wmbus));
        let frames = decode_input(b"0D442D2C785634120107780113 80\n", None, &Keys::new());
        assert_eq!(frames[0].result.as_ref().unwrap().protocol, "wmbus");
        // Garbage that fits both and passes neither stays R900, whose refusal names its check.
        let junk = [0x0D, 0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x00];
        assert_eq!(detect_binary(&junk), Some(Protocol::R900));
    }
}
