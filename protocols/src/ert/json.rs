//! JSON lines from gateways: rtlamr's `-format=json` output (with the top-level `Type` of
//! rtlamr ≥ 0.9.2, or without it, then recognised by its keys), rtl_433's JSON (recognised by
//! its `model`, decoded by [`crate::rtl433`]) and the raw-packet envelope
//! `{"gateway": …, "received_at": …, "protocol": …, "hex": …}`.
//!
//! rtlamr lines are rebuilt into the typed messages, so a JSON read and the same packet received
//! raw decode to identical [`Decoded`] values, and every check the JSON still allows is run:
//! SCM's BCH (trying both values of the one bit rtlamr does not print), SCM+'s CRC and IDM's
//! serial-number CRC. IDM's packet CRC cannot be checked from JSON: rtlamr prints only the low
//! nibble of the type byte, and its `TamperCounters`/`PowerOutageFlags` are unreliable
//! (`idm/idm.go` keeps them as slices into a buffer the next packet overwrites; rtlamr2mqtt
//! #254 shows such a line next to the CRC-verified packet). R900 JSON carries no check at all.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use jiff::Timestamp;
use serde_json::{Map, Value};

use super::idm::{IDM_INTERVALS, Idm, NETIDM_INTERVALS, NetIdm};
use super::r900::{self, R900};
use super::scm::Scm;
use super::scm_plus::ScmPlus;
use super::{checks, idm};
use crate::decode::{Keys, Protocol, decode_binary, detect_binary_with};
use crate::decoded::Decoded;
use crate::error::{Check, Error, Result};
use crate::hexline;

/// Where a JSON line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// rtlamr's JSON output.
    Rtlamr,
    /// A gateway envelope carrying the raw packet.
    Envelope,
    /// rtl_433's JSON output.
    Rtl433,
}

/// A decoded JSON line with what ingest needs beside the frame.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonLine {
    /// The protocol the frame was decoded as.
    pub protocol: Protocol,
    /// The decoded frame.
    pub decoded: Decoded,
    /// When the gateway heard it (rtlamr `Time`, envelope `received_at`), if given.
    pub received_at: Option<Timestamp>,
    /// The gateway id (envelopes only).
    pub gateway: Option<String>,
    /// rtlamr line, rtl_433 line or envelope.
    pub source: Source,
}

/// A gateway envelope: one raw packet as hex with the gateway that heard it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The gateway id.
    pub gateway: String,
    /// When the gateway heard the packet (RFC 3339), if given.
    pub received_at: Option<Timestamp>,
    /// The protocol the gateway names; detected from the bytes when absent.
    pub protocol: Option<Protocol>,
    /// The packet.
    pub frame: Vec<u8>,
}

/// Parses an RFC 3339 time with offset, as rtlamr (`Time`, local offset, nanoseconds) and
/// envelopes write it.
pub fn parse_time(field: &'static str, text: &str) -> Result<Timestamp> {
    text.parse::<Timestamp>()
        .map_err(|e| Error::invalid(field, format!("{text:?} is not an RFC 3339 time: {e}")))
}

fn object(line: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::invalid("json", "expected a JSON object")),
        Err(e) => Err(Error::invalid("json", e.to_string())),
    }
}

fn text<'a>(map: &'a Map<String, Value>, key: &'static str) -> Result<Option<&'a str>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Error::invalid(key, format!("expected a string, got {other}"))),
    }
}

impl Envelope {
    /// Parses an envelope line. `gateway` and `hex` are required; unknown keys are kept out of
    /// the way (gateways add their own, e.g. signal strength).
    pub fn parse(line: &str) -> Result<Envelope> {
        Self::from_map(&object(line)?)
    }

    fn from_map(map: &Map<String, Value>) -> Result<Envelope> {
        let gateway = text(map, "gateway")?
            .ok_or_else(|| Error::invalid("gateway", "missing"))?
            .to_owned();
        let received_at = text(map, "received_at")?
            .map(|t| parse_time("received_at", t))
            .transpose()?;
        let protocol = text(map, "protocol")?.map(str::parse::<Protocol>).transpose()?;
        let frame = hexline::parse(text(map, "hex")?.ok_or_else(|| Error::invalid("hex", "missing"))?)?;
        Ok(Envelope {
            gateway,
            received_at,
            protocol,
            frame,
        })
    }

