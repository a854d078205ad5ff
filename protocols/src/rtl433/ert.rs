//! rtl_433's ERT and R900 lines back into the frames the meters sent.
//!
//! rtl_433 prints most of each frame, so the frame is rebuilt and checked like a received one:
//! - `ERT-SCM`: no check value is printed; the BCH is recomputed (reserved bit 23 as 0, as in
//!   every verified capture), so the fields are taken as rtl_433 checked them.
//! - `SCMplus`: every byte but the sync; `PacketCRC` is verified.
//! - `IDM` and `NETIDM` (rtl_433 prints both for every such packet): decoded as IDM or NetIDM
//!   by the ERT type, whichever line it came in (see [`by_type`]).
//! - `IDM`: every byte but `HammingCode` (not printed; 0xC6 for PacketTypeID 0x1C in every
//!   capture) and the spare bit after the intervals (both values tried); `MeterIdCRC` and
//!   `PacketCRC` are verified.
//! - `NETIDM`: every byte but `HammingCode` and the 6 spare bits after the 27 intervals (all 64
//!   values tried against `PacketCRC`); both CRCs verified.
//! - `Neptune-R900`: all 80 data bits and 24 of the 25 parity bits (`extra`), which are
//!   verified against the Reed-Solomon parity of the data. `Neptune-R900BCD` does not print the
//!   three wrap bits: the one value whose parity matches `extra` is taken.
//!
//! rtl_433 index = rtlamr index − 2 (it drops the `55 55` of IDM); offsets below are rtlamr's.

use jiff::Timestamp;

use super::fields::Fields;
use crate::decode::Protocol;
use crate::decoded::Decoded;
use crate::error::{Check, Error, Result};
use crate::ert::checks::GENIBUS;
use crate::ert::idm::{self, IDM_INTERVALS, NETIDM_INTERVALS};
use crate::ert::r900::{self, R900};
use crate::ert::scm::Scm;
use crate::ert::scm_plus::{self, ScmPlus};

/// The Hamming code byte that follows PacketTypeID 0x1C (198 in every IDM capture, amr-radio.md
/// §12.3); rtl_433 does not print it.
const HAMMING_OF_1C: u8 = 0xC6;

/// Net meters are ERT type 8 (rtlamr-collect's strict mode).
const NET_METER_TYPE: u8 = 8;

/// `id` where rtl_433 prints it next to the protocol's own id field must agree with it.
fn same_id(f: &Fields<'_>, own: &'static str, value: u32) -> Result<()> {
    if f.has("id") {
        let id = f.int("id", 0, u64::from(u32::MAX))?;
        if id != i64::from(value) {
            return Err(f.error("id", format_args!("is {id} but {own} is {value}")));
        }
    }
    Ok(())
}

/// `ERT-SCM`: id, physical_tamper, ert_type, encoder_tamper, consumption_data.
pub fn scm(f: &Fields<'_>) -> Result<Decoded> {
    let scm = Scm {
        id: f.uint("id", 26)?,
        ert_type: f.uint("ert_type", 4)? as u8,
        tamper_phy: f.uint("physical_tamper", 2)? as u8,
        tamper_enc: f.uint("encoder_tamper", 2)? as u8,
        consumption: f.uint("consumption_data", 24)?,
        checksum: 0,
    };
    if scm.id == 0 {
        return Err(f.error("id", "is 0, which is no meter (the all-zero SCM codeword)"));
    }
    Ok(Scm::parse(&scm.encode())?.to_decoded())
}

/// `SCMplus`: ProtocolID, EndpointType, EndpointID, Consumption, Tamper, PacketCRC.
pub fn scm_plus(f: &Fields<'_>) -> Result<Decoded> {
    let m = ScmPlus {
        frame_sync: scm_plus::FRAME_SYNC,
        protocol_id: f.byte("ProtocolID")?,
        endpoint_type: f.byte("EndpointType")?,
        endpoint_id: f.uint("EndpointID", 32)?,
        consumption: f.uint("Consumption", 32)?,
        tamper: f.word("Tamper")?,
        packet_crc: f.word("PacketCRC")?,
    };
    same_id(f, "EndpointID", m.endpoint_id)?;
    let mut frame = m.encode();
    frame[14..].copy_from_slice(&m.packet_crc.to_be_bytes());
    Ok(ScmPlus::parse(&frame).map_err(|e| on_line(f, e))?.to_decoded())
}

/// Says which line a check failed in.
fn on_line(f: &Fields<'_>, e: Error) -> Error {
    match e {
        Error::Check { check, detail } => Error::check(check, format!("rtl_433 {} line: {detail}", f.model)),
        other => other,
    }
}

