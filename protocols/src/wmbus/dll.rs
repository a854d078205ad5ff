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

/// Removes the DLL CRCs of a frame in a known format (checking them); `Stripped` passes the
/// frame through after checking its L field. Returns the telegram with L = length − 1.
pub fn strip_as(frame: &[u8], format: FrameFormat) -> Result<Cow<'_, [u8]>> {
    let Some(&l) = frame.first() else {
        return Err(Error::Incomplete { needed: 1 });
    };
    let s = strip(frame)?;
    match (format, s.format) {
        (f, g) if f == g => Ok(s.telegram),
        (FrameFormat::Stripped, FrameFormat::B) => Ok(Cow::Borrowed(frame)),
        (FrameFormat::B, FrameFormat::Stripped) => Err(s
            .unverified_b
            .map_or_else(|| Error::check(Check::Crc, "format B CRC"), |b| b.error())),
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

/// A CRC block that did not verify: which format, which block (1-based, as EN 13757-4 counts
/// them) and the bytes of the frame on air its CRC covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadBlock {
    pub format: FrameFormat,
    pub block: usize,
    pub from: usize,
    pub to: usize,
    pub sent: u16,
    pub computed: u16,
}

impl BadBlock {
    /// The refusal: names the layer, the CRC and the block.
    pub fn error(&self) -> Error {
        Error::check(
            Check::Crc,
            format!(
                "wM-Bus link layer: format {} CRC of block {} (bytes {}..{}) failed: sent {:04X}, computed {:04X}",
                self.format.name(),
                self.block,
                self.from,
                self.to,
                self.sent,
                self.computed
            ),
        )
    }
}

/// What [`strip`] found.
#[derive(Debug, Clone)]
pub struct Strip<'a> {
    /// The telegram without CRCs, L = length − 1.
    pub telegram: Cow<'a, [u8]>,
    pub format: FrameFormat,
    /// Set when the frame was taken as CRC-less although a format B layout fits its length and
    /// that CRC failed: if the telegram then does not decode either, this is the error to
    /// report (a damaged format B frame), see [`strip`].
    pub unverified_b: Option<BadBlock>,
}

/// Checks one CRC block: `data` then the CRC as sent (high byte first).
fn check_block(frame: &[u8], format: FrameFormat, block: usize, from: usize, to: usize) -> Result<(), BadBlock> {
    let computed = CRC.checksum(&frame[from..to]);
    let sent = u16::from_be_bytes([frame[to], frame[to + 1]]);
    if computed == sent {
        Ok(())
    } else {
        Err(BadBlock {
            format,
            block,
            from,
            to,
            sent,
            computed,
        })
    }
}

