//! Itron ERT (SCM, SCM+, IDM, NetIDM) and Neptune R900 radio messages, rtlamr JSON lines and
//! gateway envelopes.
//!
//! Each message has a typed, allocation-free parser that checks the frame first ([`scm::Scm`],
//! [`scm_plus::ScmPlus`], [`idm::Idm`], [`idm::NetIdm`], [`r900::R900`]) and a conversion to
//! [`Decoded`] whose `fields` are exactly rtlamr's JSON. [`json`] reads rtlamr's JSON output and
//! the raw-packet gateway envelope. [`register_bits`] and [`dedup_key`] are what ingest needs
//! for the rollover rule and for storing a transmission heard many times once.

pub mod checks;
pub mod idm;
pub mod json;
pub mod r900;
pub mod rs;
pub mod scm;
pub mod scm_plus;

pub use json::{Envelope, JsonLine, parse_json_line};

use nom::IResult;
use nom::bits::bits;

use crate::decode::{Keys, Protocol};
use crate::decoded::Decoded;
use crate::error::{Error, Result};

/// Bit-level input for `nom::bits` parsers.
pub(crate) type BitInput<'a> = (&'a [u8], usize);

/// Runs a bit-level parser over whole bytes.
pub(crate) fn nom_bits<'a, O>(
    parser: impl FnMut(BitInput<'a>) -> IResult<BitInput<'a>, O>,
    input: &'a [u8],
) -> Result<O> {
    let (_, out) = bits::<_, _, nom::error::Error<BitInput<'a>>, nom::error::Error<&'a [u8]>, _>(parser)(input)?;
    Ok(out)
}

/// A fixed-length frame: shorter is incomplete, longer is invalid.
pub(crate) fn exact_frame<'a, const N: usize>(frame: &'a [u8], what: &str) -> Result<&'a [u8; N]> {
    match frame.len() {
        n if n < N => Err(Error::Incomplete { needed: N - n }),
        n if n > N => Err(Error::invalid("length", format!("{what} is {N} bytes, got {n}"))),
        _ => Ok(frame.try_into().expect("length checked")),
    }
}

/// Detects an ERT/R900 frame from its length and sync bytes.
///
/// IDM and NetIDM cannot be told apart from the bytes (same preamble, length and checks). Net
/// meters are ERT type 8 (rtlamr-collect's strict mode drops IDM from type 8 and NetIDM from
/// type 7), so type 8 is taken as NetIDM and everything else as IDM; `--protocol` overrides.
/// R900 and R900BCD cannot be told apart either: detection says R900.
pub fn detect(frame: &[u8]) -> Option<Protocol> {
    let idm = |ert_type: u8| {
        if ert_type & 0x0F == 8 {
            Protocol::NetIdm
        } else {
            Protocol::Idm
        }
    };
    match frame {
        [0xF9, 0x53, ..] if frame.len() == scm::LEN => Some(Protocol::Scm),
        // Any ProtocolID: decoding then says why a non-0x1E frame is refused.
        [0x16, 0xA3, ..] if frame.len() == scm_plus::LEN => Some(Protocol::ScmPlus),
        [0x55, 0x55, 0x16, 0xA3, 0x1C, _, _, _, t, ..] if frame.len() == idm::LEN => Some(idm(*t)),
        [0x16, 0xA3, 0x1C, _, _, _, t, ..] if frame.len() == idm::LEN_WITHOUT_PREAMBLE => Some(idm(*t)),
        _ if frame.len() == r900::LEN && frame[r900::LEN - 1] & 0x7F == 0 => Some(Protocol::R900),
        _ => None,
    }
}

/// Decodes one JSON line: an rtlamr message or a gateway envelope carrying a raw packet.
pub fn decode_json_line(line: &str, keys: &Keys) -> Result<Decoded> {
    parse_json_line(line, keys).map(|l| l.decoded)
}