/// The header bytes 4..=14 both IDM forms share; `HammingCode` when a version prints it.
fn header(f: &Fields<'_>, out: &mut [u8; idm::LEN]) -> Result<u32> {
    let ert_type = f.byte("ERTType")?;
    let serial = f.uint("ERTSerialNumber", 32)?;
    if serial == 0 {
        return Err(f.error("ERTSerialNumber", "is 0, which is no meter"));
    }
    same_id(f, "ERTSerialNumber", serial)?;
    let hamming = if f.has("HammingCode") {
        f.byte("HammingCode")?
    } else {
        HAMMING_OF_1C
    };
    out[..4].copy_from_slice(&idm::PREAMBLE.to_be_bytes());
    out[4] = f.byte("PacketTypeID")?;
    out[5] = f.byte("PacketLength")?;
    out[6] = hamming;
    out[7] = f.byte("ApplicationVersion")?;
    out[8] = ert_type;
    out[9..13].copy_from_slice(&serial.to_be_bytes());
    out[13] = f.byte("ConsumptionIntervalCount")?;
    out[14] = f.byte("ModuleProgrammingState")?;
    Ok(serial)
}

/// The trailer (TTO, MeterIdCRC) and the check of `PacketCRC`, trying each value of the spare
/// bits (`spare` = how many low bits of byte 85 no field covers).
fn trailer(f: &Fields<'_>, out: &mut [u8; idm::LEN], serial: u32, spare: u32) -> Result<()> {
    out[86..88].copy_from_slice(&f.word("TransmitTimeOffset")?.to_be_bytes());
    let serial_crc = f.word("MeterIdCRC")?;
    let want = GENIBUS.checksum(&serial.to_be_bytes());
    if serial_crc != want {
        return Err(Error::check(
            Check::Crc,
            format!(
                "rtl_433 {} line: MeterIdCRC 0x{serial_crc:04X} does not match ERTSerialNumber {serial} (0x{want:04X})",
                f.model
            ),
        ));
    }
    out[88..90].copy_from_slice(&serial_crc.to_be_bytes());
    let packet_crc = f.word("PacketCRC")?;
    let base = out[85];
    for bits in 0..1u8 << spare {
        out[85] = base | bits;
        if GENIBUS.checksum(&out[4..90]) == packet_crc {
            out[90..92].copy_from_slice(&packet_crc.to_be_bytes());
            return Ok(());
        }
    }
    Err(Error::check(
        Check::Crc,
        format!(
            "rtl_433 {} line: PacketCRC 0x{packet_crc:04X} does not match the other fields",
            f.model
        ),
    ))
}

/// The IDM/NetIDM packet rebuilt from either line, decoded as its ERT type says: NetIDM for a
/// net meter (type 8), IDM for every other (rtlamr-collect's strict rule, and
/// [`crate::ert::detect`]'s for raw frames). rtl_433 cannot tell the two apart and prints every
/// such packet twice, once per decoder (its comment in `ert_idm.c`; rtl_433_tests
/// `tests/idm/NetIDM` are type-7 IDM packets): both lines rebuild the same 92 bytes, so both give
/// the same read and de-duplicate as one transmission, and neither is needed alone.
fn by_type(f: &Fields<'_>, frame: &[u8; idm::LEN], received_at: Option<Timestamp>) -> Result<(Protocol, Decoded)> {
    let protocol = if frame[8] & 0x0F == NET_METER_TYPE {
        Protocol::NetIdm
    } else {
        Protocol::Idm
    };
    let decoded = idm::decode_at(frame, protocol == Protocol::NetIdm, received_at).map_err(|e| on_line(f, e))?;
    Ok((protocol, decoded))
}

/// `IDM`: the whole packet but HammingCode and one spare bit.
pub fn idm(f: &Fields<'_>, received_at: Option<Timestamp>) -> Result<(Protocol, Decoded)> {
    let mut out = [0u8; idm::LEN];
    let serial = header(f, &mut out)?;
    out[15..21].copy_from_slice(&f.hex::<6>("TamperCounters")?);
    out[21..23].copy_from_slice(&f.word("AsynchronousCounters")?.to_be_bytes());
    out[23..29].copy_from_slice(&f.hex::<6>("PowerOutageFlags")?);
    out[29..33].copy_from_slice(&f.uint("LastConsumptionCount", 32)?.to_be_bytes());
    let intervals = f.intervals::<IDM_INTERVALS>("DifferentialConsumptionIntervals", 9)?;
    put_bits(&mut out[33..86], &intervals, 9);
    trailer(f, &mut out, serial, 1)?;
    by_type(f, &out, received_at)
}

