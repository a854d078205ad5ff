//! Reading one field of an rtl_433 JSON line, with its limit.
//!
//! rtl_433 prints the same field as a JSON integer in one version and as a `"0x…"` hex string in
//! the next (`ERTType` was `23`, now `"0x17"`; `PacketCRC` likewise), so every integer accepts
//! both. Every refusal names the model and the field, in the words operators search for:
//! `rtl_433 ERT-SCM line: field "consumption_data" missing`.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The longest value text quoted back in an error (a field may hold anything).
const SHOWN: usize = 40;

/// The fields of one rtl_433 line of a known model.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    pub map: &'a Map<String, Value>,
    /// The model as rtl_433 named it (already checked against the known names).
    pub model: &'static str,
}

/// A value as quoted in an error, cut to [`SHOWN`] characters.
pub fn shown(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Fields<'a> {
    /// An error about `key` in this line.
    pub fn error(&self, key: &'static str, what: impl std::fmt::Display) -> Error {
        Error::invalid(key, format!("rtl_433 {} line: field \"{key}\" {what}", self.model))
    }

    /// The field, or the error that says it is missing.
    pub fn get(&self, key: &'static str) -> Result<&'a Value> {
        match self.map.get(key) {
            None | Some(Value::Null) => Err(self.error(key, "missing")),
            Some(v) => Ok(v),
        }
    }

    /// True when the line has the field.
    pub fn has(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    /// An integer in `lo..=hi`, written as a JSON integer or as `"0x…"` hex.
    pub fn int(&self, key: &'static str, lo: i64, hi: u64) -> Result<i64> {
        let v = self.get(key)?;
        let n: i128 = match v {
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => i128::from(u),
                (None, Some(i)) => i128::from(i),
                _ => return Err(self.error(key, format_args!("is {}, expected an integer", shown(v)))),
            },
            Value::String(s) => {
                let digits = s
                    .strip_prefix("0x")
                    .or_else(|| s.strip_prefix("0X"))
                    .filter(|d| !d.is_empty() && d.len() <= 16 && d.bytes().all(|b| b.is_ascii_hexdigit()))
                    .ok_or_else(|| {
                        self.error(key, format_args!("is {}, expected an integer or \"0x…\" hex", shown(v)))
                    })?;
                i128::from(u64::from_str_radix(digits, 16).map_err(|e| self.error(key, e))?)
            }
            other => {
                return Err(self.error(
                    key,
                    format_args!("is {}, expected an integer or \"0x…\" hex", kind(other)),
                ));
            }
        };
        if n < i128::from(lo) || n > i128::from(hi) {
            return Err(self.error(key, format_args!("out of range {lo}..={hi} (got {n})")));
        }
        // In range of lo (≥ i64::MIN) and hi; callers with hi > i64::MAX do not exist.
        i64::try_from(n).map_err(|_| self.error(key, format_args!("out of range {lo}..={hi} (got {n})")))
    }

    /// An unsigned integer of at most `bits` bits (≤ 32).
    pub fn uint(&self, key: &'static str, bits: u32) -> Result<u32> {
        let max = (1u64 << bits) - 1;
        // Range-checked to `bits` ≤ 32 bits just above.
        self.int(key, 0, max).map(|v| v as u32)
    }

    /// An 8-bit field.
    pub fn byte(&self, key: &'static str) -> Result<u8> {
        self.uint(key, 8).map(|v| v as u8)
    }

    /// A 16-bit field.
    pub fn word(&self, key: &'static str) -> Result<u16> {
        self.uint(key, 16).map(|v| v as u16)
    }

    /// `N` bytes written as hex, with or without `0x` (`"0x020100EF0900"`, `"35b96e"`).
    pub fn hex<const N: usize>(&self, key: &'static str) -> Result<[u8; N]> {
        let v = self.get(key)?;
        let Value::String(s) = v else {
            return Err(self.error(key, format_args!("is {}, expected {N} bytes as hex", kind(v))));
        };
        let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
        let wrong = || self.error(key, format_args!("is {}, expected {N} bytes as hex", shown(v)));
        if digits.len() != 2 * N {
            return Err(wrong());
        }
        let mut out = [0u8; N];
        hex::decode_to_slice(digits, &mut out).map_err(|_| wrong())?;
        Ok(out)
    }

    /// An array of exactly `N` unsigned integers of at most `bits` bits; an error names the item.
    pub fn intervals<const N: usize>(&self, key: &'static str, bits: u32) -> Result<[u16; N]> {
        let v = self.get(key)?;
        let Value::Array(list) = v else {
            return Err(self.error(key, format_args!("is {}, expected an array of {N} integers", kind(v))));
        };
        if list.len() != N {
            return Err(self.error(key, format_args!("has {} items, expected {N}", list.len())));
        }
        let max = (1u64 << bits) - 1;
        let mut out = [0u16; N];
        for (i, (slot, item)) in out.iter_mut().zip(list).enumerate() {
            match item.as_u64() {
                Some(n) if n <= max => *slot = n as u16,
                Some(n) => return Err(self.error(key, format_args!("item {i} out of range 0..={max} (got {n})"))),
                None => {
                    return Err(self.error(
                        key,
                        format_args!("item {i} is {}, expected an integer 0..={max}", shown(item)),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// A text field of at most `max` bytes.
    pub fn text(&self, key: &'static str, max: usize) -> Result<&'a str> {
        let v = self.get(key)?;
        let Value::String(s) = v else {
            return Err(self.error(key, format_args!("is {}, expected a string", kind(v))));
        };
        if s.len() > max {
            return Err(self.error(key, format_args!("is {} bytes, at most {max} allowed", s.len())));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(json: &str, f: impl FnOnce(Fields<'_>)) {
        let Value::Object(map) = serde_json::from_str::<Value>(json).unwrap() else {
            panic!("object")
        };
        f(Fields {
            map: &map,
            model: "TEST",
        });
    }

    #[test]
    fn integers_as_numbers_or_hex_strings() {
        with(
            r#"{"a":23,"b":"0x17","c":"0X1c","d":-5,"e":"17","f":1.5,"g":true}"#,
            |f| {
                assert_eq!(f.byte("a").unwrap(), 23);
                assert_eq!(f.byte("b").unwrap(), 23);
                assert_eq!(f.byte("c").unwrap(), 28);
                assert_eq!(f.int("d", -10, 10).unwrap(), -5);
                let e = f.byte("d").unwrap_err().to_string();
                assert_eq!(
                    e,
                    r#"invalid d: rtl_433 TEST line: field "d" out of range 0..=255 (got -5)"#
                );
                let e = f.byte("e").unwrap_err().to_string();
                assert!(
                    e.contains(r#"field "e" is "17", expected an integer or "0x…" hex"#),
                    "{e}"
                );
                assert!(f.byte("f").unwrap_err().to_string().contains("expected an integer"));
                assert!(f.byte("g").unwrap_err().to_string().contains("is a boolean"));
                let e = f.byte("zz").unwrap_err().to_string();
                assert!(e.ends_with(r#"field "zz" missing"#), "{e}");
            },
        );
    }

    #[test]
    fn hex_bytes_and_arrays_have_exact_sizes() {
        with(
            r#"{"t":"0x020100EF0900","x":"35b96e","short":"0x0201","bad":"0xZZ0100EF0900","iv":[1,2,600],"n":[1,"2",3]}"#,
            |f| {
                assert_eq!(f.hex::<6>("t").unwrap(), [2, 1, 0, 0xEF, 9, 0]);
                assert_eq!(f.hex::<3>("x").unwrap(), [0x35, 0xB9, 0x6E]);
                assert!(
                    f.hex::<6>("short")
                        .unwrap_err()
                        .to_string()
                        .contains("expected 6 bytes")
                );
                assert!(f.hex::<6>("bad").is_err());
                let e = f.intervals::<3>("iv", 9).unwrap_err().to_string();
                assert!(e.contains("item 2 out of range 0..=511 (got 600)"), "{e}");
                assert!(
                    f.intervals::<4>("iv", 9)
                        .unwrap_err()
                        .to_string()
                        .contains("has 3 items")
                );
                assert!(f.intervals::<3>("n", 9).unwrap_err().to_string().contains("item 1"));
            },
        );
    }

    #[test]
    fn long_values_are_cut_in_errors() {
        let long = "9".repeat(500);
        with(&format!(r#"{{"a":"{long}"}}"#), |f| {
            let e = f.byte("a").unwrap_err().to_string();
            assert!(e.len() < 150, "{e}");
        });
    }
}