/// Width in bits of the register a protocol's `register` reading counts in, for the rollover rule:
/// SCM 24, SCM+ and IDM 32, NetIDM 24 (the widths of rtlamr's fields). R900 is 27: rtlamr's 24-bit
/// `Consumption` plus the three wrap bits it shows as `Unkn3` and the top bit of `Leak` (the
/// register does pass 2^24, rtlamr #99). R900BCD holds six decimal digits: see
/// [`register_modulus`].
pub fn register_bits(protocol: Protocol) -> Option<u32> {
    match protocol {
        Protocol::Scm | Protocol::NetIdm | Protocol::R900Bcd => Some(24),
        Protocol::ScmPlus | Protocol::Idm => Some(32),
        Protocol::R900 => Some(27),
        _ => None,
    }
}

/// The value at which a protocol's register rolls over to 0 (2^bits, or 10^6 for R900BCD).
pub fn register_modulus(protocol: Protocol) -> Option<u64> {
    match protocol {
        Protocol::R900Bcd => Some(1_000_000),
        p => register_bits(p).map(|b| 1u64 << b),
    }
}

/// What an ERT meters, from the low nibble of its type (SCM `Type`, SCM+ `EndpointType`, IDM
/// `ERTType`), per rtl_433's table in `scmplus.c` and `ert_idm.c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Commodity {
    /// Types 4, 5, 7, 8.
    Electric,
    /// Types 0, 1, 2, 9, 12 (rtlamr's meter list also has one electric model with type 12).
    Gas,
    /// Types 3, 11, 13.
    Water,
}

/// The commodity of an ERT type (only the low nibble counts: SCM+ sends 0xAB for water).
pub fn commodity(ert_type: u8) -> Option<Commodity> {
    match ert_type & 0x0F {
        4 | 5 | 7 | 8 => Some(Commodity::Electric),
        0 | 1 | 2 | 9 | 12 => Some(Commodity::Gas),
        3 | 11 | 13 => Some(Commodity::Water),
        _ => None,
    }
}

