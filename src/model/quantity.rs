//! Exact decimal quantities for register values, consumption, limits and multipliers.
//!
//! Meter registers are decimal counters; a bill computed from a binary float can be off by a
//! unit. A [`Quantity`] is a signed fixed-point number with six decimal places (micro-units),
//! held in an `i64` (range about ±9.2 × 10¹², enough for a 12-dial register). Arithmetic on
//! quantities is exact; only the JSON edge converts to a JSON number.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Decimal places a [`Quantity`] keeps.
pub const QUANTITY_DECIMALS: u32 = 6;
/// Micro-units per unit.
pub const SCALE: i64 = 1_000_000;

/// An exact decimal quantity (micro-units in an `i64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Quantity(i64);

/// Why a text is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("empty number")]
    Empty,
    #[error("not a decimal number")]
    NotANumber,
    #[error("more than {QUANTITY_DECIMALS} decimal places")]
    TooPrecise,
    #[error("number too large")]
    Overflow,
}

impl Quantity {
    pub const ZERO: Quantity = Quantity(0);

    /// From micro-units.
    pub const fn from_micros(micros: i64) -> Self {
        Quantity(micros)
    }

    /// From whole units; `None` on overflow.
    pub const fn from_units(units: i64) -> Option<Self> {
        match units.checked_mul(SCALE) {
            Some(m) => Some(Quantity(m)),
            None => None,
        }
    }

    /// The micro-units.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// 10^exp whole units (register modulus); `None` when it does not fit.
    pub fn pow10(exp: u32) -> Option<Self> {
        10i64.checked_pow(exp).and_then(Self::from_units)
    }

    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Quantity)
    }

    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.0.checked_sub(other.0).map(Quantity)
    }

    /// Euclidean remainder (always in `0..modulus` for a positive modulus): the register wrap.
    pub fn rem_euclid(self, modulus: Self) -> Self {
        Quantity(self.0.rem_euclid(modulus.0))
    }

    /// `self × num / den`, rounded half away from zero, computed in 128 bits so that
    /// intermediate products cannot overflow. Used for ADU × days and factor × expected.
    pub fn mul_div(self, num: i128, den: i128) -> Option<Self> {
        if den == 0 {
            return None;
        }
        let p = i128::from(self.0).checked_mul(num)?;
        let (q, r) = (p / den, p % den);
        // Round half away from zero: |2r| ≥ |den| → step away from zero.
        let q = if 2 * r.abs() >= den.abs() {
            q + p.signum() * den.signum()
        } else {
            q
        };
        i64::try_from(q).ok().map(Quantity)
    }

    /// Multiply by another quantity used as a factor (e.g. 1.8), rounding half away from zero.
    pub fn mul_factor(self, factor: Quantity) -> Option<Self> {
        self.mul_div(i128::from(factor.0), i128::from(SCALE))
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// The nearest `f64`, for JSON output only. For up to 15 significant digits the shortest
    /// representation of that float prints back as the same decimal text.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / SCALE as f64
    }

    /// Round an `f64` (e.g. a configuration factor) to the nearest micro-unit.
    pub fn from_f64(v: f64) -> Option<Self> {
        let m = (v * SCALE as f64).round();
        if m.is_finite() && m.abs() < i64::MAX as f64 {
            Some(Quantity(m as i64))
        } else {
            None
        }
    }

    /// Parse decimal text: optional sign, digits, optional `.` and up to six decimals.
    /// Leading zeros are fine (`00000123` is a register value as a handheld prints it).
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(QuantityError::Empty);
        }
        let (neg, digits) = match t.as_bytes()[0] {
            b'-' => (true, &t[1..]),
            b'+' => (false, &t[1..]),
            _ => (false, t),
        };
        let (int, frac) = match digits.split_once('.') {
            Some((i, f)) => (i, f),
            None => (digits, ""),
        };
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(QuantityError::NotANumber);
        }
        if frac.len() > QUANTITY_DECIMALS as usize {
            return Err(QuantityError::TooPrecise);
        }
        let mut micros: i64 = 0;
        for b in int.bytes() {
            micros = micros
                .checked_mul(10)
                .and_then(|m| m.checked_add(i64::from(b - b'0')))
                .ok_or(QuantityError::Overflow)?;
        }
        micros = micros.checked_mul(SCALE).ok_or(QuantityError::Overflow)?;
        let mut f: i64 = 0;
        for b in frac.bytes() {
            f = f * 10 + i64::from(b - b'0');
        }
        f *= 10i64.pow(QUANTITY_DECIMALS - frac.len() as u32);
        micros = micros.checked_add(f).ok_or(QuantityError::Overflow)?;
        Ok(Quantity(if neg { -micros } else { micros }))
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl fmt::Display for Quantity {
    /// Shortest exact decimal text: `445`, `12.5`, `-0.001`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let (int, frac) = (abs / SCALE as u64, abs % SCALE as u64);
        if frac == 0 {
            write!(f, "{sign}{int}")
        } else {
            let s = format!("{frac:06}");
            write!(f, "{sign}{int}.{}", s.trim_end_matches('0'))
        }
    }
}

