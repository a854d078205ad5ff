//! Compact frames (CI 0x79 without a TPL header, 0x7B with the short one, 0x73 with the long
//! one; mbus.md §2.4 and §2.10; EN 13757-3:2018 Annex G): the data bytes of the records only.
//! After the TPL header (and, encrypted, after the verification bytes 2F 2F) come
//!
//! ```text
//! format signature (2, LE)   full-frame CRC (2, LE)   data of every record, in order
//! ```
//!
//! The format signature is the CRC-16/EN-13757 of the layout: the DIF, DIFEs, VIF and VIFEs of
//! every record of the meter's full frame, fillers (2F) left out. The full-frame CRC is the
//! CRC-16/EN-13757 of the records rebuilt (layout and data interleaved), which proves the
//! layout fits. A receiver learns layouts from full frames per meter type (manufacturer,
//! version, device type) and signature, as the reference decoder does.
//!
//! Layouts with manufacturer data (DIF 0F/1F) or variable-length records (LVAR) have no
//! compact form here: their data length is not given by the layout.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::mbus::record::{self, data_len};

use super::dll::CRC;

/// Longest layout kept (bytes of DIF/VIF): a full wM-Bus frame is at most 255 bytes.
pub const MAX_LAYOUT: usize = 255;

/// What a layout is learned and looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FormatKey {
    pub manufacturer: u16,
    pub version: u8,
    pub device_type: u8,
    pub signature: u16,
}

/// Where a decoder finds the layouts learned so far.
pub trait Formats {
    /// The layout for a meter type and signature, if learned.
    fn layout(&self, key: &FormatKey) -> Option<Vec<u8>>;
}

/// No layout is known (`meterd decode` of a single telegram, tests).
#[derive(Debug, Clone, Copy)]
pub struct NoFormats;

impl Formats for NoFormats {
    fn layout(&self, _: &FormatKey) -> Option<Vec<u8>> {
        None
    }
}

impl Formats for HashMap<FormatKey, Vec<u8>> {
    fn layout(&self, key: &FormatKey) -> Option<Vec<u8>> {
        self.get(key).cloned()
    }
}

/// The format signature of a layout.
pub fn signature(layout: &[u8]) -> u16 {
    CRC.checksum(layout)
}

/// The layout of a full frame's record area, or `None` when it has no compact form
/// (manufacturer data, LVAR records, a record that does not parse, no records, too long).
pub fn layout_of(records: &[u8]) -> Option<Vec<u8>> {
    let mut rest = records;
    let mut layout = Vec::new();
    loop {
        let skip = rest.iter().take_while(|&&b| b == 0x2F).count();
        rest = &rest[skip..];
        let Some(&dif) = rest.first() else { break };
        if dif & 0x0F == 0x0F {
            return None;
        }
        let (hlen, data_field) = record::header_len(rest).ok()?;
        let n = data_len(data_field)?;
        if rest.len() < hlen + n {
            return None;
        }
        layout.extend_from_slice(&rest[..hlen]);
        rest = &rest[hlen + n..];
    }
    (!layout.is_empty() && layout.len() <= MAX_LAYOUT).then_some(layout)
}

/// Rebuilds the record area from a layout and a compact frame's data, checking the
/// full-frame CRC. Trailing 2F fillers after the data (encryption padding) are allowed.
pub fn expand(layout: &[u8], data: &[u8], full_crc: u16) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(layout.len() + data.len());
    let (mut l, mut d) = (layout, data);
    while !l.is_empty() {
        let (hlen, data_field) = record::header_len(l)?;
        let n = data_len(data_field).ok_or_else(|| Error::invalid("compact format", "variable-length record"))?;
        let value = d.get(..n).ok_or_else(|| {
            Error::invalid(
                "compact frame",
                format!("{} data bytes, the format needs more", data.len()),
            )
        })?;
        out.extend_from_slice(&l[..hlen]);
        out.extend_from_slice(value);
        l = &l[hlen..];
        d = &d[n..];
    }
    if d.iter().any(|&b| b != 0x2F) {
        return Err(Error::invalid(
            "compact frame",
            format!("{} data bytes left over after the format's records", d.len()),
        ));
    }
    let computed = CRC.checksum(&out);
    if computed != full_crc {
        return Err(Error::check(
            crate::error::Check::Crc,
            format!("compact frame: full-frame CRC {full_crc:04X}, the records rebuilt give {computed:04X}"),
        ));
    }
    Ok(out)
}

/// The compact form of a full frame's record area: (layout, signature, full-frame CRC, data).
/// For building test telegrams and simulators.
pub fn compress(records: &[u8]) -> Option<(Vec<u8>, u16, u16, Vec<u8>)> {
    let layout = layout_of(records)?;
    let mut data = Vec::new();
    let mut full = Vec::new();
    let mut rest = records;
    let mut l = &layout[..];
    while !l.is_empty() {
        let skip = rest.iter().take_while(|&&b| b == 0x2F).count();
        rest = &rest[skip..];
        let (hlen, data_field) = record::header_len(l).ok()?;
        let n = data_len(data_field)?;
        data.extend_from_slice(rest.get(hlen..hlen + n)?);
        full.extend_from_slice(rest.get(..hlen + n)?);
        rest = &rest[hlen + n..];
        l = &l[hlen..];
    }
    let sig = signature(&layout);
    Some((layout, sig, CRC.checksum(&full), data))
}
