//! IDM and NetIDM, the Interval Data Messages: 92 bytes in rtlamr's framing from `55 55 16 A3`
//! (90 bytes in rtl_433's, without `55 55`), a packet CRC over bytes 4..91 and a serial-number
//! CRC, both CRC-16/GENIBUS (byte offsets of rtlamr's `idm/idm.go` and `netidm/netidm.go`, and
//! its gh-pages "Protocol" page).
//!
//! The two share preamble, length and checks; the bytes cannot tell them apart (both rtlamr and
//! rtl_433 accept every such packet as either), so the caller says which layout to apply.
//! Offsets below are rtlamr's (from the first `55`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use jiff::{SignedDuration, Timestamp};
use nom::bits::complete::take;
use nom::bytes::complete::take as take_bytes;
use nom::number::complete::{be_u8, be_u16, be_u24, be_u32};
use nom::{IResult, Parser};
use serde_json::{Map, Value};

use super::{BitInput, checks, nom_bits};
use crate::decoded::{Decoded, Reading};
use crate::error::{Error, Result};

/// Frame length in rtlamr's framing (`55 55 16 A3 …`).
pub const LEN: usize = 92;
/// Frame length without the `55 55` preamble bytes (rtl_433's framing).
pub const LEN_WITHOUT_PREAMBLE: usize = 90;
/// rtlamr's `Preamble` field: `55 55 16 A3`.
pub const PREAMBLE: u32 = 0x5555_16A3;
/// `PacketTypeID` of IDM and NetIDM.
pub const PACKET_TYPE: u8 = 0x1C;
/// Intervals in an IDM.
pub const IDM_INTERVALS: usize = 47;
/// Intervals in a NetIDM.
pub const NETIDM_INTERVALS: usize = 27;
/// Length of one interval (rtlamr-collect).
pub const INTERVAL: SignedDuration = SignedDuration::from_secs(300);

/// One IDM, field by field as rtlamr names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Idm {
    /// `PacketTypeID` (0x1C).
    pub packet_type_id: u8,
    /// `PacketLength` (0x5C).
    pub packet_length: u8,
    /// `HammingCode`.
    pub hamming_code: u8,
    /// `ApplicationVersion`.
    pub application_version: u8,
    /// The ERT type byte as sent; rtlamr's `ERTType` is its low nibble (from rtlamr JSON only
    /// the low nibble is known).
    pub ert_type_byte: u8,
    /// `ERTSerialNumber` (the meter id; the same number as the ERT's SCM ID).
    pub serial: u32,
    /// `ConsumptionIntervalCount`: the number of the newest interval, mod 256.
    pub interval_count: u8,
    /// `ModuleProgrammingState`.
    pub programming_state: u8,
    /// `TamperCounters`.
    pub tamper_counters: [u8; 6],
    /// `AsynchronousCounters`.
    pub async_counters: u16,
    /// `PowerOutageFlags`: bit (46 − i) of these 48 bits belongs to interval i.
    pub power_outage_flags: [u8; 6],
    /// `LastConsumptionCount`: the register at the start of the current interval.
    pub last_consumption: u32,
    /// `DifferentialConsumptionIntervals`: 9-bit usage per 5-minute interval, index 0 newest.
    pub intervals: [u16; IDM_INTERVALS],
    /// `TransmitTimeOffset`: 1/16 s since the current interval began.
    pub transmit_time_offset: u16,
    /// `SerialNumberCRC`.
    pub serial_crc: u16,
    /// `PacketCRC`.
    pub packet_crc: u16,
}