impl Serialize for Quantity {
    /// JSON (human-readable) gets a number; the store (postcard) gets the exact micro-units.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            if self.0 % SCALE == 0 {
                s.serialize_i64(self.0 / SCALE)
            } else {
                s.serialize_f64(self.to_f64())
            }
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Human {
                Int(i64),
                Float(f64),
                Text(String),
            }
            match Human::deserialize(d)? {
                Human::Int(i) => Quantity::from_units(i).ok_or_else(|| serde::de::Error::custom("number too large")),
                Human::Float(v) => Quantity::from_f64(v).ok_or_else(|| serde::de::Error::custom("number too large")),
                Human::Text(t) => Quantity::parse(&t).map_err(serde::de::Error::custom),
            }
        } else {
            i64::deserialize(d).map(Quantity)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_exactly() {
        for (text, micros, shown) in [
            ("00000123", 123_000_000, "123"),
            ("99999678", 99_999_678_000_000, "99999678"),
            ("12.5", 12_500_000, "12.5"),
            ("0.000001", 1, "0.000001"),
            ("-3.250", -3_250_000, "-3.25"),
            ("+7.", 7_000_000, "7"),
            (".5", 500_000, "0.5"),
        ] {
            let q = Quantity::parse(text).unwrap();
            assert_eq!(q.micros(), micros, "{text}");
            assert_eq!(q.to_string(), shown, "{text}");
        }
    }

    #[test]
    fn rejects_bad_text() {
        assert_eq!(Quantity::parse(""), Err(QuantityError::Empty));
        assert_eq!(Quantity::parse("12x"), Err(QuantityError::NotANumber));
        assert_eq!(Quantity::parse("1.2.3"), Err(QuantityError::NotANumber));
        assert_eq!(Quantity::parse("."), Err(QuantityError::NotANumber));
        assert_eq!(Quantity::parse("1e5"), Err(QuantityError::NotANumber));
        assert_eq!(Quantity::parse("1.0000001"), Err(QuantityError::TooPrecise));
        assert_eq!(Quantity::parse("99999999999999999999"), Err(QuantityError::Overflow));
    }

    #[test]
    fn register_wrap_is_euclidean() {
        let m = Quantity::pow10(8).unwrap();
        let c = Quantity::parse("123")
            .unwrap()
            .checked_sub(Quantity::parse("99999678").unwrap())
            .unwrap();
        assert_eq!(c.rem_euclid(m), Quantity::from_units(445).unwrap());
    }

    #[test]
    fn mul_div_rounds_half_away_from_zero() {
        let q = Quantity::from_micros(5);
        assert_eq!(q.mul_div(1, 2), Some(Quantity::from_micros(3)));
        assert_eq!(Quantity::from_micros(-5).mul_div(1, 2), Some(Quantity::from_micros(-3)));
        assert_eq!(
            Quantity::from_units(10)
                .unwrap()
                .mul_factor(Quantity::parse("1.8").unwrap()),
            Quantity::from_units(18)
        );
        assert_eq!(q.mul_div(1, 0), None);
    }

    proptest::proptest! {
        /// Display → parse is the identity, and JSON numbers read back exactly (≤ 15 digits).
        #[test]
        fn text_and_json_round_trip(micros in -999_999_999_999_999i64..=999_999_999_999_999) {
            let q = Quantity::from_micros(micros);
            proptest::prop_assert_eq!(Quantity::parse(&q.to_string()).unwrap(), q);
            let json = serde_json::to_string(&q).unwrap();
            proptest::prop_assert_eq!(serde_json::from_str::<Quantity>(&json).unwrap(), q);
            proptest::prop_assert_eq!(json, q.to_string());
        }

        /// Parsing arbitrary text never panics.
        #[test]
        fn parse_never_panics(s in "\\PC{0,24}") {
            let _ = Quantity::parse(&s);
        }
    }

    #[test]
    fn json_prints_numbers_and_postcard_keeps_micros() {
        let q = Quantity::parse("12.345").unwrap();
        assert_eq!(serde_json::to_string(&q).unwrap(), "12.345");
        assert_eq!(
            serde_json::to_string(&Quantity::from_units(445).unwrap()).unwrap(),
            "445"
        );
        let bytes = postcard::to_allocvec(&q).unwrap();
        assert_eq!(postcard::from_bytes::<Quantity>(&bytes).unwrap(), q);
        assert_eq!(serde_json::from_str::<Quantity>("12.345").unwrap(), q);
    }
}
