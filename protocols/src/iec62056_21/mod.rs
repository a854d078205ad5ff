//! IEC 62056-21 (formerly IEC 61107) optical-port readout.
//!
//! - [`message`]: the messages on the wire (request, identification, option select, data blocks
//!   with BCC, programming commands) as streaming parsers and encoders, plus 7E1 parity helpers.
//! - [`dataset`]: data sets `address(value*unit)` and their meaning as readings (shared with DSMR).
//! - [`probe`]: the optical probe's session as a sans-IO state machine.
//! - `meter` (feature `testing`): a meter's side of the session (simulator for tests and bench
//!   work).
//! - [`decode`]: a captured readout (identification line + data message) as a [`Decoded`] frame.

pub mod dataset;
pub mod message;
#[cfg(any(test, feature = "testing"))]
pub mod meter;
pub mod probe;

#[cfg(test)]
mod session_tests;

use serde_json::{Map, Value, json};

use crate::decoded::Decoded;
use crate::error::{Error, Result};
use dataset::{DataSet, Obis};
use message::{BlockEnd, DataBlock, Identification, OptionSelect};

pub use message::{bcc, decode_7e1, encode_7e1};
pub use probe::{Action, ProbeConfig, ProbeSession, ReadMode, Readout, SessionError, WakeUp};

/// Decodes a captured readout: the meter's identification line followed by its data message
/// (`STX` data `!` CR LF `ETX` BCC). Tolerated around that: bytes with 7E1 parity still set (a
/// capture taken on an 8N1 port), the reader's wake-up NULs and sign-on request in front, its
/// option select between identification and data, and a multi-block message (EOT-terminated
/// partial blocks acknowledged by the reader).
pub fn decode(input: &[u8]) -> Result<Decoded> {
    let owned;
    let input = if input.iter().any(|&b| b >= 0x80) {
        owned = decode_7e1(input)?;
        &owned[..]
    } else {
        input
    };
    // A two-way capture may start with the battery wake-up NULs and the sign-on request.
    let mut input = &input[input.iter().position(|&b| b != 0).unwrap_or(input.len())..];
    if let Ok((r, _)) = message::Request::parse(input) {
        input = r;
    }
    let (rest, ident) = Identification::parse(input).map_err(|e| match Error::from(e) {
        Error::Invalid { .. } => Error::invalid("identification", "expected /XXXZ[\\W]ident CR LF"),
        e => e,
    })?;
    let mut rest = rest;
    let mut option = None;
    if let Ok((r, o)) = OptionSelect::parse(rest) {
        option = Some(o);
        rest = r;
    }
    let mut data = Vec::new();
    loop {
        // The reader's ACK between partial blocks may be part of a two-way capture.
        while let [message::ACK, r @ ..] = rest {
            rest = r;
        }
        let start = rest.iter().position(|&b| b == message::STX);
        match start {
            Some(p) if rest[..p].iter().all(u8::is_ascii_whitespace) => rest = &rest[p..],
            Some(_) | None if rest.iter().all(u8::is_ascii_whitespace) => return Err(Error::Incomplete { needed: 1 }),
            _ => return Err(Error::invalid("data message", "expected STX after the identification")),
        }
        let (n, block) = DataBlock::parse(rest)?;
        rest = &rest[n..];
        data.extend_from_slice(&block.data);
        if block.end == BlockEnd::Etx {
            break;
        }
    }
    if !rest.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid(
            "data message",
            format!("{} bytes after ETX BCC", rest.len()),
        ));
    }
    let sets = dataset::parse_lines(&data)?;
    Ok(decoded(&ident, option.as_ref(), &sets))
}

/// Addresses that hold the meter's serial number or device address, most specific first.
const ID_ADDRESSES: [&str; 5] = ["C.1.0", "0.0.0", "C.1.1", "96.1.0", "96.1.1"];

