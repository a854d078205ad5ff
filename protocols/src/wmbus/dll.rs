//! EN 13757-4 data link layer: frame formats A and B with their CRC blocks, and the DLL header
//! (L, C, M, A).
//!
//! Gateways and dongles deliver telegrams either as sent on air (with CRCs) or with the CRCs
//! already removed. [`strip`] accepts all three shapes:
//! - format A with CRCs: the length is longer than L + 1 by two bytes per block;
//! - format B with CRCs: L + 1 bytes and the CRC(s) verify;
//! - CRCs removed: L + 1 bytes otherwise.

use std::borrow::Cow;

use crc::{CRC_16_EN_13757, Crc, Table};
use nom::Parser;
use nom::number::complete::{le_u16, u8 as byte};

use crate::error::{Check, Error, Result};
use crate::mbus::header::address_id;

/// CRC-16/EN-13757 from the `crc` catalogue (slice-by-16: every stripped telegram is checked
/// for format B CRCs, so this is on the hot path).
pub const CRC: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_EN_13757);

/// How the CRCs were found in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFormat {
    /// Format A, CRC after the first 10 bytes and after every 16 bytes.
    A,
    /// Format B, one CRC at the end (two for frames over 128 bytes).
    B,
    /// The CRCs had already been removed.
    Stripped,
}

impl FrameFormat {
    /// Name in `meterd decode` fields.
    pub fn name(self) -> &'static str {
        match self {
            FrameFormat::A => "A",
            FrameFormat::B => "B",
            FrameFormat::Stripped => "none",
        }
    }
}

/// Length on air of a format-A frame whose L field is `l`.
pub fn format_a_len(l: u8) -> Option<usize> {
    let l = usize::from(l);
    if l < 9 {
        return None;
    }
    let rest = l - 9;
    Some(12 + rest + 2 * rest.div_ceil(16))
}

/// The shape matches one of the three forms (used for protocol detection).
pub fn plausible(frame: &[u8]) -> bool {
    let Some(&l) = frame.first() else { return false };
    // L, C, M, A and a CI at least.
    frame.len() >= 11 && (frame.len() == usize::from(l) + 1 || Some(frame.len()) == format_a_len(l))
}

fn crc_ok(data: &[u8], crc_be: &[u8]) -> bool {
    CRC.checksum(data).to_be_bytes() == crc_be
}

/// Removes the DLL CRCs of a frame in a known format (checking them); `Stripped` passes the
/// frame through after checking its L field. Returns the telegram with L = length − 1.
///
/// Sources that know their format should use this: with [`strip`]'s detection a damaged
/// format-B frame is indistinguishable from a CRC-less one.
pub fn strip_as(frame: &[u8], format: FrameFormat) -> Result<Cow<'_, [u8]>> {
    let Some(&l) = frame.first() else {
        return Err(Error::Incomplete { needed: 1 });
    };
    let (t, found) = strip(frame)?;
    match (format, found) {
        (f, g) if f == g => Ok(t),
        (FrameFormat::Stripped, FrameFormat::B) => Ok(Cow::Borrowed(frame)),
        (FrameFormat::B, FrameFormat::Stripped) => Err(Error::check(Check::Crc, "format B CRC")),
        (expected, found) => Err(Error::invalid(
            "length",
            format!(
                "L = {l} and {} bytes make a {} frame, not {}",
                frame.len(),
                found.name(),
                expected.name()
            ),
        )),
    }
}

/// Removes the DLL CRCs (checking them) and returns the telegram with L = length − 1, detecting
/// the format: format A by its length, format B when its CRCs verify, otherwise CRC-less.
pub fn strip(frame: &[u8]) -> Result<(Cow<'_, [u8]>, FrameFormat)> {
    let Some(&l) = frame.first() else {
        return Err(Error::Incomplete { needed: 1 });
    };
    if Some(frame.len()) == format_a_len(l) {
        let mut out = Vec::with_capacity(usize::from(l) + 1);
        let (first, mut rest) = frame.split_at(12);
        if !crc_ok(&first[..10], &first[10..]) {
            return Err(Error::check(Check::Crc, "format A block 1"));
        }
        out.extend_from_slice(&first[..10]);
        let mut block = 2;
        while !rest.is_empty() {
            let n = rest.len().min(18);
            let (b, r) = rest.split_at(n);
            if n < 3 || !crc_ok(&b[..n - 2], &b[n - 2..]) {
                return Err(Error::check(Check::Crc, format!("format A block {block}")));
            }
            out.extend_from_slice(&b[..n - 2]);
            rest = r;
            block += 1;
        }
        return Ok((Cow::Owned(out), FrameFormat::A));
    }
    if frame.len() != usize::from(l) + 1 {
        return Err(Error::invalid(
            "length",
            format!("L = {l} fits neither {} bytes with nor without DLL CRCs", frame.len()),
        ));
    }
    let n = frame.len();
    let b_ok = if n <= 128 {
        n >= 13 && crc_ok(&frame[..n - 2], &frame[n - 2..])
    } else {
        crc_ok(&frame[..126], &frame[126..128]) && n >= 131 && crc_ok(&frame[128..n - 2], &frame[n - 2..])
    };
    if !b_ok {
        return Ok((Cow::Borrowed(frame), FrameFormat::Stripped));
    }
    let mut out = Vec::with_capacity(n);
    if n <= 128 {
        out.extend_from_slice(&frame[..n - 2]);
    } else {
        out.extend_from_slice(&frame[..126]);
        out.extend_from_slice(&frame[128..n - 2]);
    }
    out[0] = (out.len() - 1) as u8;
    Ok((Cow::Owned(out), FrameFormat::B))
}

