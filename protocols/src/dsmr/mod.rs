//! DSMR P1 telegrams (Dutch/Belgian smart meters).
//!
//! A telegram is `/XXXZ ident` CR LF, an empty line, one COSEM object per line
//! (`A-B:C.D.E(value*unit)`, several groups for gas and the power failure log), then `!` and,
//! from DSMR 4 on, four hex digits of CRC-16/ARC over every byte from `/` through `!`.
//! DSMR 2.2 and 3 end with a bare `!`. Objects are read with the IEC 62056-21 data set grammar
//! ([`crate::iec62056_21::dataset`]), since P1 is a variant of its mode D.
//!
//! - [`decode`]: one telegram to a [`Decoded`] frame.
//! - [`splitter`]: finds telegrams in the byte stream of a P1 port.

pub mod splitter;

use crc::{CRC_16_ARC, Crc};
use serde_json::{Map, json};

use crate::decoded::Decoded;
use crate::error::{Check, Error, Result};
use crate::iec62056_21::dataset::{self, DataSet, Obis};
use crate::iec62056_21::message::Identification;

pub use splitter::{Event, Splitter};

/// CRC-16/ARC (poly 0x8005 reflected, init 0), as DSMR 4 and 5 specify.
pub const CRC: Crc<u16> = Crc::<u16>::new(&CRC_16_ARC);

/// Where the parts of a telegram are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telegram<'a> {
    pub header: Identification,
    /// The object lines between the header and the `!` line.
    pub body: &'a [u8],
    /// The CRC as sent, when the telegram carries one (DSMR ≥ 4).
    pub crc: Option<u16>,
    /// Bytes used, through the CRC line.
    pub len: usize,
}

/// Frames and checks one telegram starting at `/`: CRC verified when present.
/// [`Error::Incomplete`] while the `!` line has not fully arrived.
pub fn parse(input: &[u8]) -> Result<Telegram<'_>> {
    if input.first().is_some_and(|&b| b != b'/') {
        return Err(Error::invalid("telegram", "does not start with '/'"));
    }
    let (rest, header) = Identification::parse(input).map_err(|e| match Error::from(e) {
        Error::Invalid { .. } => Error::invalid("header", "expected /XXXZ identification CR LF"),
        e => e,
    })?;
    let body_start = input.len() - rest.len();
    // The `!` line: the first `!` at the start of a line after the header.
    let bang = (body_start..input.len())
        .find(|&i| input[i] == b'!' && input[i - 1] == b'\n')
        .ok_or(Error::Incomplete { needed: 1 })?;
    let after = &input[bang + 1..];
    let hex_len = after.iter().take(4).take_while(|b| b.is_ascii_hexdigit()).count();
    let (crc, line_end) = match hex_len {
        4 => {
            let text = std::str::from_utf8(&after[..4]).unwrap_or_default();
            (
                Some(u16::from_str_radix(text, 16).map_err(|_| Error::invalid("crc", text.to_owned()))?),
                4,
            )
        }
        n if n == after.len() => return Err(Error::Incomplete { needed: 4 - n }),
        0 => (None, 0),
        _ => {
            let shown = String::from_utf8_lossy(&after[..after.len().min(6)]).into_owned();
            return Err(Error::invalid(
                "crc",
                format!("{shown:?} after '!' is not four hex digits"),
            ));
        }
    };
    let tail = &after[line_end..];
    let eol = if tail.starts_with(b"\r\n") {
        2
    } else if tail.starts_with(b"\n") {
        1
    } else if tail.is_empty() && crc.is_some() {
        0 // a capture that ends right after the CRC
    } else if tail == b"\r" || tail.is_empty() {
        return Err(Error::Incomplete { needed: 1 });
    } else {
        return Err(Error::invalid("telegram", "'!' line does not end with CR LF"));
    };
    if let Some(sent) = crc {
        let computed = CRC.checksum(&input[..=bang]);
        if computed != sent {
            return Err(Error::check(
                Check::Crc,
                format!("telegram CRC {sent:04X} received, {computed:04X} computed"),
            ));
        }
    }
    Ok(Telegram {
        header,
        body: &input[body_start..bang],
        crc,
        len: bang + 1 + line_end + eol,
    })
}

/// Decodes one telegram from `/` to the CRC line. Bytes after the CRC line (a gateway's
/// trailer) are not part of the telegram and are ignored.
pub fn decode(input: &[u8]) -> Result<Decoded> {
    let start = input
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(input.len());
    let t = parse(&input[start..])?;
    let sets = dataset::parse_lines(t.body)?;
    decoded(&t, &sets)
}

/// Equipment identifiers of the electricity meter itself, most specific first.
const ID_ADDRESSES: [&str; 4] = ["96.1.1", "96.1.0", "0.0.0", "C.1.0"];

fn decoded(t: &Telegram<'_>, sets: &[DataSet]) -> Result<Decoded> {
    let find = |want: &str| {
        sets.iter().find(|s| {
            let o = Obis::parse(&s.address);
            o.is(want) && o.b.is_none_or(|b| b == "0")
        })
    };
    // The version object is 1-3:0.2.8 (DSMR) or 0-0:96.1.4 (e-MUCS): any channel will do.
    let any = |want: &str| sets.iter().find(|s| Obis::parse(&s.address).is(want));
    let version = any("0.2.8")
        .or_else(|| any("96.1.4"))
        .and_then(|s| s.values.first())
        .map(|v| v.value.clone());
    let major = version
        .as_deref()
        .and_then(|v| v.get(..1))
        .and_then(|d| d.parse::<u8>().ok());
    if t.crc.is_none() && major.is_some_and(|m| m >= 4) {
        return Err(Error::invalid(
            "crc",
            format!("DSMR {} telegram without CRC", version.as_deref().unwrap_or("")),
        ));
    }
    let mut fields = Map::new();
    fields.insert("identification".into(), json!(t.header.text()));
    fields.insert("manufacturer".into(), json!(t.header.manufacturer));
    fields.insert(
        "version".into(),
        json!(version.as_deref().map(|v| if v.len() == 2 && v.is_ascii() {
            format!("{}.{}", &v[..1], &v[1..])
        } else {
            v.to_owned()
        })),
    );
    fields.insert("crc".into(), json!(t.crc.map(|c| format!("{c:04X}"))));
    let timestamp = find("1.0.0")
        .and_then(|s| s.values.first())
        .map(|v| dataset::value_of(dataset::ValueKind::Timestamp, &v.value));
    fields.insert("timestamp".into(), json!(timestamp));
    let meter_id = ID_ADDRESSES
        .iter()
        .filter_map(|want| find(want))
        .filter_map(|s| s.values.first())
        .map(|v| v.value.trim())
        .find(|v| !v.is_empty() && v.bytes().any(|b| b != b'0'))
        .map(|v| dataset::hex_text(v).unwrap_or_else(|| v.to_owned()))
        .unwrap_or_else(|| t.header.text());
    let readings = sets.iter().flat_map(dataset::readings).collect();
    Ok(Decoded {
        protocol: "dsmr".into(),
        meter_id,
        fields,
        readings,
        flags: Vec::new(),
    })
}

#[cfg(test)]
mod tests;