/// One NetIDM (net-metering layout of the same packet), field by field as rtlamr names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetIdm {
    /// `ProtocolID` (the byte IDM calls PacketTypeID).
    pub protocol_id: u8,
    /// `PacketLength`.
    pub packet_length: u8,
    /// `HammingCode`.
    pub hamming_code: u8,
    /// `ApplicationVersion`.
    pub application_version: u8,
    /// The ERT type byte; rtlamr's `ERTType` is its low nibble.
    pub ert_type_byte: u8,
    /// `ERTSerialNumber`.
    pub serial: u32,
    /// `ConsumptionIntervalCount`.
    pub interval_count: u8,
    /// `ProgrammingState`.
    pub programming_state: u8,
    /// `LastConsumption` (24 bits, bytes 25..27).
    pub last_consumption: u32,
    /// `LastGeneration` (24 bits, bytes 28..30).
    pub last_generation: u32,
    /// `LastConsumptionNet` (32 bits, bytes 34..37).
    pub last_consumption_net: u32,
    /// `DifferentialConsumptionIntervals`: 27 × 14-bit unsigned, index 0 newest.
    pub intervals: [u16; NETIDM_INTERVALS],
    /// `TransmitTimeOffset`.
    pub transmit_time_offset: u16,
    /// `SerialNumberCRC`.
    pub serial_crc: u16,
    /// `PacketCRC`.
    pub packet_crc: u16,
}

/// One interval of an IDM/NetIDM with its place in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalRead {
    /// Position in the packet, 0 = newest.
    pub index: usize,
    /// The meter's interval number, `(ConsumptionIntervalCount − index) mod 256`.
    pub number: u8,
    /// Usage in the interval (register units).
    pub consumption: u16,
    /// End of the interval, when the reception time is known.
    pub end: Option<Timestamp>,
}

/// The end of interval `index` of a packet received at `received_at` (rtlamr-collect's rule):
/// `received_at − index × 5 min − TransmitTimeOffset / 16 s`. Interval 0 ends where the
/// current (unreported) interval began, which is also the moment `LastConsumptionCount` holds for.
pub fn interval_end(received_at: Timestamp, index: usize, transmit_time_offset: u16) -> Option<Timestamp> {
    let back = INTERVAL
        .checked_mul(index as i32)?
        .checked_add(SignedDuration::from_nanos(i64::from(transmit_time_offset) * 62_500_000))?;
    received_at.checked_sub(back).ok()
}

/// Checks framing and both CRCs; returns the 88 bytes from `PacketTypeID` on.
fn checked_body(frame: &[u8]) -> Result<&[u8]> {
    let body = match frame.len() {
        LEN if frame[..4] == PREAMBLE.to_be_bytes() => &frame[4..],
        LEN_WITHOUT_PREAMBLE if frame[..2] == PREAMBLE.to_be_bytes()[2..] => &frame[2..],
        LEN | LEN_WITHOUT_PREAMBLE => {
            return Err(Error::invalid(
                "sync",
                format!(
                    "IDM must start with 55 55 16 A3 (92 bytes) or 16 A3 (90 bytes), got {}",
                    crate::hexline::format(&frame[..4])
                ),
            ));
        }
        n if n < LEN_WITHOUT_PREAMBLE => {
            return Err(Error::Incomplete {
                needed: LEN_WITHOUT_PREAMBLE - n,
            });
        }
        91 if frame[0] == 0x55 => return Err(Error::Incomplete { needed: 1 }),
        n => {
            return Err(Error::invalid(
                "length",
                format!("IDM is 92 bytes (or 90 without 55 55), got {n}"),
            ));
        }
    };
    checks::genibus(body, "PacketCRC over bytes 4..91")?;
    let serial_block = [body[5], body[6], body[7], body[8], body[84], body[85]];
    checks::genibus(&serial_block, "SerialNumberCRC over bytes 9..12")?;
    if body[0] != PACKET_TYPE {
        return Err(Error::invalid(
            "PacketTypeID",
            format!("0x{:02X} is not an interval data message (0x1C)", body[0]),
        ));
    }
    if body[5..9] == [0; 4] {
        return Err(Error::invalid("ERTSerialNumber", "serial number 0 is not a meter"));
    }
    Ok(body)
}

