//! Data field values (EN 13757-3 §6.3): integers, BCD, reals, variable length, and the date
//! types F, G and I; plus exact decimal scaling so `12565 × 10⁻³` prints as `12.565`.

use serde_json::{Number, Value};

/// A decoded data field, before the VIF gives it a meaning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Data<'a> {
    /// Data field 0 (no data) or 8 (selection for readout).
    None,
    /// A little-endian two's-complement integer (data fields 1–4, 6, 7; LVAR binary ≤ 8 bytes).
    Int(i64),
    /// A BCD number whose digits are all decimal (a leading `F` nibble means negative).
    Bcd(i64),
    /// A BCD field holding hex digits A–F: the meter signals an error or an invalid value.
    /// Kept as its digits, most significant first (e.g. `"00A1"`).
    BcdInvalid { raw: u64, digits: u8 },
    /// IEEE-754 single precision.
    Real(f32),
    /// LVAR text, as sent on the wire (the meter sends it last character first).
    Text(&'a [u8]),
    /// LVAR binary longer than 8 bytes, as sent (least significant byte first).
    Bytes(&'a [u8]),
}

/// Decodes `bytes` (already in little-endian order) as a signed integer.
pub fn int_le(bytes: &[u8]) -> i64 {
    let mut v: u64 = 0;
    for (i, b) in bytes.iter().enumerate().take(8) {
        v |= u64::from(*b) << (8 * i);
    }
    let bits = 8 * bytes.len().min(8) as u32;
    if bits == 0 {
        return 0;
    }
    if bits < 64 {
        // Sign-extend from the field width.
        let shift = 64 - bits;
        ((v << shift) as i64) >> shift
    } else {
        v as i64
    }
}

/// Decodes `bytes` (little-endian, two digits per byte) as BCD. A high nibble of `F` in the most
/// significant byte makes the number negative; any other non-decimal nibble makes it invalid.
pub fn bcd_le(bytes: &[u8]) -> Data<'static> {
    let digits = (bytes.len() * 2) as u8;
    let mut raw: u64 = 0;
    for b in bytes.iter().rev() {
        raw = (raw << 8) | u64::from(*b);
    }
    let mut value: i64 = 0;
    let mut negative = false;
    let mut valid = true;
    for (k, b) in bytes.iter().rev().enumerate() {
        let (hi, lo) = (b >> 4, b & 0x0F);
        if k == 0 && hi == 0x0F {
            negative = true;
        } else if hi > 9 {
            valid = false;
        } else {
            value = value * 10 + i64::from(hi);
        }
        if lo > 9 {
            valid = false;
        } else {
            value = value * 10 + i64::from(lo);
        }
    }
    if !valid || bytes.len() > 9 {
        return Data::BcdInvalid { raw, digits };
    }
    Data::Bcd(if negative { -value } else { value })
}

/// Hex digits of a raw BCD field, most significant first.
pub fn bcd_digits(raw: u64, digits: u8) -> String {
    format!("{raw:0width$X}", width = digits as usize)
}

const POW10: [i64; 19] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
    10_000_000_000_000_000,
    100_000_000_000_000_000,
    1_000_000_000_000_000_000,
];

/// `mantissa × 10^exp` as a JSON number without float noise: an integer when the result is whole,
/// otherwise the double nearest to the exact decimal (IEEE division of two exact operands is
/// correctly rounded, so `12565 / 1000` prints as `12.565`).
pub fn scaled(mantissa: i64, exp: i32) -> Value {
    if exp >= 0 {
        if let Some(p) = POW10.get(exp as usize)
            && let Some(v) = mantissa.checked_mul(*p)
        {
            return Value::from(v);
        }
        return float(format!("{mantissa}e{exp}").parse().unwrap_or(f64::NAN));
    }
    let k = (-exp) as usize;
    if let Some(p) = POW10.get(k) {
        if mantissa % p == 0 {
            return Value::from(mantissa / p);
        }
        if mantissa.unsigned_abs() < (1u64 << 53) && k <= 22 {
            return float(mantissa as f64 / *p as f64);
        }
    }
    float(format!("{mantissa}e{exp}").parse().unwrap_or(f64::NAN))
}

/// A real scaled by `10^exp`, going through the shortest decimal form of the `f32` so that
/// `12.345f32` stays `12.345` instead of `12.345000267028809`.
pub fn scaled_real(v: f32, exp: i32) -> Value {
    if !v.is_finite() {
        return Value::Null;
    }
    let x: f64 = format!("{v}e{exp}").parse().unwrap_or(f64::NAN);
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        return Value::from(x as i64);
    }
    float(x)
}

