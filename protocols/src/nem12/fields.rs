//! Splitting a NEM12 record and checking its fields one at a time, every error naming the
//! line and the field.
//!
//! NEM12 fields never contain commas or quotes (the file format specification gives each
//! field a plain character or numeric type), so a record is split on commas only. Length
//! limits are the specification's field sizes where it gives one (NMI 10, suffix 2, meter
//! serial 12, unit 5, reason text 240).

use jiff::civil::{Date, DateTime};

use super::{MAX_FIELDS, MAX_LINE, Nem12Error};
use crate::decimal;

/// Most characters of an interval value.
pub const MAX_VALUE: usize = decimal::MAX_TEXT;
/// Most characters of a participant id.
pub const MAX_PARTICIPANT: usize = 10;
/// Most characters of an NMI.
pub const MAX_NMI: usize = 10;
/// Most characters of the NMI configuration.
pub const MAX_NMI_CONFIGURATION: usize = 240;
/// Most characters of a register id.
pub const MAX_REGISTER_ID: usize = 10;
/// Most characters of an NMI suffix and of an MDM data stream id.
pub const MAX_SUFFIX: usize = 2;
/// Most characters of a meter serial number.
pub const MAX_METER_SERIAL: usize = 12;
/// Most characters of a unit of measure.
pub const MAX_UNIT: usize = 5;
/// Most characters of a reason text.
pub const MAX_REASON_TEXT: usize = 240;
/// Most characters of a `500` text field (transaction code, service order, index read).
pub const MAX_B2B_TEXT: usize = 15;
/// Highest reason code (three digits).
pub const MAX_REASON_CODE: u16 = 999;

/// One record's fields, with the line they came from.
#[derive(Debug)]
pub struct Record<'a> {
    pub line: u64,
    pub fields: Vec<&'a str>,
}

/// Split a line (its `\r\n` or `\n` already removed or not) into fields.
pub fn split(line_no: u64, line: &str) -> Result<Record<'_>, Nem12Error> {
    if line.len() > MAX_LINE {
        return Err(Nem12Error::new(
            line_no,
            "record",
            format!("{} characters, a line holds at most {MAX_LINE}", line.len()),
        ));
    }
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut fields = Vec::new();
    for f in line.split(',') {
        if fields.len() == MAX_FIELDS {
            return Err(Nem12Error::new(
                line_no,
                "record",
                format!("more than {MAX_FIELDS} fields"),
            ));
        }
        fields.push(f);
    }
    Ok(Record { line: line_no, fields })
}

impl<'a> Record<'a> {
    /// The record indicator (`100`, `200`, ...).
    pub fn indicator(&self) -> &'a str {
        self.fields.first().copied().unwrap_or("")
    }

    fn err(&self, field: &'static str, detail: impl Into<String>) -> Nem12Error {
        Nem12Error::new(self.line, field, detail)
    }

    /// Refuse a field count outside `allowed`.
    pub fn expect_fields(&self, allowed: &[usize]) -> Result<(), Nem12Error> {
        if allowed.contains(&self.fields.len()) {
            return Ok(());
        }
        let want: Vec<String> = allowed.iter().map(ToString::to_string).collect();
        Err(self.err(
            "record",
            format!(
                "a {} record has {} fields, this one has {}",
                self.indicator(),
                want.join(" or "),
                self.fields.len()
            ),
        ))
    }

    /// Field `i` (0-based), refused when missing.
    pub fn get(&self, i: usize, field: &'static str) -> Result<&'a str, Nem12Error> {
        self.fields.get(i).copied().ok_or_else(|| self.err(field, "missing"))
    }

    /// Text of at most `max` characters; `required` refuses it empty.
    pub fn text(&self, i: usize, field: &'static str, max: usize, required: bool) -> Result<String, Nem12Error> {
        let t = self.get(i, field)?;
        if t.chars().count() > max {
            return Err(self.err(field, format!("longer than {max} characters")));
        }
        if required && t.is_empty() {
            return Err(self.err(field, "empty"));
        }
        Ok(t.to_string())
    }

    /// A date `YYYYMMDD`; empty is `None` unless `required`.
    pub fn date(&self, i: usize, field: &'static str, required: bool) -> Result<Option<Date>, Nem12Error> {
        let t = self.get(i, field)?;
        if t.is_empty() && !required {
            return Ok(None);
        }
        if t.len() != 8 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.err(field, format!("{} is not YYYYMMDD", shown(t))));
        }
        Date::strptime("%Y%m%d", t)
            .map(Some)
            .map_err(|e| self.err(field, format!("{t:?}: {e}")))
    }

    /// A date-time `YYYYMMDDHHMM` (`seconds` false) or `YYYYMMDDHHMMSS`; empty is `None`
    /// unless `required`.
    pub fn datetime(
        &self,
        i: usize,
        field: &'static str,
        seconds: bool,
        required: bool,
    ) -> Result<Option<DateTime>, Nem12Error> {
        let t = self.get(i, field)?;
        if t.is_empty() && !required {
            return Ok(None);
        }
        let (len, pattern, name) = if seconds {
            (14, "%Y%m%d%H%M%S", "YYYYMMDDHHMMSS")
        } else {
            (12, "%Y%m%d%H%M", "YYYYMMDDHHMM")
        };
        if t.len() != len || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.err(field, format!("{} is not {name}", shown(t))));
        }
        DateTime::strptime(pattern, t)
            .map(Some)
            .map_err(|e| self.err(field, format!("{t:?}: {e}")))
    }

    /// An unsigned number `0..=max`.
    pub fn number(&self, i: usize, field: &'static str, max: u64) -> Result<u64, Nem12Error> {
        let t = self.get(i, field)?;
        if t.is_empty() || t.len() > 20 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.err(field, format!("{} is not a number", shown(t))));
        }
        match t.parse::<u64>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(self.err(field, format!("{t} is more than {max}"))),
        }
    }

    /// A reason code: empty or `0..=999`.
    pub fn reason_code(&self, i: usize) -> Result<Option<u16>, Nem12Error> {
        if self.get(i, "reason code")?.is_empty() {
            return Ok(None);
        }
        let n = self.number(i, "reason code", u64::from(MAX_REASON_CODE))?;
        Ok(u16::try_from(n).ok())
    }

    /// A quality-method.
    pub fn quality(&self, i: usize) -> Result<super::QualityMethod, Nem12Error> {
        let t = self.get(i, "quality-method")?;
        super::QualityMethod::parse(t).map_err(|e| self.err("quality-method", e))
    }

    /// An interval value in micro-units; `n` is its 1-based interval number for the message.
    pub fn value(&self, i: usize, n: usize) -> Result<i64, Nem12Error> {
        let t = self.get(i, "interval value")?;
        decimal::parse_micros(t).map_err(|e| self.err("interval value", format!("interval {n}: {}: {e}", shown(t))))
    }
}

/// A field's text for a message, cut short and quoted.
fn shown(t: &str) -> String {
    let cut: String = t.chars().take(24).collect();
    if cut.len() < t.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}
