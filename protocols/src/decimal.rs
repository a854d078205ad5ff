//! Decimal text ⇄ micro-units, exactly.
//!
//! meterd keeps quantities as `i64` micro-units (six decimal places; `meterd::model::Quantity`),
//! so a file's `1.234` must become `1_234_000` without a binary float in between, and a value
//! written back must read the same. The interval file formats (NEM12, CMEP) write plain
//! decimals: an optional `-`, digits, an optional point and fraction. Nothing else is taken
//! (no exponent, no thousands separator, no `+`), so a file that means something else is
//! refused rather than guessed at.

/// Decimal places of a micro-unit value.
pub const DECIMALS: u32 = 6;
/// Micro-units per unit.
pub const SCALE: i64 = 1_000_000;
/// Most characters of a decimal text (an `i64` of micros has 19 digits, plus sign and point).
pub const MAX_TEXT: usize = 32;

/// Why a text is not a micro-unit decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("empty number")]
    Empty,
    #[error("longer than {MAX_TEXT} characters")]
    TooLong,
    #[error("not a decimal number")]
    NotANumber,
    #[error("more than {DECIMALS} decimal places")]
    TooPrecise,
    #[error("number too large")]
    Overflow,
}

/// Parse `-?digits[.digits]` into micro-units. At least one digit is needed on one side of
/// the point (`.5` and `5.` are taken: both appear in hand-made files).
pub fn parse_micros(text: &str) -> Result<i64, DecimalError> {
    if text.is_empty() {
        return Err(DecimalError::Empty);
    }
    if text.len() > MAX_TEXT {
        return Err(DecimalError::TooLong);
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, frac) = match digits.split_once('.') {
        Some((w, f)) => (w, f),
        None => (digits, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !all_digits(whole) || !all_digits(frac) {
        return Err(DecimalError::NotANumber);
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > DECIMALS as usize {
        return Err(DecimalError::TooPrecise);
    }
    let mut micros: i64 = 0;
    for b in whole.bytes().chain(frac.bytes()) {
        micros = micros
            .checked_mul(10)
            .and_then(|m| m.checked_add(i64::from(b - b'0')))
            .ok_or(DecimalError::Overflow)?;
    }
    // frac.len() ≤ DECIMALS, so the exponent is in 0..=6.
    let pad = 10i64.pow(DECIMALS - frac.len() as u32);
    micros = micros.checked_mul(pad).ok_or(DecimalError::Overflow)?;
    Ok(if negative { -micros } else { micros })
}

/// Micro-units as the shortest exact decimal: `1500000` → `1.5`, `0` → `0`, `-12345` →
/// `-0.012345`. No exponent, no trailing zeros, no trailing point.
pub fn format_micros(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let scale = SCALE.unsigned_abs();
    let whole = abs / scale;
    let frac = abs % scale;
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let frac = format!("{frac:06}");
    format!("{sign}{whole}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_plain_decimals() {
        assert_eq!(parse_micros("1.5"), Ok(1_500_000));
        assert_eq!(parse_micros("0"), Ok(0));
        assert_eq!(parse_micros("12.345"), Ok(12_345_000));
        assert_eq!(parse_micros("-0.000001"), Ok(-1));
        assert_eq!(parse_micros("1.2500000"), Ok(1_250_000));
        assert_eq!(parse_micros(".5"), Ok(500_000));
        assert_eq!(parse_micros("5."), Ok(5_000_000));
        assert_eq!(parse_micros("007"), Ok(7_000_000));
    }

    #[test]
    fn refuses_what_is_not_an_exact_decimal() {
        assert_eq!(parse_micros(""), Err(DecimalError::Empty));
        assert_eq!(parse_micros("."), Err(DecimalError::NotANumber));
        assert_eq!(parse_micros("-"), Err(DecimalError::NotANumber));
        assert_eq!(parse_micros("1e3"), Err(DecimalError::NotANumber));
        assert_eq!(parse_micros("+1"), Err(DecimalError::NotANumber));
        assert_eq!(parse_micros("1.2.3"), Err(DecimalError::NotANumber));
        assert_eq!(parse_micros(" 1"), Err(DecimalError::NotANumber));
        assert_eq!(parse_micros("0.0000001"), Err(DecimalError::TooPrecise));
        assert_eq!(parse_micros("9223372036854.775808"), Err(DecimalError::Overflow));
        assert_eq!(parse_micros("99999999999999999999"), Err(DecimalError::Overflow));
        assert_eq!(parse_micros(&"1".repeat(40)), Err(DecimalError::TooLong));
    }

    #[test]
    fn formats_without_needless_zeros() {
        assert_eq!(format_micros(1_500_000), "1.5");
        assert_eq!(format_micros(0), "0");
        assert_eq!(format_micros(12_345_000), "12.345");
        assert_eq!(format_micros(-12_345), "-0.012345");
        assert_eq!(format_micros(i64::MIN), "-9223372036854.775808");
        assert_eq!(format_micros(i64::MAX), "9223372036854.775807");
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(m in (i64::MIN + 1)..=i64::MAX) {
            prop_assert_eq!(parse_micros(&format_micros(m)), Ok(m));
        }

        #[test]
        fn any_text_never_panics(s in "\\PC{0,40}") {
            let _ = parse_micros(&s);
        }
    }
}