    /// Decodes the packet with the named (or detected) protocol; IDM/NetIDM intervals get their
    /// times from `received_at`.
    pub fn decode(&self, keys: &Keys) -> Result<(Protocol, Decoded)> {
        let protocol = match self.protocol {
            Some(p) => p,
            None => detect_binary_with(&self.frame, keys)
                .ok_or_else(|| Error::Unrecognised(format!("{} bytes in envelope hex", self.frame.len())))?,
        };
        let decoded = match protocol {
            Protocol::Idm => idm::decode_at(&self.frame, false, self.received_at)?,
            Protocol::NetIdm => idm::decode_at(&self.frame, true, self.received_at)?,
            p => decode_binary(p, &self.frame, keys)?,
        };
        Ok((protocol, decoded))
    }
}

/// Parses one JSON line (rtlamr, rtl_433 or envelope) into the decoded frame and its context.
pub fn parse_json_line(line: &str, keys: &Keys) -> Result<JsonLine> {
    let map = object(line)?;
    if map.contains_key("Message") {
        return rtlamr(&map);
    }
    if map.contains_key("model") {
        let line = crate::rtl433::parse_map(&map, keys)?;
        return Ok(JsonLine {
            protocol: line.protocol,
            decoded: line.decoded,
            received_at: line.received_at,
            gateway: None,
            source: Source::Rtl433,
        });
    }
    if map.contains_key("hex") {
        let envelope = Envelope::from_map(&map)?;
        let (protocol, decoded) = envelope.decode(keys)?;
        return Ok(JsonLine {
            protocol,
            decoded,
            received_at: envelope.received_at,
            gateway: Some(envelope.gateway),
            source: Source::Envelope,
        });
    }
    Err(Error::Unrecognised(
        "JSON line is neither an rtlamr message (Message), an rtl_433 line (model) nor a gateway envelope (hex)".into(),
    ))
}

/// The message type of an rtlamr line: its `Type`, or for rtlamr < 0.9.2 the keys of `Message`.
fn rtlamr_type(line: &Map<String, Value>, msg: &Map<String, Value>) -> Result<Protocol> {
    if let Some(t) = text(line, "Type")? {
        return match t {
            "SCM" => Ok(Protocol::Scm),
            "SCM+" => Ok(Protocol::ScmPlus),
            "IDM" => Ok(Protocol::Idm),
            "NetIDM" => Ok(Protocol::NetIdm),
            "R900" => Ok(Protocol::R900),
            "R900BCD" => Ok(Protocol::R900Bcd),
            other => Err(Error::Unsupported(format!("rtlamr message type {other:?}"))),
        };
    }
    let has = |k: &str| msg.contains_key(k);
    if has("ChecksumVal") {
        Ok(Protocol::Scm)
    } else if has("FrameSync") || has("EndpointID") {
        Ok(Protocol::ScmPlus)
    } else if has("PacketTypeID") {
        Ok(Protocol::Idm)
    } else if has("LastConsumptionNet") {
        Ok(Protocol::NetIdm)
    } else if has("Unkn1") {
        // R900BCD has the same keys; without Type the binary reading is all that can be assumed.
        Ok(Protocol::R900)
    } else {
        Err(Error::Unrecognised(
            "rtlamr Message matches no known message type".into(),
        ))
    }
}

fn rtlamr(line: &Map<String, Value>) -> Result<JsonLine> {
    let Some(Value::Object(msg)) = line.get("Message") else {
        return Err(Error::invalid("Message", "expected an object"));
    };
    let received_at = text(line, "Time")?.map(|t| parse_time("Time", t)).transpose()?;
    let protocol = rtlamr_type(line, msg)?;
    let decoded = match protocol {
        Protocol::Scm => scm_from_fields(msg)?.to_decoded(),
        Protocol::ScmPlus => scm_plus_from_fields(msg)?.to_decoded(),
        Protocol::Idm => idm_from_fields(msg)?.to_decoded(received_at),
        Protocol::NetIdm => netidm_from_fields(msg)?.to_decoded(received_at),
        Protocol::R900 => r900_from_fields(msg, false)?.to_decoded(false)?,
        Protocol::R900Bcd => r900_from_fields(msg, true)?.to_decoded(true)?,
        other => return Err(Error::Unsupported(format!("{other} in an rtlamr line"))),
    };
    Ok(JsonLine {
        protocol,
        decoded,
        received_at,
        gateway: None,
        source: Source::Rtlamr,
    })
}