/// The DLL header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dll {
    pub c: u8,
    pub manufacturer: u16,
    /// Identification as sent (BCD, least significant byte first).
    pub id: [u8; 4],
    pub version: u8,
    pub device_type: u8,
}

impl Dll {
    /// M ‖ A as sent: the first 8 bytes of IVs and counter blocks.
    pub fn m_a(&self) -> [u8; 8] {
        let [m0, m1] = self.manufacturer.to_le_bytes();
        let [a, b, c, d] = self.id;
        [m0, m1, a, b, c, d, self.version, self.device_type]
    }
}

/// Parses L C M A from a stripped telegram; returns the header and what follows it (CI…).
pub fn header(telegram: &[u8]) -> Result<(Dll, &[u8])> {
    let parsed: nom::IResult<&[u8], _> = (byte, byte, le_u16, address_id, byte, byte).parse(telegram);
    let (rest, (_l, c, manufacturer, id, version, device_type)) =
        parsed.map_err(|_| Error::invalid("DLL", format!("{} bytes is shorter than L C M A", telegram.len())))?;
    Ok((
        Dll {
            c,
            manufacturer,
            id,
            version,
            device_type,
        },
        rest,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_catalogue_check_value() {
        assert_eq!(CRC.checksum(b"123456789"), 0xC2B7);
    }

    #[test]
    fn r4_format_a_crcs_are_checked_and_removed() {
        let r4 = hex::decode("3444EE4D813929271608811D7A51000000046D1912A62B036E0000005170426CE1F1436E00000002FF2C00000259D6D0D4090265FC0902FD66A00044C4").unwrap();
        assert_eq!(r4.len(), 61);
        assert_eq!(format_a_len(0x34), Some(61));
        let (t, f) = strip(&r4).unwrap();
        assert_eq!(f, FrameFormat::A);
        assert_eq!(t.len(), 0x34 + 1);
        for i in [3, 15, 40, 60] {
            let mut bad = r4.clone();
            bad[i] ^= 0x10;
            assert_eq!(strip(&bad).unwrap_err().failed_check(), Some(Check::Crc), "byte {i}");
        }
    }

    #[test]
    fn format_b_crcs_are_recognised() {
        let stripped = hex::decode("1844AE4C4455223368077A55000000041389E20100023B0000").unwrap();
        // Build format B: L counts the CRC, one CRC at the end.
        let mut b = stripped.clone();
        b[0] += 2;
        let crc = CRC.checksum(&b);
        b.extend_from_slice(&crc.to_be_bytes());
        let (t, f) = strip(&b).unwrap();
        assert_eq!(f, FrameFormat::B);
        assert_eq!(&t[..], &stripped[..]);
        let (t, f) = strip(&stripped).unwrap();
        assert_eq!((f, &t[..]), (FrameFormat::Stripped, &stripped[..]));
        let mut damaged = b.clone();
        damaged[12] ^= 1;
        assert_eq!(
            strip(&damaged).unwrap().1,
            FrameFormat::Stripped,
            "indistinguishable without a hint"
        );
        assert_eq!(
            strip_as(&damaged, FrameFormat::B).unwrap_err().failed_check(),
            Some(Check::Crc)
        );
        assert_eq!(&strip_as(&b, FrameFormat::B).unwrap()[..], &stripped[..]);
        assert_eq!(&strip_as(&stripped, FrameFormat::Stripped).unwrap()[..], &stripped[..]);
        assert!(strip_as(&stripped, FrameFormat::A).is_err());
    }
}