fn idm_intervals(input: BitInput<'_>) -> IResult<BitInput<'_>, [u16; IDM_INTERVALS]> {
    let mut out = [0u16; IDM_INTERVALS];
    let mut input = input;
    for slot in &mut out {
        let (rest, v) = take(9usize)(input)?;
        *slot = v;
        input = rest;
    }
    let (input, _spare): (_, u8) = take(1usize)(input)?;
    Ok((input, out))
}

fn netidm_intervals(input: BitInput<'_>) -> IResult<BitInput<'_>, [u16; NETIDM_INTERVALS]> {
    let mut out = [0u16; NETIDM_INTERVALS];
    let mut input = input;
    for slot in &mut out {
        let (rest, v) = take(14usize)(input)?;
        *slot = v;
        input = rest;
    }
    let (input, _spare): (_, u8) = take(6usize)(input)?;
    Ok((input, out))
}

fn six(input: &[u8]) -> IResult<&[u8], [u8; 6]> {
    let (rest, b) = take_bytes(6usize)(input)?;
    let mut out = [0u8; 6];
    out.copy_from_slice(b);
    Ok((rest, out))
}

fn idm_fields(body: &[u8]) -> Result<Idm> {
    let (rest, (packet_type_id, packet_length, hamming_code, application_version, ert_type_byte)) =
        (be_u8, be_u8, be_u8, be_u8, be_u8).parse(body)?;
    let (
        rest,
        (
            serial,
            interval_count,
            programming_state,
            tamper_counters,
            async_counters,
            power_outage_flags,
            last_consumption,
        ),
    ) = (be_u32, be_u8, be_u8, six, be_u16, six, be_u32).parse(rest)?;
    let (bits_part, rest) = rest.split_at(53);
    let intervals = nom_bits(idm_intervals, bits_part)?;
    let (_, (transmit_time_offset, serial_crc, packet_crc)) = (be_u16, be_u16, be_u16).parse(rest)?;
    Ok(Idm {
        packet_type_id,
        packet_length,
        hamming_code,
        application_version,
        ert_type_byte,
        serial,
        interval_count,
        programming_state,
        tamper_counters,
        async_counters,
        power_outage_flags,
        last_consumption,
        intervals,
        transmit_time_offset,
        serial_crc,
        packet_crc,
    })
}

fn netidm_fields(body: &[u8]) -> Result<NetIdm> {
    let (rest, (protocol_id, packet_length, hamming_code, application_version, ert_type_byte)) =
        (be_u8, be_u8, be_u8, be_u8, be_u8).parse(body)?;
    let (rest, (serial, interval_count, programming_state, _undecoded)) =
        (be_u32, be_u8, be_u8, take_bytes(10usize)).parse(rest)?;
    let (rest, (last_consumption, last_generation, _undecoded, last_consumption_net)) =
        (be_u24, be_u24, take_bytes(3usize), be_u32).parse(rest)?;
    let (bits_part, rest) = rest.split_at(48);
    let intervals = nom_bits(netidm_intervals, bits_part)?;
    let (_, (transmit_time_offset, serial_crc, packet_crc)) = (be_u16, be_u16, be_u16).parse(rest)?;
    Ok(NetIdm {
        protocol_id,
        packet_length,
        hamming_code,
        application_version,
        ert_type_byte,
        serial,
        interval_count,
        programming_state,
        last_consumption,
        last_generation,
        last_consumption_net,
        intervals,
        transmit_time_offset,
        serial_crc,
        packet_crc,
    })
}

fn interval_reads<const N: usize>(
    intervals: &[u16; N],
    count: u8,
    tto: u16,
    received_at: Option<Timestamp>,
) -> impl Iterator<Item = IntervalRead> + '_ {
    intervals
        .iter()
        .enumerate()
        .map(move |(index, &consumption)| IntervalRead {
            index,
            number: count.wrapping_sub(index as u8),
            consumption,
            end: received_at.and_then(|t| interval_end(t, index, tto)),
        })
}

fn readings(
    registers: &[(&'static str, u32)],
    intervals: impl Iterator<Item = IntervalRead>,
    boundary: Option<Timestamp>,
) -> Vec<Reading> {
    let mut out = Vec::with_capacity(registers.len() + IDM_INTERVALS);
    for &(quantity, value) in registers {
        let mut r = Reading::new(quantity, value.into(), None);
        r.at = boundary.map(|t| t.to_string());
        out.push(r);
    }
    for iv in intervals {
        let mut r = Reading::new("interval", iv.consumption.into(), None);
        r.at = iv.end.map(|t| t.to_string());
        out.push(r);
    }
    out
}

impl Idm {
    /// Parses and checks one IDM (92 bytes from `55 55 16 A3`, or 90 from `16 A3`).
    pub fn parse(frame: &[u8]) -> Result<Idm> {
        idm_fields(checked_body(frame)?)
    }

    /// rtlamr's `ERTType` (low nibble of the type byte).
    pub fn ert_type(&self) -> u8 {
        self.ert_type_byte & 0x0F
    }

    /// Whether the meter flagged a power outage in interval `index` (0 = newest).
    pub fn outage_in(&self, index: usize) -> bool {
        let mut flags = [0u8; 8];
        flags[2..].copy_from_slice(&self.power_outage_flags);
        index < IDM_INTERVALS && u64::from_be_bytes(flags) >> (46 - index) & 1 == 1
    }

    /// The 47 intervals, newest first, timestamped when the reception time is known.
    pub fn interval_reads(&self, received_at: Option<Timestamp>) -> impl Iterator<Item = IntervalRead> + '_ {
        interval_reads(
            &self.intervals,
            self.interval_count,
            self.transmit_time_offset,
            received_at,
        )
    }

    /// The 92 bytes a meter would send, with both CRCs recomputed.
    pub fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[..4].copy_from_slice(&PREAMBLE.to_be_bytes());
        out[4..9].copy_from_slice(&[
            self.packet_type_id,
            self.packet_length,
            self.hamming_code,
            self.application_version,
            self.ert_type_byte,
        ]);
        out[9..13].copy_from_slice(&self.serial.to_be_bytes());
        out[13] = self.interval_count;
        out[14] = self.programming_state;
        out[15..21].copy_from_slice(&self.tamper_counters);
        out[21..23].copy_from_slice(&self.async_counters.to_be_bytes());
        out[23..29].copy_from_slice(&self.power_outage_flags);
        out[29..33].copy_from_slice(&self.last_consumption.to_be_bytes());
        put_bits(&mut out[33..86], &self.intervals, 9);
        out[86..88].copy_from_slice(&self.transmit_time_offset.to_be_bytes());
        finish_crcs(&mut out);
        out
    }

    /// rtlamr's JSON `Message` object (byte-array fields in base64, as Go encodes `[]byte`).
    pub fn rtlamr_fields(&self) -> Map<String, Value> {
        let mut f = Map::new();
        f.insert("Preamble".into(), PREAMBLE.into());
        f.insert("PacketTypeID".into(), self.packet_type_id.into());
        f.insert("PacketLength".into(), self.packet_length.into());
        f.insert("HammingCode".into(), self.hamming_code.into());
        f.insert("ApplicationVersion".into(), self.application_version.into());
        f.insert("ERTType".into(), self.ert_type().into());
        f.insert("ERTSerialNumber".into(), self.serial.into());
        f.insert("ConsumptionIntervalCount".into(), self.interval_count.into());
        f.insert("ModuleProgrammingState".into(), self.programming_state.into());
        f.insert("TamperCounters".into(), BASE64.encode(self.tamper_counters).into());
        f.insert("AsynchronousCounters".into(), self.async_counters.into());
        f.insert("PowerOutageFlags".into(), BASE64.encode(self.power_outage_flags).into());
        f.insert("LastConsumptionCount".into(), self.last_consumption.into());
        f.insert(
            "DifferentialConsumptionIntervals".into(),
            self.intervals.iter().copied().collect(),
        );
        f.insert("TransmitTimeOffset".into(), self.transmit_time_offset.into());
        f.insert("SerialNumberCRC".into(), self.serial_crc.into());
        f.insert("PacketCRC".into(), self.packet_crc.into());
        f
    }

    /// The protocol-neutral form: the register (`LastConsumptionCount`) and 47 `interval`
    /// readings, newest first; each carries `at` when the reception time is known.
    pub fn to_decoded(&self, received_at: Option<Timestamp>) -> Decoded {
        let boundary = received_at.and_then(|t| interval_end(t, 0, self.transmit_time_offset));
        Decoded {
            protocol: "idm".into(),
            meter_id: self.serial.to_string(),
            fields: self.rtlamr_fields(),
            readings: readings(
                &[("register", self.last_consumption)],
                self.interval_reads(received_at),
                boundary,
            ),
            flags: Vec::new(),
        }
    }
}

impl NetIdm {
    /// Parses and checks one NetIDM (same framing and checks as IDM).
    pub fn parse(frame: &[u8]) -> Result<NetIdm> {
        netidm_fields(checked_body(frame)?)
    }

    /// rtlamr's `ERTType` (low nibble of the type byte).
    pub fn ert_type(&self) -> u8 {
        self.ert_type_byte & 0x0F
    }

    /// The 27 intervals, newest first, timestamped when the reception time is known.
    pub fn interval_reads(&self, received_at: Option<Timestamp>) -> impl Iterator<Item = IntervalRead> + '_ {
        interval_reads(
            &self.intervals,
            self.interval_count,
            self.transmit_time_offset,
            received_at,
        )
    }

    /// The 92 bytes a meter would send (undecoded bytes zero), with both CRCs recomputed.
    pub fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[..4].copy_from_slice(&PREAMBLE.to_be_bytes());
        out[4..9].copy_from_slice(&[
            self.protocol_id,
            self.packet_length,
            self.hamming_code,
            self.application_version,
            self.ert_type_byte,
        ]);
        out[9..13].copy_from_slice(&self.serial.to_be_bytes());
        out[13] = self.interval_count;
        out[14] = self.programming_state;
        out[25..28].copy_from_slice(&self.last_consumption.to_be_bytes()[1..]);
        out[28..31].copy_from_slice(&self.last_generation.to_be_bytes()[1..]);
        out[34..38].copy_from_slice(&self.last_consumption_net.to_be_bytes());
        put_bits(&mut out[38..86], &self.intervals, 14);
        out[86..88].copy_from_slice(&self.transmit_time_offset.to_be_bytes());
        finish_crcs(&mut out);
        out
    }

    /// rtlamr's JSON `Message` object.
    pub fn rtlamr_fields(&self) -> Map<String, Value> {
        let mut f = Map::new();
        f.insert("Preamble".into(), PREAMBLE.into());
        f.insert("ProtocolID".into(), self.protocol_id.into());
        f.insert("PacketLength".into(), self.packet_length.into());
        f.insert("HammingCode".into(), self.hamming_code.into());
        f.insert("ApplicationVersion".into(), self.application_version.into());
        f.insert("ERTType".into(), self.ert_type().into());
        f.insert("ERTSerialNumber".into(), self.serial.into());
        f.insert("ConsumptionIntervalCount".into(), self.interval_count.into());
        f.insert("ProgrammingState".into(), self.programming_state.into());
        f.insert("LastGeneration".into(), self.last_generation.into());
        f.insert("LastConsumption".into(), self.last_consumption.into());
        f.insert("LastConsumptionNet".into(), self.last_consumption_net.into());
        f.insert(
            "DifferentialConsumptionIntervals".into(),
            self.intervals.iter().copied().collect(),
        );
        f.insert("TransmitTimeOffset".into(), self.transmit_time_offset.into());
        f.insert("SerialNumberCRC".into(), self.serial_crc.into());
        f.insert("PacketCRC".into(), self.packet_crc.into());
        f
    }

    /// The protocol-neutral form: `register` (LastConsumption, as rtlamr-collect and rtlamr2mqtt
    /// take it), `generation` (LastGeneration), `net_register` (LastConsumptionNet) and 27
    /// `interval` readings.
    pub fn to_decoded(&self, received_at: Option<Timestamp>) -> Decoded {
        let boundary = received_at.and_then(|t| interval_end(t, 0, self.transmit_time_offset));
        let registers = [
            ("register", self.last_consumption),
            ("generation", self.last_generation),
            ("net_register", self.last_consumption_net),
        ];
        Decoded {
            protocol: "netidm".into(),
            meter_id: self.serial.to_string(),
            fields: self.rtlamr_fields(),
            readings: readings(&registers, self.interval_reads(received_at), boundary),
            flags: Vec::new(),
        }
    }
}