/// An unsigned integer field of at most `bits` bits.
fn uint(msg: &Map<String, Value>, key: &'static str, bits: u32) -> Result<u64> {
    let v = msg
        .get(key)
        .ok_or_else(|| Error::invalid(key, "missing"))?
        .as_u64()
        .ok_or_else(|| Error::invalid(key, format!("expected an unsigned integer, got {}", msg[key])))?;
    if bits < 64 && v >> bits != 0 {
        return Err(Error::invalid(key, format!("{v} does not fit in {bits} bits")));
    }
    Ok(v)
}

fn u8f(msg: &Map<String, Value>, key: &'static str, bits: u32) -> Result<u8> {
    uint(msg, key, bits).map(|v| v as u8)
}

fn u16f(msg: &Map<String, Value>, key: &'static str) -> Result<u16> {
    uint(msg, key, 16).map(|v| v as u16)
}

fn u32f(msg: &Map<String, Value>, key: &'static str, bits: u32) -> Result<u32> {
    uint(msg, key, bits).map(|v| v as u32)
}

fn bytes6(msg: &Map<String, Value>, key: &'static str) -> Result<[u8; 6]> {
    let s = text(msg, key)?.ok_or_else(|| Error::invalid(key, "missing"))?;
    let v = BASE64
        .decode(s)
        .map_err(|e| Error::invalid(key, format!("not base64: {e}")))?;
    v.try_into()
        .map_err(|v: Vec<u8>| Error::invalid(key, format!("expected 6 bytes, got {}", v.len())))
}

fn intervals<const N: usize>(msg: &Map<String, Value>, bits: u32) -> Result<[u16; N]> {
    const KEY: &str = "DifferentialConsumptionIntervals";
    let Some(Value::Array(list)) = msg.get(KEY) else {
        return Err(Error::invalid(KEY, "missing or not an array"));
    };
    if list.len() != N {
        return Err(Error::invalid(
            KEY,
            format!("expected {N} intervals, got {}", list.len()),
        ));
    }
    let mut out = [0u16; N];
    for (slot, v) in out.iter_mut().zip(list) {
        match v.as_u64() {
            Some(n) if n >> bits == 0 => *slot = n as u16,
            _ => {
                return Err(Error::invalid(
                    KEY,
                    format!("{v} is not a {bits}-bit unsigned interval"),
                ));
            }
        }
    }
    Ok(out)
}

fn serial_crc(serial: u32, crc: u16) -> Result<()> {
    let want = checks::GENIBUS.checksum(&serial.to_be_bytes());
    if want != crc {
        return Err(Error::check(
            Check::Crc,
            format!("SerialNumberCRC 0x{crc:04X} does not match ERTSerialNumber {serial} (0x{want:04X})"),
        ));
    }
    if serial == 0 {
        return Err(Error::invalid("ERTSerialNumber", "serial number 0 is not a meter"));
    }
    Ok(())
}

/// Rebuilds an SCM from rtlamr's fields and checks its BCH.
pub fn scm_from_fields(msg: &Map<String, Value>) -> Result<Scm> {
    let scm = Scm {
        id: u32f(msg, "ID", 26)?,
        ert_type: u8f(msg, "Type", 4)?,
        tamper_phy: u8f(msg, "TamperPhy", 2)?,
        tamper_enc: u8f(msg, "TamperEnc", 2)?,
        consumption: u32f(msg, "Consumption", 24)?,
        checksum: u16f(msg, "ChecksumVal")?,
    };
    // rtlamr does not print reserved bit 23; the BCH covers it, so either value may be the one.
    let frame = [false, true]
        .into_iter()
        .map(|reserved| scm.encode_with(reserved))
        .find(|f| f[10..] == scm.checksum.to_be_bytes())
        .ok_or_else(|| {
            Error::check(
                Check::Bch,
                format!("ChecksumVal 0x{:04X} does not match the other fields", scm.checksum),
            )
        })?;
    Scm::parse(&frame)
}