/// Removes the DLL CRCs (checking them) and returns the telegram with L = length − 1,
/// detecting the format by evidence (EN 13757-4 §5.2 layouts):
///
/// 1. The length is that of format A for this L (L + 1 plus two bytes per block): format A.
///    Every block's CRC must verify; the first that fails is named. A CRC-less telegram never
///    has this length (it is L + 1 bytes), so nothing else is tried.
/// 2. The length is L + 1: format B (L counts its CRCs) or CRC-less. Over 128 bytes format B
///    has two CRCs (bytes 126..128 over 0..126, and the last two over 128..n−2):
///    - the first verifies: format B; the second must verify too, else block 3 is named;
///    - the first fails but the second verifies: a damaged format B frame, block 2 named;
///    - neither verifies: CRC-less, with [`Strip::unverified_b`] set.
///
///    Up to 128 bytes there is one CRC (the last two bytes over the rest): it verifies,
///    format B; it fails, CRC-less with [`Strip::unverified_b`] set. A CRC-less telegram
///    whose last two bytes happen to be the CRC of the rest is taken for format B (1 in 65536).
/// 3. Any other length: refused (L does not fit).
///
/// A frame taken as CRC-less with `unverified_b` set is only trusted if it decodes: the
/// caller reports the failed format B CRC when it does not ([`super::decode`]).
pub fn strip(frame: &[u8]) -> Result<Strip<'_>> {
    let Some(&l) = frame.first() else {
        return Err(Error::Incomplete { needed: 1 });
    };
    if Some(frame.len()) == format_a_len(l) {
        let mut out = Vec::with_capacity(usize::from(l) + 1);
        check_block(frame, FrameFormat::A, 1, 0, 10).map_err(|b| b.error())?;
        out.extend_from_slice(&frame[..10]);
        let mut at = 12;
        let mut block = 2;
        while at < frame.len() {
            let n = (frame.len() - at).min(18);
            if n < 3 {
                return Err(Error::invalid("length", format!("format A block {block} has no data")));
            }
            check_block(frame, FrameFormat::A, block, at, at + n - 2).map_err(|b| b.error())?;
            out.extend_from_slice(&frame[at..at + n - 2]);
            at += n;
            block += 1;
        }
        return Ok(Strip {
            telegram: Cow::Owned(out),
            format: FrameFormat::A,
            unverified_b: None,
        });
    }
    if frame.len() != usize::from(l) + 1 {
        return Err(Error::invalid(
            "length",
            format!("L = {l} fits neither {} bytes with nor without DLL CRCs", frame.len()),
        ));
    }
    let n = frame.len();
    let stripped = |bad: Option<BadBlock>| Strip {
        telegram: Cow::Borrowed(frame),
        format: FrameFormat::Stripped,
        unverified_b: bad,
    };
    if n < 13 {
        return Ok(stripped(None));
    }
    let mut out = Vec::with_capacity(n);
    if n <= 128 {
        if let Err(bad) = check_block(frame, FrameFormat::B, 2, 0, n - 2) {
            return Ok(stripped(Some(bad)));
        }
        out.extend_from_slice(&frame[..n - 2]);
    } else {
        let first = check_block(frame, FrameFormat::B, 2, 0, 126);
        if n < 131 {
            // Block 3 would hold no data: not a format B layout.
            return match first {
                Ok(()) => Err(Error::invalid(
                    "length",
                    format!("format B frame of {n} bytes leaves no data for block 3"),
                )),
                Err(bad) => Ok(stripped(Some(bad))),
            };
        }
        let second = check_block(frame, FrameFormat::B, 3, 128, n - 2);
        match (first, second) {
            (Ok(()), Ok(())) => {}
            (Ok(()), Err(bad)) | (Err(bad), Ok(())) => return Err(bad.error()),
            (Err(bad), Err(_)) => return Ok(stripped(Some(bad))),
        }
        out.extend_from_slice(&frame[..126]);
        out.extend_from_slice(&frame[128..n - 2]);
    }
    out[0] = (out.len() - 1) as u8;
    Ok(Strip {
        telegram: Cow::Owned(out),
        format: FrameFormat::B,
        unverified_b: None,
    })
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
        let s = strip(&r4).unwrap();
        assert_eq!(s.format, FrameFormat::A);
        assert_eq!(s.telegram.len(), 0x34 + 1);
        // Each damaged byte names its block and the bytes the CRC covers.
        for (i, named) in [
            (3, "format A CRC of block 1 (bytes 0..10)"),
            (15, "format A CRC of block 2 (bytes 12..28)"),
            (40, "format A CRC of block 3 (bytes 30..46)"),
            (60, "format A CRC of block 4 (bytes 48..59)"),
        ] {
            let mut bad = r4.clone();
            bad[i] ^= 0x10;
            let err = strip(&bad).unwrap_err();
            assert_eq!(err.failed_check(), Some(Check::Crc), "byte {i}");
            let text = err.to_string();
            assert!(
                text.contains("wM-Bus link layer: ") && text.contains(named),
                "byte {i}: {text}"
            );
        }
    }

    /// Builds a format B frame from a CRC-less telegram (one CRC block, ≤ 128 bytes).
    fn format_b(stripped: &[u8]) -> Vec<u8> {
        let mut b = stripped.to_vec();
        b[0] += 2;
        let crc = CRC.checksum(&b);
        b.extend_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn format_b_crcs_are_recognised() {
        let stripped = hex::decode("1844AE4C4455223368077A55000000041389E20100023B0000").unwrap();
        let b = format_b(&stripped);
        let s = strip(&b).unwrap();
        assert_eq!(s.format, FrameFormat::B);
        assert_eq!(&s.telegram[..], &stripped[..]);
        // A real CRC-less telegram: its last two bytes are no CRC of the rest; taken as
        // stripped, with the failed format B reading kept for the caller.
        let s = strip(&stripped).unwrap();
        assert_eq!((s.format, &s.telegram[..]), (FrameFormat::Stripped, &stripped[..]));
        assert_eq!(s.unverified_b.map(|b| (b.block, b.from, b.to)), Some((2, 0, 23)));
        let mut damaged = b.clone();
        damaged[12] ^= 1;
        let s = strip(&damaged).unwrap();
        assert_eq!(s.format, FrameFormat::Stripped);
        assert!(s.unverified_b.is_some());
        let err = strip_as(&damaged, FrameFormat::B).unwrap_err();
        assert_eq!(err.failed_check(), Some(Check::Crc));
        assert!(
            err.to_string().contains("format B CRC of block 2 (bytes 0..25)"),
            "{err}"
        );
        assert_eq!(&strip_as(&b, FrameFormat::B).unwrap()[..], &stripped[..]);
        assert_eq!(&strip_as(&stripped, FrameFormat::Stripped).unwrap()[..], &stripped[..]);
        assert!(strip_as(&stripped, FrameFormat::A).is_err());
    }
}