/// Writes `values` as `width`-bit big-endian fields from the first bit of `out`.
fn put_bits(out: &mut [u8], values: &[u16], width: usize) {
    let mut bit = 0;
    for &v in values {
        for k in (0..width).rev() {
            if v >> k & 1 == 1 {
                out[bit / 8] |= 0x80 >> (bit % 8);
            }
            bit += 1;
        }
    }
}

fn finish_crcs(out: &mut [u8; LEN]) {
    let serial_crc = checks::GENIBUS.checksum(&out[9..13]);
    out[88..90].copy_from_slice(&serial_crc.to_be_bytes());
    let packet_crc = checks::GENIBUS.checksum(&out[4..90]);
    out[90..92].copy_from_slice(&packet_crc.to_be_bytes());
}

/// The intervals of a decoded IDM/NetIDM (from its rtlamr fields), newest first, with their
/// interval numbers, for ingest's interval merge. `None` for other protocols.
pub fn interval_reads_of(decoded: &Decoded, received_at: Option<Timestamp>) -> Option<Vec<IntervalRead>> {
    if decoded.protocol != "idm" && decoded.protocol != "netidm" {
        return None;
    }
    let count = u8::try_from(decoded.fields.get("ConsumptionIntervalCount")?.as_u64()?).ok()?;
    let tto = u16::try_from(decoded.fields.get("TransmitTimeOffset")?.as_u64()?).ok()?;
    let list = decoded.fields.get("DifferentialConsumptionIntervals")?.as_array()?;
    list.iter()
        .enumerate()
        .map(|(index, v)| {
            Some(IntervalRead {
                index,
                number: count.wrapping_sub(index as u8),
                consumption: u16::try_from(v.as_u64()?).ok()?,
                end: received_at.and_then(|t| interval_end(t, index, tto)),
            })
        })
        .collect()
}