/// Rebuilds an SCM+ from rtlamr's fields and checks it like a received frame.
pub fn scm_plus_from_fields(msg: &Map<String, Value>) -> Result<ScmPlus> {
    let m = ScmPlus {
        frame_sync: u16f(msg, "FrameSync")?,
        protocol_id: u8f(msg, "ProtocolID", 8)?,
        endpoint_type: u8f(msg, "EndpointType", 8)?,
        endpoint_id: u32f(msg, "EndpointID", 32)?,
        consumption: u32f(msg, "Consumption", 32)?,
        tamper: u16f(msg, "Tamper")?,
        packet_crc: u16f(msg, "PacketCRC")?,
    };
    let mut frame = m.encode();
    frame[14..].copy_from_slice(&m.packet_crc.to_be_bytes());
    ScmPlus::parse(&frame)
}

/// Rebuilds an IDM from rtlamr's fields; checks the serial-number CRC.
pub fn idm_from_fields(msg: &Map<String, Value>) -> Result<Idm> {
    let m = Idm {
        packet_type_id: u8f(msg, "PacketTypeID", 8)?,
        packet_length: u8f(msg, "PacketLength", 8)?,
        hamming_code: u8f(msg, "HammingCode", 8)?,
        application_version: u8f(msg, "ApplicationVersion", 8)?,
        ert_type_byte: u8f(msg, "ERTType", 4)?,
        serial: u32f(msg, "ERTSerialNumber", 32)?,
        interval_count: u8f(msg, "ConsumptionIntervalCount", 8)?,
        programming_state: u8f(msg, "ModuleProgrammingState", 8)?,
        tamper_counters: bytes6(msg, "TamperCounters")?,
        async_counters: u16f(msg, "AsynchronousCounters")?,
        power_outage_flags: bytes6(msg, "PowerOutageFlags")?,
        last_consumption: u32f(msg, "LastConsumptionCount", 32)?,
        intervals: intervals::<IDM_INTERVALS>(msg, 9)?,
        transmit_time_offset: u16f(msg, "TransmitTimeOffset")?,
        serial_crc: u16f(msg, "SerialNumberCRC")?,
        packet_crc: u16f(msg, "PacketCRC")?,
    };
    if m.packet_type_id != idm::PACKET_TYPE {
        return Err(Error::invalid(
            "PacketTypeID",
            format!("{} is not an interval data message (28)", m.packet_type_id),
        ));
    }
    serial_crc(m.serial, m.serial_crc)?;
    Ok(m)
}

/// Rebuilds a NetIDM from rtlamr's fields; checks the serial-number CRC.
pub fn netidm_from_fields(msg: &Map<String, Value>) -> Result<NetIdm> {
    let m = NetIdm {
        protocol_id: u8f(msg, "ProtocolID", 8)?,
        packet_length: u8f(msg, "PacketLength", 8)?,
        hamming_code: u8f(msg, "HammingCode", 8)?,
        application_version: u8f(msg, "ApplicationVersion", 8)?,
        ert_type_byte: u8f(msg, "ERTType", 4)?,
        serial: u32f(msg, "ERTSerialNumber", 32)?,
        interval_count: u8f(msg, "ConsumptionIntervalCount", 8)?,
        programming_state: u8f(msg, "ProgrammingState", 8)?,
        last_consumption: u32f(msg, "LastConsumption", 24)?,
        last_generation: u32f(msg, "LastGeneration", 24)?,
        last_consumption_net: u32f(msg, "LastConsumptionNet", 32)?,
        intervals: intervals::<NETIDM_INTERVALS>(msg, 14)?,
        transmit_time_offset: u16f(msg, "TransmitTimeOffset")?,
        serial_crc: u16f(msg, "SerialNumberCRC")?,
        packet_crc: u16f(msg, "PacketCRC")?,
    };
    if m.protocol_id != idm::PACKET_TYPE {
        return Err(Error::invalid(
            "ProtocolID",
            format!("{} is not an interval data message (28)", m.protocol_id),
        ));
    }
    serial_crc(m.serial, m.serial_crc)?;
    Ok(m)
}