/// The identity of one transmission, for storing it once however many gateways heard it and
/// however often the meter repeated it. Keys start with the protocol (the same ERT sends SCM and
/// IDM under one ID) and carry the meter type:
/// - SCM: type, ID, consumption, both tamper counters;
/// - SCM+: endpoint type, endpoint ID, consumption, tamper;
/// - IDM: type, serial, interval count, LastConsumptionCount (retransmissions of one interval
///   differ only in TransmitTimeOffset and CRC); NetIDM likewise with its three registers;
/// - R900/R900BCD: ID and the 80 data bits.
///
/// `None` for other protocols or when a field is missing.
pub fn dedup_key(decoded: &Decoded) -> Option<String> {
    let f = |k: &str| decoded.fields.get(k).and_then(serde_json::Value::as_u64);
    Some(match decoded.protocol.as_str() {
        "scm" => format!(
            "scm:{}:{}:{}:{}:{}",
            f("Type")?,
            f("ID")?,
            f("Consumption")?,
            f("TamperPhy")?,
            f("TamperEnc")?
        ),
        "scm+" => format!(
            "scm+:{}:{}:{}:{}",
            f("EndpointType")?,
            f("EndpointID")?,
            f("Consumption")?,
            f("Tamper")?
        ),
        "idm" => format!(
            "idm:{}:{}:{}:{}",
            f("ERTType")?,
            f("ERTSerialNumber")?,
            f("ConsumptionIntervalCount")?,
            f("LastConsumptionCount")?
        ),
        "netidm" => format!(
            "netidm:{}:{}:{}:{}:{}:{}",
            f("ERTType")?,
            f("ERTSerialNumber")?,
            f("ConsumptionIntervalCount")?,
            f("LastConsumption")?,
            f("LastGeneration")?,
            f("LastConsumptionNet")?
        ),
        p @ ("r900" | "r900bcd") => {
            let msg = json::r900_from_fields(&decoded.fields, p == "r900bcd").ok()?;
            format!("{p}:{}:{}", msg.id, msg.data_hex())
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn detection_by_length_and_sync() {
        assert_eq!(detect(&hex!("F95306F008951840EA0C101A")), Some(Protocol::Scm));
        assert_eq!(
            detect(&hex!("16A31EAB0410D35B00001AE3490039BE")),
            Some(Protocol::ScmPlus)
        );
        assert_eq!(detect(&hex!("5C24BB46A384062DFA0035B96E80")), Some(Protocol::R900));
        let i1 = hex::decode(idm::tests_support::I1).unwrap();
        assert_eq!(detect(&i1), Some(Protocol::Idm));
        assert_eq!(detect(&i1[2..]), Some(Protocol::Idm));
        let mut net = idm::Idm::parse(&i1).unwrap();
        net.ert_type_byte = 0x18;
        let net = net.encode();
        assert_eq!(detect(&net), Some(Protocol::NetIdm));
        assert_eq!(detect(&net[2..]), Some(Protocol::NetIdm));
        assert_eq!(detect(&[0xF9, 0x53]), None);
    }

    #[test]
    fn commodity_from_the_low_nibble() {
        assert_eq!(commodity(0xAB), Some(Commodity::Water));
        assert_eq!(commodity(0xBC), Some(Commodity::Gas));
        assert_eq!(commodity(0x9C), Some(Commodity::Gas));
        assert_eq!(commodity(0x07), Some(Commodity::Electric));
        assert_eq!(commodity(0x17), Some(Commodity::Electric));
        assert_eq!(commodity(6), None);
    }

    #[test]
    fn register_widths() {
        assert_eq!(register_bits(Protocol::Scm), Some(24));
        assert_eq!(register_bits(Protocol::ScmPlus), Some(32));
        assert_eq!(register_bits(Protocol::Idm), Some(32));
        assert_eq!(register_bits(Protocol::NetIdm), Some(24));
        assert_eq!(register_bits(Protocol::R900), Some(27));
        assert_eq!(register_modulus(Protocol::R900Bcd), Some(1_000_000));
        assert_eq!(register_modulus(Protocol::Scm), Some(1 << 24));
        assert_eq!(register_bits(Protocol::Mbus), None);
    }

    #[test]
    fn dedup_keys() {
        let s3 = scm::decode(&hex!("F95300152A7986099C5811C5")).unwrap();
        let s4 = scm::decode(&hex!("F95300152A7987099C58F327")).unwrap();
        assert_eq!(dedup_key(&s3).unwrap(), "scm:5:629848:2783622:0:1");
        assert_ne!(dedup_key(&s3), dedup_key(&s4));
        let p1 = scm_plus::decode(&hex!("16A31EAB0410D35B00001AE3490039BE")).unwrap();
        assert_eq!(dedup_key(&p1).unwrap(), "scm+:171:68211547:6883:18688");
        let r1 = r900::decode(&hex!("5C24BB46A384062DFA0035B96E80"), false).unwrap();
        assert_eq!(dedup_key(&r1).unwrap(), "r900:1545911110:5C24BB46A384062DFA00");
        let r5 = r900::decode(&hex!("58865A81A1000160003F490C8E80"), true).unwrap();
        assert_eq!(dedup_key(&r5).unwrap(), "r900bcd:1485200001:58865A81A1000160003F");
        let i1 = idm::decode(&hex::decode(idm::tests_support::I1).unwrap(), false).unwrap();
        let i3 = idm::decode(&hex::decode(idm::tests_support::I3).unwrap(), false).unwrap();
        assert_eq!(dedup_key(&i1).unwrap(), "idm:7:11278109:246:339972");
        assert_eq!(dedup_key(&i1), dedup_key(&i3), "retransmission of the same interval");
        let i2 = idm::decode(&hex::decode(idm::tests_support::I2).unwrap(), false).unwrap();
        assert_ne!(dedup_key(&i1), dedup_key(&i2));
        let n1 = idm::decode(&hex::decode(idm::tests_support::I1).unwrap(), true).unwrap();
        assert_eq!(dedup_key(&n1).unwrap(), "netidm:7:11278109:246:0:5:0");
    }
}

/// Parse → emit → reparse round trips over arbitrary field values.
#[cfg(test)]
mod round_trips {
    use super::idm::{Idm, NetIdm};
    use super::r900::R900;
    use super::scm::Scm;
    use super::scm_plus::ScmPlus;
    use crate::error::Check;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn scm(id in 1u32..1 << 26, t in 0u8..16, phy in 0u8..4, enc in 0u8..4, c in 0u32..1 << 24, flip in 0usize..80) {
            let m = Scm { id, ert_type: t, tamper_phy: phy, tamper_enc: enc, consumption: c, checksum: 0 };
            let frame = m.encode();
            let back = Scm::parse(&frame).unwrap();
            prop_assert_eq!(Scm { checksum: back.checksum, ..m }, back);
            // Any single flipped bit after the sync is caught by the BCH.
            let mut bad = frame;
            let bit = 21 + flip % 75;
            bad[bit / 8] ^= 0x80 >> (bit % 8);
            prop_assert_eq!(Scm::parse(&bad).unwrap_err().failed_check(), Some(Check::Bch));
        }

        #[test]
        fn scm_plus(t: u8, id in 1u32.., c: u32, tamper: u16, flip in 16usize..128) {
            let m = ScmPlus { frame_sync: 0x16A3, protocol_id: 0x1E, endpoint_type: t, endpoint_id: id, consumption: c, tamper, packet_crc: 0 };
            let frame = m.encode();
            let back = ScmPlus::parse(&frame).unwrap();
            prop_assert_eq!(ScmPlus { packet_crc: back.packet_crc, ..m }, back);
            let mut bad = frame;
            bad[flip / 8] ^= 0x80 >> (flip % 8);
            prop_assert_eq!(ScmPlus::parse(&bad).unwrap_err().failed_check(), Some(Check::Crc));
        }

        #[test]
        fn r900(id: u32, unkn1: u8, no_use in 0u8..64, back_flow in 0u8..4, c in 0u32..1 << 24, unkn3 in 0u8..4, leak in 0u8..16, leak_now in 0u8..4, sym in 0usize..21, flip in 1u8..32) {
            let m = R900 { id, unkn1, no_use, back_flow, consumption: c, unkn3, leak, leak_now, parity: [0; 5] };
            let back = R900::parse(&m.encode()).unwrap();
            prop_assert_eq!(R900 { parity: back.parity, ..m }, back);
            let mut symbols = m.symbols();
            symbols[sym] ^= flip;
            prop_assert_eq!(R900::from_symbols(&symbols).unwrap_err().failed_check(), Some(Check::ReedSolomon));
        }

        #[test]
        fn idm(serial in 1u32.., count: u8, tamper: [u8; 6], outage: [u8; 6], last: u32, intervals in proptest::array::uniform32(0u16..512), tto: u16) {
            let mut iv = [0u16; 47];
            iv[..32].copy_from_slice(&intervals);
            iv[46] = intervals[0];
            let m = Idm {
                packet_type_id: 0x1C, packet_length: 0x5C, hamming_code: 0xC6, application_version: 4, ert_type_byte: 0x17,
                serial, interval_count: count, programming_state: 0xBC, tamper_counters: tamper, async_counters: 0,
                power_outage_flags: outage, last_consumption: last, intervals: iv, transmit_time_offset: tto, serial_crc: 0, packet_crc: 0,
            };
            let frame = m.encode();
            let back = Idm::parse(&frame).unwrap();
            prop_assert_eq!(Idm { serial_crc: back.serial_crc, packet_crc: back.packet_crc, ..m }, back);
            prop_assert!(NetIdm::parse(&frame).is_ok());
        }
    }
}