/// Decodes one IDM (`netidm` false) or NetIDM frame without a reception time (no `at`).
pub fn decode(frame: &[u8], netidm: bool) -> Result<Decoded> {
    decode_at(frame, netidm, None)
}

/// Decodes one IDM or NetIDM frame received at `received_at`, timestamping its intervals.
pub fn decode_at(frame: &[u8], netidm: bool, received_at: Option<Timestamp>) -> Result<Decoded> {
    if netidm {
        NetIdm::parse(frame).map(|m| m.to_decoded(received_at))
    } else {
        Idm::parse(frame).map(|m| m.to_decoded(received_at))
    }
}

/// IDM packets heard over the air (rtl_433_tests `tests/idm/`: the packets rebuilt from their
/// decoded fields pass both CRCs), shared by the ERT unit tests.
#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) const I1: &str = "555516A31C5CC6041700AC171DF6BC020100EF0900000000000000000000053004000000000000000000000000000000000000000000000000000000008000000000000000000000200000000000000000000008000001DCEABA7C37";
    pub(crate) const I2: &str = "555516A31C5CC6041700AC171DF5BC020100EF090000000000000000000005300400000000000000000000000000000000000000000000000000000100000000000000000000004000000000000000000000100000000D06EABAAA64";
    pub(crate) const I3: &str = "555516A31C5CC6041700AC171DF6BC020100EF090000000000000000000005300400000000000000000000000000000000000000000000000000000000800000000000000000000020000000000000000000000800000D27EABA20A6";
}