/// `NETIDM`: the whole packet but HammingCode and six spare bits.
pub fn netidm(f: &Fields<'_>, received_at: Option<Timestamp>) -> Result<(Protocol, Decoded)> {
    let mut out = [0u8; idm::LEN];
    let serial = header(f, &mut out)?;
    if f.has("TamperCounters") {
        // rtl_433 since 2021: TamperCounters (6 bytes) then Unknown_field_1 (7).
        out[15..21].copy_from_slice(&f.hex::<6>("TamperCounters")?);
        out[21..28].copy_from_slice(&f.hex::<7>("Unknown_field_1")?);
    } else {
        // Earlier: one 13-byte Unknown_field_1.
        out[15..28].copy_from_slice(&f.hex::<13>("Unknown_field_1")?);
    }
    out[28..31].copy_from_slice(&f.uint("LastGenerationCount", 24)?.to_be_bytes()[1..]);
    out[31..34].copy_from_slice(&f.hex::<3>("Unknown_field_2")?);
    // Printed as a signed 32-bit int by some versions (amr-radio.md §7: −2126471008).
    let net = f.int("LastConsumptionCount", i64::from(i32::MIN), u64::from(u32::MAX))?;
    out[34..38].copy_from_slice(&(net as u32).to_be_bytes());
    let intervals = f.intervals::<NETIDM_INTERVALS>("DifferentialConsumptionIntervals", 14)?;
    put_bits(&mut out[38..86], &intervals, 14);
    trailer(f, &mut out, serial, 6)?;
    by_type(f, &out, received_at)
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

/// `Neptune-R900` / `Neptune-R900BCD`.
///
/// Current rtl_433: `unkn1` (4 bits), `metertype` (4), `unkn2` (3), `nouse` (3), `backflow` (2),
/// `consumption` (binary: 24 bits plus the 3 wrap bits above them; BCD: the decimal reading,
/// wrap bits not printed), `leak` (3), `leaknow` (2), `extra` (parity bits 80..103 as hex).
/// Before `metertype` existed `unkn1` was the whole byte and the wrap bits were `unkn3`.
pub fn r900(f: &Fields<'_>, bcd: bool) -> Result<Decoded> {
    let id = f.uint("id", 32)?;
    let (unkn1, wrap_known) = if f.has("metertype") {
        ((f.uint("unkn1", 4)? << 4 | f.uint("metertype", 4)?) as u8, None)
    } else {
        (f.byte("unkn1")?, Some(f.uint("unkn3", 3)? as u8))
    };
    let no_use = (f.uint("unkn2", 3)? << 3 | f.uint("nouse", 3)?) as u8;
    let back_flow = f.uint("backflow", 2)? as u8;
    let leak = f.uint("leak", 3)? as u8;
    let leak_now = f.uint("leaknow", 2)? as u8;
    let extra = f.hex::<3>("extra")?;
    // The 24-bit field and the wrap bits (None: not printed, to be found from the parity).
    let (field, wrap) = if bcd {
        // Six decimal digits (rtl_433 drops a line whose digits are not BCD).
        let reading = f.int("consumption", 0, 999_999)? as u32;
        let raw = r900::to_bcd(reading).ok_or_else(|| f.error("consumption", "is not six decimal digits"))?;
        (raw, wrap_known)
    } else if let Some(w) = wrap_known {
        (f.uint("consumption", 24)?, Some(w))
    } else {
        let c = f.uint("consumption", 27)?;
        (c & 0xFF_FFFF, Some((c >> 24) as u8))
    };
    let build = |wrap: u8| R900 {
        id,
        unkn1,
        no_use,
        back_flow,
        consumption: field,
        unkn3: wrap >> 1,
        leak: (wrap & 1) << 3 | leak,
        leak_now,
        parity: [0; 5],
    };
    let candidates: Vec<u8> = match wrap {
        Some(w) => vec![w],
        None => (0..8).collect(),
    };
    let matching: Vec<R900> = candidates
        .into_iter()
        .map(build)
        .filter(|m| m.encode()[10..13] == extra)
        .collect();
    let [m] = matching[..] else {
        return Err(Error::check(
            Check::ReedSolomon,
            format!(
                "rtl_433 {} line: extra {} is not the Reed-Solomon parity of the other fields",
                f.model,
                hex::encode(extra)
            ),
        ));
    };
    // Through the frame, so the fields are exactly those of the raw packet.
    R900::parse(&m.encode()).map_err(|e| on_line(f, e))?.to_decoded(bcd)
}
