//! Application-layer headers shared by wired and wireless M-Bus: identification, manufacturer,
//! medium (device type), the status byte, and the long/short data headers.

use nom::IResult;
use nom::Parser;
use nom::number::complete::{le_u16, u8 as byte};

/// The 12-byte variable data header of CI 0x72 (also the wM-Bus long TPL header, where the
/// last two bytes are the configuration field instead of the signature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongHeader {
    /// Identification number as sent (BCD, least significant byte first).
    pub id: [u8; 4],
    pub manufacturer: u16,
    pub version: u8,
    pub medium: u8,
    pub access_no: u8,
    pub status: u8,
    /// Signature (wired) or configuration field (wireless).
    pub signature: u16,
}

/// Parses a [`LongHeader`].
pub fn long_header(input: &[u8]) -> IResult<&[u8], LongHeader> {
    let (input, id) = address_id(input)?;
    let (input, (manufacturer, version, medium, access_no, status, signature)) =
        (le_u16, byte, byte, byte, byte, le_u16).parse(input)?;
    Ok((
        input,
        LongHeader {
            id,
            manufacturer,
            version,
            medium,
            access_no,
            status,
            signature,
        },
    ))
}

/// Four identification bytes.
pub fn address_id(input: &[u8]) -> IResult<&[u8], [u8; 4]> {
    let (input, (a, b, c, d)) = (byte, byte, byte, byte).parse(input)?;
    Ok((input, [a, b, c, d]))
}

/// The identification as the 8 digits printed on the meter (bytes reversed, BCD shown as hex so
/// a non-BCD id still prints unambiguously).
pub fn id_string(id: [u8; 4]) -> String {
    let mut s = String::with_capacity(8);
    for b in id.iter().rev() {
        push_hex(&mut s, *b);
    }
    s
}

/// [`id_string`] without allocating, for map lookups.
pub fn id_digits(id: [u8; 4]) -> [u8; 8] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = [0u8; 8];
    for (k, b) in id.iter().rev().enumerate() {
        out[2 * k] = HEX[usize::from(b >> 4)];
        out[2 * k + 1] = HEX[usize::from(b & 0x0F)];
    }
    out
}

/// `0x7A`-style hex of one byte (CI and C fields in `meterd decode` output).
pub fn hex_byte(b: u8) -> String {
    let mut s = String::with_capacity(4);
    s.push_str("0x");
    push_hex(&mut s, b);
    s
}

/// Appends a byte as two upper-case hex digits.
pub fn push_hex(s: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    s.push(char::from(HEX[usize::from(b >> 4)]));
    s.push(char::from(HEX[usize::from(b & 0x0F)]));
}

/// The three-letter manufacturer code (FLAG association), e.g. `0x2C2D` → `KAM`. The top bit
/// is ignored: some meters send the first letter in lower case.
pub fn manufacturer_code(m: u16) -> String {
    let m = m & 0x7FFF;
    [(m >> 10) & 0x1F, (m >> 5) & 0x1F, m & 0x1F]
        .iter()
        .map(|&c| char::from(c as u8 + 64))
        .collect()
}

/// Encodes a three-letter manufacturer code; `None` unless three letters A–Z.
pub fn manufacturer_id(code: &str) -> Option<u16> {
    let b = code.as_bytes();
    if b.len() != 3 || !b.iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    Some(b.iter().fold(0u16, |acc, &c| (acc << 5) | u16::from(c - 64)))
}

/// The medium (device type) name, in wmbusmeters' words where it has them.
pub fn medium_name(medium: u8) -> String {
    let name = match medium {
        0x00 => "other",
        0x01 => "oil",
        0x02 => "electricity",
        0x03 => "gas",
        0x04 => "heat",
        0x05 => "steam",
        0x06 => "warm water",
        0x07 => "water",
        0x08 => "heat cost allocation",
        0x09 => "compressed air",
        0x0A => "cooling load volume at outlet",
        0x0B => "cooling load volume at inlet",
        0x0C => "heat volume at inlet",
        0x0D => "heat/cooling load",
        0x0E => "bus/system component",
        0x0F => "unknown",
        0x15 => "hot water",
        0x16 => "cold water",
        0x17 => "dual register (hot/cold) water",
        0x18 => "pressure",
        0x19 => "a/d converter",
        0x1A => "smoke detector",
        0x1B => "room sensor",
        0x1C => "gas detector",
        0x20 => "breaker",
        0x21 => "valve",
        0x25 => "customer unit",
        0x28 => "waste water",
        0x29 => "garbage",
        0x31 => "communication controller",
        0x32 => "unidirectional repeater",
        0x33 => "bidirectional repeater",
        0x36 => "radio converter (system side)",
        0x37 => "radio converter (meter side)",
        other => return format!("reserved (0x{other:02X})"),
    };
    name.to_owned()
}

/// Flags carried by the status byte (EN 13757-3 Table 9): application state in bits 0-1, power
/// low, permanent and temporary errors, and three manufacturer bits kept by their value.
pub fn status_flags(status: u8, flags: &mut Vec<String>) {
    match status & 0x03 {
        1 => flags.push("busy".into()),
        2 => flags.push("error".into()),
        3 => flags.push("alarm".into()),
        _ => {}
    }
    if status & 0x04 != 0 {
        flags.push("low_battery".into());
    }
    if status & 0x08 != 0 {
        flags.push("permanent_error".into());
    }
    if status & 0x10 != 0 {
        flags.push("temporary_error".into());
    }
    for bit in [0x20u8, 0x40, 0x80] {
        if status & bit != 0 {
            flags.push(format!("manufacturer_status_{bit:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manufacturer_codes() {
        for (raw, code) in [
            ([0x2D, 0x2C], "KAM"),
            ([0x93, 0x15], "ELS"),
            ([0xAE, 0x4C], "SEN"),
            ([0xC5, 0x14], "EFE"),
            ([0xFA, 0x12], "DWZ"),
            ([0x65, 0x32], "LSE"),
            ([0x24, 0x40], "PAD"),
        ] {
            let m = u16::from_le_bytes(raw);
            assert_eq!(manufacturer_code(m), code);
            assert_eq!(manufacturer_id(code), Some(m));
        }
        assert_eq!(manufacturer_id("kam"), None);
    }

    #[test]
    fn header_and_id() {
        let bytes = [0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01, 0x07, 0x55, 0x00, 0x00, 0x00];
        let (rest, h) = long_header(&bytes).unwrap();
        assert!(rest.is_empty());
        assert_eq!(id_string(h.id), "12345678");
        assert_eq!((h.version, h.medium, h.access_no), (1, 7, 0x55));
        assert_eq!(medium_name(h.medium), "water");
    }

    #[test]
    fn status_bits_become_flags() {
        let mut flags = Vec::new();
        status_flags(0x07, &mut flags);
        assert_eq!(flags, ["alarm", "low_battery"]);
    }
}