/// Rebuilds an R900 from rtlamr's fields (R900BCD: `Consumption` is the decimal reading). The
/// parity is recomputed: RS is systematic, so it follows from the data.
pub fn r900_from_fields(msg: &Map<String, Value>, bcd: bool) -> Result<R900> {
    let unkn1 = u8f(msg, "Unkn1", 8)?;
    let consumption = if bcd {
        let value = u32f(msg, "Consumption", 32)?;
        if value == 0 && unkn1 != r900::UNKN1_BCD {
            // rtlamr prints 0 for a field that is not BCD: a binary meter read as BCD.
            return Err(Error::invalid(
                "Consumption",
                format!("R900BCD 0 from a meter with Unkn1 0x{unkn1:02X}: rtlamr's mark of a non-BCD value"),
            ));
        }
        r900::to_bcd(value).ok_or_else(|| Error::invalid("Consumption", format!("{value} has more than six digits")))?
    } else {
        u32f(msg, "Consumption", 24)?
    };
    let mut m = R900 {
        id: u32f(msg, "ID", 32)?,
        unkn1,
        no_use: u8f(msg, "NoUse", 6)?,
        back_flow: u8f(msg, "BackFlow", 2)?,
        consumption,
        unkn3: u8f(msg, "Unkn3", 2)?,
        leak: u8f(msg, "Leak", 4)?,
        leak_now: u8f(msg, "LeakNow", 2)?,
        parity: [0; 5],
    };
    let symbols = m.symbols();
    m.parity.copy_from_slice(&symbols[16..]);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ert::idm::tests_support::I1;

    fn keys() -> Keys {
        Keys::new()
    }

    #[test]
    fn rtlamr_scm_line_with_type() {
        // A real line (val123456/Dockerized-rtlamr-to-SQLite `docs/monitoring.md`).
        let line = r#"{"Time":"2020-02-07T22:09:28.963747635-05:00","Offset":0,"Length":0,"Type":"SCM","Message":{"ID":22277181,"Type":7,"TamperPhy":1,"TamperEnc":0,"Consumption":7329333,"ChecksumVal":63807}}"#;
        let l = parse_json_line(line, &keys()).unwrap();
        assert_eq!(l.protocol, Protocol::Scm);
        assert_eq!(l.source, Source::Rtlamr);
        assert_eq!(l.received_at.unwrap().to_string(), "2020-02-08T03:09:28.963747635Z");
        assert_eq!(l.decoded.meter_id, "22277181");
        assert_eq!(l.decoded.readings[0].value, 7329333);
        assert_eq!(l.decoded.flags, ["tamper"]);
        assert_eq!(
            Value::Object(l.decoded.fields),
            serde_json::from_str::<Value>(line).unwrap()["Message"]
        );
    }

    #[test]
    fn rtlamr_lines_without_type_are_recognised_by_keys() {
        let scm = r#"{"Time":"2019-02-07T22:00:28.481Z","Offset":0,"Length":0,"Message":{"ID":54585868,"Type":12,"TamperPhy":3,"TamperEnc":0,"Consumption":562456,"ChecksumVal":4122}}"#;
        let raw = crate::ert::scm::decode(&hex::decode("F95306F008951840EA0C101A").unwrap()).unwrap();
        assert_eq!(decode_json_line_for_test(scm), raw, "JSON and raw decode alike");
        let r900 = r#"{"Time":"2018-10-11T17:10:45.999515724Z","Offset":0,"Length":0,"Message":{"ID":1545911110,"Unkn1":163,"NoUse":33,"BackFlow":0,"Consumption":404986,"Unkn3":0,"Leak":0,"LeakNow":0}}"#;
        let raw = crate::ert::r900::decode(&hex::decode("5C24BB46A384062DFA0035B96E80").unwrap(), false).unwrap();
        assert_eq!(decode_json_line_for_test(r900), raw);
        let scm_plus = r#"{"Time":"2022-07-09T11:02:29.285032816-07:00","Offset":0,"Length":0,"Message":{"FrameSync":5795,"ProtocolID":30,"EndpointType":171,"EndpointID":68211547,"Consumption":6883,"Tamper":18688,"PacketCRC":14782}}"#;
        let raw = crate::ert::scm_plus::decode(&hex::decode("16A31EAB0410D35B00001AE3490039BE").unwrap()).unwrap();
        assert_eq!(decode_json_line_for_test(scm_plus), raw);
    }

    fn decode_json_line_for_test(line: &str) -> Decoded {
        crate::ert::decode_json_line(line, &keys()).unwrap()
    }

    #[test]
    fn rtlamr_scm_plus_real_line_passes_its_crc() {
        // A real line (HomeBusProjects/homebus-rtlamr-meter-reader, comment in `app.rb`).
        let line = r#"{"Time":"2022-07-09T11:02:29.285032816-07:00","Offset":0,"Length":0,"Type":"SCM+","Message":{"FrameSync":5795,"ProtocolID":30,"EndpointType":188,"EndpointID":101100604,"Consumption":162430,"Tamper":768,"PacketCRC":37996}}"#;
        let d = decode_json_line_for_test(line);
        assert_eq!(d.protocol, "scm+");
        assert_eq!(d.meter_id, "101100604");
        assert_eq!(d.readings[0].value, 162430);
        let bad = line.replace("162430", "162431");
        assert_eq!(
            crate::ert::decode_json_line(&bad, &keys()).unwrap_err().failed_check(),
            Some(Check::Crc)
        );
    }

    #[test]
    fn rtlamr_scm_with_wrong_checksum_is_refused() {
        let line = r#"{"Type":"SCM","Message":{"ID":54585868,"Type":12,"TamperPhy":3,"TamperEnc":0,"Consumption":562457,"ChecksumVal":4122}}"#;
        assert_eq!(
            crate::ert::decode_json_line(line, &keys()).unwrap_err().failed_check(),
            Some(Check::Bch)
        );
    }

    fn i1_json(time: &str) -> String {
        format!(
            r#"{{"Time":"{time}","Offset":0,"Length":0,"Type":"IDM","Message":{{"Preamble":1431639715,"PacketTypeID":28,"PacketLength":92,"HammingCode":198,"ApplicationVersion":4,"ERTType":7,"ERTSerialNumber":11278109,"ConsumptionIntervalCount":246,"ModuleProgrammingState":188,"TamperCounters":"AgEA7wkA","AsynchronousCounters":0,"PowerOutageFlags":"AAAAAAAA","LastConsumptionCount":339972,"DifferentialConsumptionIntervals":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,1,0,0],"TransmitTimeOffset":476,"SerialNumberCRC":60090,"PacketCRC":31799}}}}"#
        )
    }

    #[test]
    fn rtlamr_idm_line_matches_the_raw_packet_and_gets_interval_times() {
        let t = "2026-01-01T07:00:00-05:00";
        let l = parse_json_line(&i1_json(t), &keys()).unwrap();
        let raw = idm::decode_at(&hex::decode(I1).unwrap(), false, Some(parse_time("t", t).unwrap())).unwrap();
        assert_eq!(l.decoded, raw);
        assert_eq!(l.decoded.readings[1].at.as_deref(), Some("2026-01-01T11:59:30.25Z"));
        // Without Type (rtlamr < 0.9.2) the keys say IDM.
        let old = i1_json(t).replace(r#""Type":"IDM","#, "");
        assert_eq!(parse_json_line(&old, &keys()).unwrap().decoded, raw);
    }

    #[test]
    fn anonymised_rtlamr_mock_idm_fails_its_serial_crc() {
        // allangood/rtlamr2mqtt's mock (`mock/rtlamr`) replaced the serial (59897589 → 33333333) but kept
        // the serial CRC, so the line is refused rather than stored under a made-up meter.
        let line = r#"{"Time":"2025-05-05T21:25:04.891578823Z","Offset":0,"Length":0,"Type":"IDM","Message":{"Preamble":1431639715,"PacketTypeID":28,"PacketLength":92,"HammingCode":198,"ApplicationVersion":4,"ERTType":7,"ERTSerialNumber":33333333,"ConsumptionIntervalCount":76,"ModuleProgrammingState":188,"TamperCounters":"AwIAcw4A","AsynchronousCounters":0,"PowerOutageFlags":"AAAAAAAA","LastConsumptionCount":1978208,"DifferentialConsumptionIntervals":[26,26,27,26,26,24,24,24,24,24,26,26,26,27,26,26,26,26,24,23,48,23,24,25,25,24,25,24,25,25,23,23,22,23,23,23,24,25,25,25,25,25,26,23,23,22,23],"TransmitTimeOffset":3911,"SerialNumberCRC":43319,"PacketCRC":49515}}"#;
        let err = crate::ert::decode_json_line(line, &keys()).unwrap_err();
        assert_eq!(err.failed_check(), Some(Check::Crc), "{err}");
        // With the real serial the same line decodes.
        let real = line.replace("33333333", "59897589");
        let d = crate::ert::decode_json_line(&real, &keys()).unwrap();
        assert_eq!(d.meter_id, "59897589");
        assert_eq!(d.readings[0].value, 1978208);
        assert_eq!(d.readings[1].value, 26);
        // TTO 3911/16 s = 244.4375 s before reception.
        assert_eq!(d.readings[1].at.as_deref(), Some("2025-05-05T21:21:00.454078823Z"));
    }

    #[test]
    fn rtlamr_netidm_line() {
        // A real NetIDM line, quoted in rtl_433's `src/devices/ert_idm.c` (type-7 meter; serial CRC 0xEEFA matches).
        let line = r#"{"Time":"2020-06-25T08:22:08.569276915-04:00","Offset":1605632,"Length":229376,"Type":"NetIDM","Message":{"Preamble":1431639715,"ProtocolID":28,"PacketLength":92,"HammingCode":198,"ApplicationVersion":4,"ERTType":7,"ERTSerialNumber":1550406067,"ConsumptionIntervalCount":30,"ProgrammingState":184,"LastGeneration":125,"LastConsumption":0,"LastConsumptionNet":2223120656,"DifferentialConsumptionIntervals":[7695,545,2086,1475,6240,2180,4240,4616,240,7191,609,7224,1603,96,2052,12464,6152,8480,9226,352,12312,833,10292,1795,4248,4613,8416],"TransmitTimeOffset":2145,"SerialNumberCRC":61178,"PacketCRC":37271}}"#;
        let l = parse_json_line(line, &keys()).unwrap();
        assert_eq!(l.protocol, Protocol::NetIdm);
        let d = l.decoded;
        assert_eq!(d.meter_id, "1550406067");
        assert_eq!(
            Value::Object(d.fields.clone()),
            serde_json::from_str::<Value>(line).unwrap()["Message"]
        );
        let q: Vec<(&str, &Value)> = d.readings.iter().take(3).map(|r| (&*r.quantity, &r.value)).collect();
        assert_eq!(
            q,
            [
                ("register", &Value::from(0)),
                ("generation", &Value::from(125)),
                ("net_register", &Value::from(2223120656u32))
            ]
        );
        // TTO 2145/16 s = 134.0625 s before 12:22:08.569276915Z.
        assert_eq!(d.readings[0].at.as_deref(), Some("2020-06-25T12:19:54.506776915Z"));
        assert_eq!(d.readings.len(), 30);
        // Without Type, LastConsumptionNet marks NetIDM.
        let old = line.replace(r#""Type":"NetIDM","#, "");
        assert_eq!(parse_json_line(&old, &keys()).unwrap().protocol, Protocol::NetIdm);
    }

    #[test]
    fn rtlamr_r900_real_line_and_bcd() {
        let line = r#"{"Time":"2020-02-07T22:09:37.634567567-05:00","Offset":0,"Length":0,"Type":"R900","Message":{"ID":1563476986,"Unkn1":163,"NoUse":32,"BackFlow":0,"Consumption":111051,"Unkn3":0,"Leak":1,"LeakNow":0}}"#;
        let d = decode_json_line_for_test(line);
        assert_eq!(d.protocol, "r900");
        assert_eq!(d.readings[0].value, 111051);
        assert_eq!(d.flags, ["leak"], "Leak 1: leak on 1–2 days; NoUse 32: bucket 0");
        let bcd = r#"{"Type":"R900BCD","Message":{"ID":1485200001,"Unkn1":161,"NoUse":0,"BackFlow":0,"Consumption":16000,"Unkn3":0,"Leak":15,"LeakNow":3}}"#;
        let raw = crate::ert::r900::decode(&hex::decode("58865A81A1000160003F490C8E80").unwrap(), true).unwrap();
        assert_eq!(decode_json_line_for_test(bcd), raw);
        let zero_from_binary = bcd.replace("16000", "0").replace("161", "163");
        let err = crate::ert::decode_json_line(&zero_from_binary, &keys()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Invalid {
                    field: "Consumption",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn rtlamr_field_errors_name_the_field() {
        let missing = r#"{"Type":"SCM","Message":{"ID":1,"Type":12,"TamperPhy":3,"TamperEnc":0,"ChecksumVal":4122}}"#;
        assert!(matches!(
            crate::ert::decode_json_line(missing, &keys()),
            Err(Error::Invalid {
                field: "Consumption",
                ..
            })
        ));
        let wide = r#"{"Type":"SCM","Message":{"ID":1,"Type":16,"TamperPhy":3,"TamperEnc":0,"Consumption":1,"ChecksumVal":4122}}"#;
        assert!(matches!(
            crate::ert::decode_json_line(wide, &keys()),
            Err(Error::Invalid { field: "Type", .. })
        ));
        let neg = r#"{"Type":"R900","Message":{"ID":-1,"Unkn1":163,"NoUse":0,"BackFlow":0,"Consumption":1,"Unkn3":0,"Leak":0,"LeakNow":0}}"#;
        assert!(matches!(
            crate::ert::decode_json_line(neg, &keys()),
            Err(Error::Invalid { field: "ID", .. })
        ));
        let unknown = r#"{"Type":"GPS","Message":{}}"#;
        assert!(matches!(
            crate::ert::decode_json_line(unknown, &keys()),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(
            crate::ert::decode_json_line("{\"a\":1}", &keys()),
            Err(Error::Unrecognised(_))
        ));
        assert!(matches!(
            crate::ert::decode_json_line("{", &keys()),
            Err(Error::Invalid { field: "json", .. })
        ));
        let bad_time = r#"{"Time":"yesterday","Message":{"ID":54585868,"Type":12,"TamperPhy":3,"TamperEnc":0,"Consumption":562456,"ChecksumVal":4122}}"#;
        assert!(matches!(
            crate::ert::decode_json_line(bad_time, &keys()),
            Err(Error::Invalid { field: "Time", .. })
        ));
    }

    #[test]
    fn envelope_typed_parse_and_decode() {
        let line = r#"{"gateway":"gw-north-7","received_at":"2026-03-01T10:00:00Z","protocol":"scm","hex":"F9 53 06 F0 08 95 18 40 EA 0C 10 1A","rssi":-71}"#;
        let e = Envelope::parse(line).unwrap();
        assert_eq!(e.gateway, "gw-north-7");
        assert_eq!(e.received_at.unwrap().to_string(), "2026-03-01T10:00:00Z");
        assert_eq!(e.protocol, Some(Protocol::Scm));
        assert_eq!(e.frame.len(), 12);
        let l = parse_json_line(line, &keys()).unwrap();
        assert_eq!(l.source, Source::Envelope);
        assert_eq!(l.gateway.as_deref(), Some("gw-north-7"));
        assert_eq!(l.decoded.meter_id, "54585868");
    }

    #[test]
    fn envelope_idm_gets_interval_times_and_netidm_by_name() {
        let line = format!(r#"{{"gateway":"g1","received_at":"2026-01-01T12:00:00Z","protocol":"idm","hex":"{I1}"}}"#);
        let d = decode_json_line_for_test(&line);
        assert_eq!(d.readings[0].at.as_deref(), Some("2026-01-01T11:59:30.25Z"));
        let net = line.replace(r#""idm""#, r#""netidm""#);
        assert_eq!(decode_json_line_for_test(&net).protocol, "netidm");
        let detected = line.replace(r#""protocol":"idm","#, "");
        assert_eq!(decode_json_line_for_test(&detected).protocol, "idm");
    }

    #[test]
    fn envelope_errors() {
        let bad_crc = r#"{"gateway":"g1","received_at":"2026-01-01T12:00:00Z","protocol":"scm+","hex":"16A31EAB0410D35B00001AE2490039BE"}"#;
        assert_eq!(
            crate::ert::decode_json_line(bad_crc, &keys())
                .unwrap_err()
                .failed_check(),
            Some(Check::Crc)
        );
        let no_gw = r#"{"protocol":"scm","hex":"F95306F008951840EA0C101A"}"#;
        assert!(matches!(
            Envelope::parse(no_gw),
            Err(Error::Invalid { field: "gateway", .. })
        ));
        let bad_proto = r#"{"gateway":"g","protocol":"zigbee","hex":"00"}"#;
        assert!(matches!(
            Envelope::parse(bad_proto),
            Err(Error::Invalid { field: "protocol", .. })
        ));
        let bad_hex = r#"{"gateway":"g","hex":"XYZ"}"#;
        assert!(matches!(
            Envelope::parse(bad_hex),
            Err(Error::Invalid { field: "hex", .. })
        ));
        let bad_time = r#"{"gateway":"g","received_at":"noon","hex":"00"}"#;
        assert!(matches!(
            Envelope::parse(bad_time),
            Err(Error::Invalid {
                field: "received_at",
                ..
            })
        ));
    }
}