fn decoded(ident: &Identification, option: Option<&OptionSelect>, sets: &[DataSet]) -> Decoded {
    let mut fields = Map::new();
    fields.insert("identification".into(), json!(ident.ident));
    fields.insert("manufacturer".into(), json!(ident.manufacturer));
    fields.insert("baud_char".into(), json!((ident.baud_char as char).to_string()));
    fields.insert("baud_rate".into(), json!(ident.baud_rate()));
    fields.insert("mode".into(), json!(format!("{:?}", ident.mode())));
    fields.insert(
        "enhanced_id".into(),
        json!(ident.enhanced.map(|w| (w as char).to_string())),
    );
    if let Some(o) = option {
        fields.insert(
            "option_select".into(),
            json!(String::from_utf8_lossy(&[o.protocol, o.baud_char, o.mode])),
        );
    }
    let meter_id = ID_ADDRESSES
        .iter()
        .find_map(|want| {
            sets.iter()
                .find(|s| Obis::parse(&s.address).is(want))
                .and_then(|s| s.values.first())
                .map(|v| v.value.trim().to_owned())
                .filter(|v| !v.is_empty())
        })
        .unwrap_or_else(|| ident.text());
    let readings: Vec<_> = sets.iter().flat_map(dataset::readings).collect();
    let mut flags = Vec::new();
    // F.F is the error register: anything but zeros means the meter reports a fault.
    let error_register = readings.iter().find(|r| r.quantity == "error_register");
    if let Some(Value::String(v)) = error_register.map(|r| &r.value)
        && v.chars().any(|c| c.is_ascii_hexdigit() && c != '0')
    {
        flags.push("alarm".to_owned());
    }
    Decoded {
        protocol: "iec62056-21".into(),
        meter_id,
        fields,
        readings,
        flags,
    }
}