#[cfg(test)]
mod tests {
    use super::tests_support::{I1, I2, I3};
    use super::*;
    use crate::error::Check;

    fn ones_at(idx: &[usize]) -> [u16; IDM_INTERVALS] {
        let mut v = [0; IDM_INTERVALS];
        for &i in idx {
            v[i] = 1;
        }
        v
    }

    fn frame(h: &str) -> Vec<u8> {
        hex::decode(h).unwrap()
    }

    #[test]
    fn published_vectors_i1_to_i3() {
        let cases = [
            (I1, 246, 476, 0x7C37, [24, 34, 44]),
            (I2, 245, 3334, 0xAA64, [23, 33, 43]),
            (I3, 246, 3367, 0x20A6, [24, 34, 44]),
        ];
        for (h, count, tto, crc, ones) in cases {
            let m = Idm::parse(&frame(h)).unwrap();
            assert_eq!(m.packet_type_id, 28);
            assert_eq!(m.packet_length, 92);
            assert_eq!(m.hamming_code, 198);
            assert_eq!(m.application_version, 4);
            assert_eq!((m.ert_type_byte, m.ert_type()), (0x17, 7));
            assert_eq!(m.serial, 11278109);
            assert_eq!(m.interval_count, count);
            assert_eq!(m.programming_state, 0xBC);
            assert_eq!(m.tamper_counters, [0x02, 0x01, 0x00, 0xEF, 0x09, 0x00]);
            assert_eq!(m.async_counters, 0);
            assert_eq!(m.power_outage_flags, [0; 6]);
            assert_eq!(m.last_consumption, 339972);
            assert_eq!(m.intervals, ones_at(&ones));
            assert_eq!(m.transmit_time_offset, tto);
            assert_eq!(m.serial_crc, 0xEABA);
            assert_eq!(m.packet_crc, crc);
            assert_eq!(m.encode().as_slice(), frame(h).as_slice(), "re-encode");
            // rtl_433 framing: the same packet without 55 55.
            assert_eq!(Idm::parse(&frame(h)[2..]).unwrap(), m);
        }
    }