fn float(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// Date type G (2 bytes): `YYYY-MM-DD`, or `None` when the meter marks it invalid.
pub fn date_g(b: &[u8]) -> Option<String> {
    let [b0, b1] = *b else { return None };
    if b0 == 0xFF && b1 == 0xFF {
        return None;
    }
    let day = b0 & 0x1F;
    let month = b1 & 0x0F;
    let year = ((b0 & 0xE0) >> 5) | ((b1 & 0xF0) >> 1);
    valid_date(day, month, year)?;
    Some(iso(2000 + u32::from(year), month, day, None))
}

/// Date-time type F (4 bytes): `YYYY-MM-DDTHH:MM:00` local meter time, `None` when invalid.
pub fn datetime_f(b: &[u8]) -> Option<String> {
    let [b0, b1, b2, b3] = *b else { return None };
    if b0 & 0x80 != 0 {
        return None;
    }
    let minute = b0 & 0x3F;
    let hour = b1 & 0x1F;
    let hundred = (b1 & 0x60) >> 5;
    let day = b2 & 0x1F;
    let month = b3 & 0x0F;
    let year = ((b2 & 0xE0) >> 5) | ((b3 & 0xF0) >> 1);
    valid_date(day, month, year)?;
    let year = u32::from(year);
    if minute > 59 || hour > 23 {
        return None;
    }
    // Century: the hundred-year bits when set; otherwise years up to 80 are this century.
    let year = if hundred != 0 {
        1900 + 100 * u32::from(hundred) + year
    } else if year <= 80 {
        2000 + year
    } else {
        1900 + year
    };
    Some(iso(year, month, day, Some((hour, minute, 0))))
}

/// Date-time type I (6 bytes): `YYYY-MM-DDTHH:MM:SS`, `None` when invalid.
pub fn datetime_i(b: &[u8]) -> Option<String> {
    let [b0, b1, b2, b3, b4, _b5] = *b else { return None };
    if b1 & 0x80 != 0 {
        return None;
    }
    let second = b0 & 0x3F;
    let minute = b1 & 0x3F;
    let hour = b2 & 0x1F;
    let day = b3 & 0x1F;
    let month = b4 & 0x0F;
    let year = ((b3 & 0xE0) >> 5) | ((b4 & 0xF0) >> 1);
    valid_date(day, month, year)?;
    if second > 59 || minute > 59 || hour > 23 {
        return None;
    }
    Some(iso(2000 + u32::from(year), month, day, Some((hour, minute, second))))
}

/// Day 0, month 0 or 13+, and years past 99 (all bits set, 1.1.127, is "not set") are invalid.
/// `YYYY-MM-DD[THH:MM:SS]` without going through `format!` (dates are on the hot path).
fn iso(year: u32, month: u8, day: u8, time: Option<(u8, u8, u8)>) -> String {
    fn two(s: &mut String, v: u8) {
        s.push(char::from(b'0' + v / 10));
        s.push(char::from(b'0' + v % 10));
    }
    let mut s = String::with_capacity(19);
    two(&mut s, (year / 100 % 100) as u8);
    two(&mut s, (year % 100) as u8);
    s.push('-');
    two(&mut s, month);
    s.push('-');
    two(&mut s, day);
    if let Some((h, m, sec)) = time {
        s.push('T');
        two(&mut s, h);
        s.push(':');
        two(&mut s, m);
        s.push(':');
        two(&mut s, sec);
    }
    s
}

fn valid_date(day: u8, month: u8, year: u8) -> Option<()> {
    ((1..=31).contains(&day) && (1..=12).contains(&month) && year <= 99).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_sign_extended_from_their_width() {
        assert_eq!(int_le(&[0xFF]), -1);
        assert_eq!(int_le(&[0x89, 0xE2, 0x01, 0x00]), 123_529);
        assert_eq!(int_le(&[0x15, 0x31, 0x00]), 12_565);
        assert_eq!(int_le(&[0x00, 0x00, 0x80]), -8_388_608);
        assert_eq!(int_le(&[0xFF; 6]), -1);
        assert_eq!(int_le(&[0xFF; 8]), -1);
    }

    #[test]
    fn bcd_handles_sign_and_error_digits() {
        assert_eq!(bcd_le(&[0x27, 0x04, 0x85, 0x02]), Data::Bcd(2_850_427));
        assert_eq!(bcd_le(&[0x13, 0x01]), Data::Bcd(113));
        assert_eq!(bcd_le(&[0x45, 0xF1]), Data::Bcd(-145));
        assert_eq!(bcd_le(&[0x1B, 0xA0]), Data::BcdInvalid { raw: 0xA01B, digits: 4 });
        assert_eq!(bcd_digits(0xA01B, 6), "00A01B");
    }

    #[test]
    fn scaling_is_exact_in_decimal() {
        assert_eq!(scaled(12_345, -3).to_string(), "12.345");
        assert_eq!(scaled(12_565, -3).to_string(), "12.565");
        assert_eq!(scaled(2_850_427, -2).to_string(), "28504.27");
        assert_eq!(scaled(21_837, 1).to_string(), "218370");
        assert_eq!(scaled(1_000, -3).to_string(), "1");
        assert_eq!(scaled(-5, -1).to_string(), "-0.5");
        assert_eq!(scaled_real(12.345, 0).to_string(), "12.345");
        assert_eq!(scaled_real(0.1, 3).to_string(), "100");
    }

    #[test]
    fn dates_follow_types_f_g_i() {
        assert_eq!(
            datetime_f(&[0x32, 0x37, 0x1F, 0x15]).as_deref(),
            Some("2008-05-31T23:50:00")
        );
        assert_eq!(
            datetime_f(&[0x28, 0x2A, 0x9E, 0x27]).as_deref(),
            Some("2020-07-30T10:40:00")
        );
        assert_eq!(datetime_f(&[0xB2, 0x37, 0x1F, 0x15]), None, "IV bit set");
        assert_eq!(date_g(&[0x1F, 0x15]).as_deref(), Some("2008-05-31"));
        assert_eq!(date_g(&[0xFF, 0xFF]), None);
        assert_eq!(date_g(&[0xE1, 0xF1]), None, "1.1.127 means not set");
        assert_eq!(
            datetime_i(&[0x05, 0x32, 0x17, 0x1F, 0x15, 0x00]).as_deref(),
            Some("2008-05-31T23:50:05")
        );
    }
}