/// Writes a readout capture: identification line, then one data message with the data sets
/// one per line. The inverse of [`decode`] for the data sets.
pub fn encode_readout(ident: &Identification, sets: &[DataSet]) -> Result<Vec<u8>> {
    let mut out = ident.encode()?;
    out.extend_from_slice(&DataBlock::readout(&dataset::emit_lines(sets)).encode());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Check;
    use proptest::prelude::*;

    fn e350() -> Vec<u8> {
        let lines = b"F.F(00)\r\nC.1.1(0000000074892473)\r\n1.8.0(000065.3*kWh)\r\n2.8.0(000003.5*kWh)\r\n\
1.8.1(000021.5*kWh)\r\n1.8.2(00043.8*kWh)\r\n2.8.1(000001.5*kWh)\r\n2.8.2(00000.0*kWh)\r\nC.5.0(02)\r\n";
        let mut out = b"/LGZ0ZCF100AC.MXX\r\n".to_vec();
        out.extend_from_slice(&DataBlock::readout(lines).encode());
        out
    }

    #[test]
    fn published_readout_vector() {
        let mut input = b"/Els6\\2EK280\r\n".to_vec();
        input.extend_from_slice(b"\x023:14(314*kWh)4:15(415*kWh)\r\n!\r\n\x03\x22");
        let d = decode(&input).unwrap();
        assert_eq!(d.protocol, "iec62056-21");
        assert_eq!(d.meter_id, "Els6\\2EK280");
        assert_eq!(d.fields["manufacturer"], json!("Els"));
        assert_eq!(d.fields["identification"], json!("EK280"));
        assert_eq!(d.fields["baud_rate"], json!(19200));
        assert_eq!(d.fields["enhanced_id"], json!("2"));
        assert_eq!(d.readings.len(), 2);
        assert_eq!(d.readings[0].obis.as_deref(), Some("3:14"));
        assert_eq!(d.readings[0].value, json!(314));
        assert_eq!(d.readings[1].unit.as_deref(), Some("kWh"));
        assert_eq!(d.readings[1].quantity, "energy");
    }

    #[test]
    fn e350_readout_with_uneven_leading_zeros() {
        let d = decode(&e350()).unwrap();
        assert_eq!(d.meter_id, "0000000074892473");
        assert_eq!(d.fields["baud_rate"], json!(300));
        let by = |o: &str| d.readings.iter().find(|r| r.obis.as_deref() == Some(o)).unwrap();
        assert_eq!(by("1.8.0").value, json!(65.3));
        assert_eq!(by("1.8.2").value, json!(43.8));
        assert_eq!(by("2.8.2").value, json!(0));
        assert_eq!(by("C.5.0").value, json!("02"));
        assert!(d.flags.is_empty());
        assert_eq!(d.readings.len(), 9);
    }

    #[test]
    fn bad_bcc_is_refused_naming_the_check() {
        let mut input = e350();
        *input.last_mut().unwrap() ^= 0x01;
        assert_eq!(decode(&input).unwrap_err().failed_check(), Some(Check::Bcc));
        // A flipped data bit, BCC unchanged.
        let mut input = e350();
        let at = input.iter().position(|&b| b == b'6').unwrap();
        input[at] = b'7';
        assert_eq!(decode(&input).unwrap_err().failed_check(), Some(Check::Bcc));
    }

    #[test]
    fn truncated_readout_is_incomplete() {
        let input = e350();
        for cut in [5, 19, 40, input.len() - 1] {
            assert!(
                matches!(decode(&input[..cut]), Err(Error::Incomplete { .. })),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn parity_bits_from_an_8n1_capture_are_checked_and_stripped() {
        let wire = encode_7e1(&e350());
        assert!(wire.iter().any(|&b| b >= 0x80));
        assert_eq!(decode(&wire).unwrap(), decode(&e350()).unwrap());
        let mut bad = wire.clone();
        bad[30] ^= 0x80;
        assert!(decode(&bad).unwrap_err().to_string().contains("parity"));
    }

    #[test]
    fn two_way_capture_and_partial_blocks() {
        let mut input = b"\0\0\0/?!\r\n/ISk5MT174-0001\r\n\x06050\r\n".to_vec();
        input.extend_from_slice(
            &DataBlock {
                data: b"1.8.0(000123.4*kWh)\r\n".to_vec(),
                end: BlockEnd::Eot,
            }
            .encode(),
        );
        input.push(message::ACK);
        input.extend_from_slice(&DataBlock::readout(b"F.F(01)\r\n").encode());
        input.extend_from_slice(b"\r\n");
        let d = decode(&input).unwrap();
        assert_eq!(d.fields["option_select"], json!("050"));
        assert_eq!(d.readings.len(), 2);
        assert_eq!(d.flags, vec!["alarm"]);
    }

    fn value_text() -> impl Strategy<Value = String> {
        prop_oneof!["[0-9]{1,9}(\\.[0-9]{1,4})?", "[A-Za-z0-9 .:-]{0,20}",]
    }

    fn data_set() -> impl Strategy<Value = DataSet> {
        (
            "[0-9A-Z][0-9A-Za-z.:*&-]{0,15}",
            prop::collection::vec((value_text(), prop::option::of("[A-Za-z0-9/]{1,6}")), 1..4),
        )
            .prop_map(|(address, values)| DataSet {
                address,
                values: values
                    .into_iter()
                    .map(|(v, u)| dataset::DataValue { value: v, unit: u })
                    .collect(),
            })
    }

    proptest! {
        #[test]
        fn data_messages_round_trip(sets in prop::collection::vec(data_set(), 0..12)) {
            let ident = Identification { manufacturer: "ABC".into(), baud_char: b'5', enhanced: None, ident: "RT".into() };
            let wire = encode_readout(&ident, &sets).unwrap();
            let (n, block) = DataBlock::parse(&wire[ident.encode().unwrap().len()..]).unwrap();
            prop_assert_eq!(n + 9, wire.len());
            let reparsed = dataset::parse_lines(&block.data).unwrap();
            prop_assert_eq!(&reparsed, &sets);
            prop_assert_eq!(encode_readout(&ident, &reparsed).unwrap(), wire.clone());
            prop_assert!(decode(&wire).is_ok());
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }
    }
}