    #[test]
    fn i1_fields_are_rtlamr_json() {
        let d = decode(&frame(I1), false).unwrap();
        let expected: Value = serde_json::from_str(r#"{"Preamble":1431639715,"PacketTypeID":28,"PacketLength":92,"HammingCode":198,"ApplicationVersion":4,"ERTType":7,"ERTSerialNumber":11278109,"ConsumptionIntervalCount":246,"ModuleProgrammingState":188,"TamperCounters":"AgEA7wkA","AsynchronousCounters":0,"PowerOutageFlags":"AAAAAAAA","LastConsumptionCount":339972,"DifferentialConsumptionIntervals":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,1,0,0],"TransmitTimeOffset":476,"SerialNumberCRC":60090,"PacketCRC":31799}"#).unwrap();
        assert_eq!(Value::Object(d.fields), expected);
        assert_eq!(d.meter_id, "11278109");
        assert_eq!(d.readings.len(), 1 + IDM_INTERVALS);
        assert_eq!(d.readings[0].quantity, "register");
        assert_eq!(d.readings[0].value, 339972);
        assert_eq!(d.readings[25].quantity, "interval");
        assert_eq!(d.readings[25].value, 1, "interval index 24");
        assert!(d.readings.iter().all(|r| r.at.is_none()), "no reception time, no at");
    }

    #[test]
    fn intervals_are_timestamped_the_rtlamr_collect_way() {
        let t: Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        let m = Idm::parse(&frame(I1)).unwrap();
        let reads: Vec<_> = m.interval_reads(Some(t)).collect();
        assert_eq!(reads[0].number, 246);
        assert_eq!(
            reads[0].end.unwrap().to_string(),
            "2026-01-01T11:59:30.25Z",
            "T − 29.75 s"
        );
        assert_eq!(reads[1].number, 245);
        assert_eq!(reads[1].end.unwrap().to_string(), "2026-01-01T11:54:30.25Z");
        assert_eq!(reads[46].number, 200);
        assert_eq!(
            reads[46].end.unwrap(),
            t - SignedDuration::from_secs(230 * 60) - SignedDuration::from_millis(29_750)
        );
        let d = m.to_decoded(Some(t));
        assert_eq!(
            d.readings[0].at.as_deref(),
            Some("2026-01-01T11:59:30.25Z"),
            "register at the boundary"
        );
        assert_eq!(d.readings[47].at.as_deref(), Some("2026-01-01T08:09:30.25Z"));
    }

    #[test]
    fn interval_reads_from_a_decoded_frame() {
        let t: Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        let m = Idm::parse(&frame(I1)).unwrap();
        let from_decoded = interval_reads_of(&m.to_decoded(None), Some(t)).unwrap();
        assert_eq!(from_decoded, m.interval_reads(Some(t)).collect::<Vec<_>>());
        let n = NetIdm::parse(&frame(I1)).unwrap();
        assert_eq!(
            interval_reads_of(&n.to_decoded(None), None).unwrap().len(),
            NETIDM_INTERVALS
        );
        let scm = crate::ert::scm::decode(&hex::decode("F95306F008951840EA0C101A").unwrap()).unwrap();
        assert!(interval_reads_of(&scm, None).is_none());
    }

    #[test]
    fn interval_numbers_wrap_mod_256() {
        let mut m = Idm::parse(&frame(I1)).unwrap();
        m.interval_count = 3;
        let numbers: Vec<u8> = m.interval_reads(None).map(|r| r.number).take(5).collect();
        assert_eq!(numbers, [3, 2, 1, 0, 255]);
    }

    #[test]
    fn consecutive_packets_shift_by_one_interval() {
        let i2 = Idm::parse(&frame(I2)).unwrap();
        let i1 = Idm::parse(&frame(I1)).unwrap();
        assert_eq!(i1.interval_count, i2.interval_count + 1);
        assert_eq!(i1.intervals[1..], i2.intervals[..46]);
    }

    #[test]
    fn outage_flags_map_bit_46_minus_index() {
        let mut m = Idm::parse(&frame(I1)).unwrap();
        assert!(!(0..IDM_INTERVALS).any(|i| m.outage_in(i)));
        m.power_outage_flags = [0x40, 0, 0, 0, 0, 0x01];
        assert!(m.outage_in(0) && m.outage_in(46));
        assert!(!m.outage_in(1) && !m.outage_in(45));
        let reparsed = Idm::parse(&m.encode()).unwrap();
        assert_eq!(reparsed.power_outage_flags, m.power_outage_flags);
    }

    #[test]
    fn netidm_cross_parse_matches_the_published_fields() {
        let cases = [
            (I1, [(13, 2048), (19, 32), (26, 8192)]),
            (I2, [(12, 64), (18, 1), (25, 256)]),
            (I3, [(13, 2048), (19, 32), (26, 8192)]),
        ];
        for (h, nonzero) in cases {
            let n = NetIdm::parse(&frame(h)).unwrap();
            assert_eq!(
                (n.last_generation, n.last_consumption, n.last_consumption_net),
                (5, 0, 0)
            );
            let mut want = [0u16; NETIDM_INTERVALS];
            for (i, v) in nonzero {
                want[i] = v;
            }
            assert_eq!(n.intervals, want);
            assert_eq!(n.protocol_id, 28);
            assert_eq!(n.programming_state, 0xBC);
            let d = n.to_decoded(None);
            assert_eq!(d.protocol, "netidm");
            assert_eq!(d.fields.len(), 16);
            assert_eq!(d.readings.len(), 3 + NETIDM_INTERVALS);
        }
        let n = NetIdm::parse(&frame(I1)).unwrap();
        let again = NetIdm::parse(&n.encode()).unwrap();
        assert_eq!(again.intervals, n.intervals);
        assert_eq!(again.last_generation, 5);
    }

    #[test]
    fn n7_changed_serial_crc_fails_with_crc() {
        let mut f = frame(I1);
        f[88] ^= 0x5A;
        f[89] ^= 0x01;
        let err = Idm::parse(&f).unwrap_err();
        assert_eq!(err.failed_check(), Some(Check::Crc));
        assert!(err.to_string().contains("PacketCRC"), "{err}");
        // With the packet CRC repaired, the serial CRC alone still refuses it.
        let crc = checks::GENIBUS.checksum(&f[4..90]);
        f[90..].copy_from_slice(&crc.to_be_bytes());
        let err = NetIdm::parse(&f).unwrap_err();
        assert_eq!(err.failed_check(), Some(Check::Crc));
        assert!(err.to_string().contains("SerialNumberCRC"), "{err}");
    }

    #[test]
    fn framing_errors() {
        let f = frame(I1);
        assert!(matches!(Idm::parse(&f[..50]), Err(Error::Incomplete { .. })));
        assert!(matches!(Idm::parse(&f[..91]), Err(Error::Incomplete { needed: 1 })));
        let mut bad = f.clone();
        bad[0] = 0xAA;
        assert!(matches!(Idm::parse(&bad), Err(Error::Invalid { field: "sync", .. })));
        let mut long = f.clone();
        long.push(0);
        assert!(matches!(Idm::parse(&long), Err(Error::Invalid { field: "length", .. })));
    }
}
