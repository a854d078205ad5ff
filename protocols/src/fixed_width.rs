//! Fixed-width record layouts described as data.
//!
//! Handheld route files and many small-utility CIS imports are fixed-width text: every field
//! sits at a fixed column with a fixed length, padded with spaces or zeros. A [`Layout`] says
//! where each field is (1-based `start`, `length`, alignment, padding character) so a utility
//! can describe its own layout in a TOML file without code; the same layout both parses
//! records ([`Layout::parse`]) and writes them ([`Layout::format`]).
//!
//! Bundled: [`sensus_autoread_import`], the 155-character "Typical Sample Route File Layout –
//! IMPORT" of Sensus AutoRead (shared research, handheld §3.3).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which side of its columns a field's text sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Align {
    /// Text first, padding after (names, addresses).
    #[default]
    Left,
    /// Padding first, text after (numbers).
    Right,
}

fn default_pad() -> char {
    ' '
}

/// One field of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Name used to look the value up (`meter_id`, `account`, ...).
    pub name: String,
    /// First column, 1-based as vendor documents count.
    pub start: usize,
    /// Width in characters.
    pub length: usize,
    #[serde(default)]
    pub align: Align,
    /// Padding character (space, or `0` for zero-filled numbers).
    #[serde(default = "default_pad")]
    pub pad: char,
}

impl Field {
    pub fn new(name: &str, start: usize, length: usize, align: Align, pad: char) -> Self {
        Field { name: name.to_owned(), start, length, align, pad }
    }

    fn range(&self) -> std::ops::Range<usize> {
        self.start - 1..self.start - 1 + self.length
    }
}

/// A fixed-width record layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    pub name: String,
    /// Characters per record, without the line ending.
    pub record_length: usize,
    pub fields: Vec<Field>,
}

/// A parsed record: field values in layout order, padding removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'l> {
    layout: &'l Layout,
    values: Vec<String>,
}

impl Record<'_> {
    /// The value of a field, padding removed; `None` if the layout has no such field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.layout.fields.iter().position(|f| f.name == name).map(|i| self.values[i].as_str())
    }

    /// Every (field name, value) pair in layout order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.layout.fields.iter().map(|f| f.name.as_str()).zip(self.values.iter().map(String::as_str))
    }
}

impl Layout {
    /// Check that fields are named, inside the record and do not overlap.
    pub fn check(&self) -> Result<()> {
        let mut spans: Vec<(usize, usize, &str)> = Vec::new();
        for f in &self.fields {
            if f.name.is_empty() {
                return Err(Error::invalid("layout", format!("{}: a field has no name", self.name)));
            }
            if f.start == 0 || f.length == 0 || f.start - 1 + f.length > self.record_length {
                return Err(Error::invalid(
                    "layout",
                    format!(
                        "{}: field {} (start {}, length {}) is outside the {}-character record",
                        self.name, f.name, f.start, f.length, self.record_length
                    ),
                ));
            }
            if self.fields.iter().filter(|g| g.name == f.name).count() > 1 {
                return Err(Error::invalid("layout", format!("{}: field {} appears twice", self.name, f.name)));
            }
            let r = f.range();
            if let Some((_, _, other)) = spans.iter().find(|(s, e, _)| r.start < *e && *s < r.end) {
                return Err(Error::invalid("layout", format!("{}: fields {other} and {} overlap", self.name, f.name)));
            }
            spans.push((r.start, r.end, &f.name));
        }
        Ok(())
    }

    /// Parse one record (a line without its line ending). The line must be exactly
    /// `record_length` characters: a shorter one is a truncated record, a longer one is
    /// another layout.
    pub fn parse<'l>(&'l self, line: &str) -> Result<Record<'l>> {
        let chars: Vec<char> = line.chars().collect();
        if chars.len() != self.record_length {
            let why = if chars.len() < self.record_length { "truncated record" } else { "record too long" };
            return Err(Error::invalid(
                "record",
                format!("{why}: {} characters, layout {} needs {}", chars.len(), self.name, self.record_length),
            ));
        }
        let values = self
            .fields
            .iter()
            .map(|f| {
                let text: String = chars[f.range()].iter().collect();
                let trimmed = match f.align {
                    Align::Left => text.trim_end_matches(f.pad).trim_end(),
                    Align::Right => text.trim_start_matches(f.pad).trim_start(),
                };
                // A zero-padded number that is all zeros is "0", not "".
                if trimmed.is_empty() && f.pad != ' ' && !text.trim().is_empty() {
                    f.pad.to_string()
                } else {
                    trimmed.trim().to_owned()
                }
            })
            .collect();
        Ok(Record { layout: self, values })
    }

    /// Write one record from (field name, value) pairs; fields not given are padding.
    /// A value longer than its field is an error, never silently cut.
    pub fn format<'a>(&self, values: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<String> {
        let mut out: Vec<char> = vec![' '; self.record_length];
        let mut given: Vec<(&str, &str)> = values.into_iter().collect();
        for f in &self.fields {
            let value = given.iter().position(|(n, _)| *n == f.name).map(|i| given.swap_remove(i).1).unwrap_or("");
            let v: Vec<char> = value.chars().collect();
            if v.len() > f.length {
                return Err(Error::invalid(
                    "field",
                    format!("{}: value {value:?} is {} characters, the field holds {}", f.name, v.len(), f.length),
                ));
            }
            let pad = f.length - v.len();
            let cells = &mut out[f.range()];
            match f.align {
                Align::Left => {
                    cells[..v.len()].copy_from_slice(&v);
                    cells[v.len()..].fill(f.pad);
                }
                Align::Right => {
                    cells[..pad].fill(f.pad);
                    cells[pad..].copy_from_slice(&v);
                }
            }
        }
        if let Some((name, _)) = given.first() {
            return Err(Error::invalid("field", format!("layout {} has no field {name}", self.name)));
        }
        Ok(out.into_iter().collect())
    }
}

/// Sensus AutoRead "Typical Sample Route File Layout – IMPORT": 155 characters per record.
/// Columns from the AutoRead user guide (shared research, handheld §3.3); the guide names two
/// fields "Service Address", the second is `service_address_2` here.
pub fn sensus_autoread_import() -> Layout {
    use Align::{Left as L, Right as R};
    let f = |name, start, length, align| Field::new(name, start, length, align, ' ');
    Layout {
        name: "sensus-autoread".into(),
        record_length: 155,
        fields: vec![
            f("service_address", 1, 20, L),
            f("meter_id", 21, 8, L),
            f("account_id", 29, 15, L),
            f("comment", 44, 15, L),
            f("service_address_2", 59, 20, L),
            f("customer_name", 79, 25, L),
            f("meter_type", 104, 1, L),
            f("previous_read", 105, 10, R),
            f("low_limit", 115, 10, R),
            f("high_limit", 125, 10, R),
            f("mxu_id", 135, 10, L),
            f("mxu_type", 145, 1, L),
            f("meter_serial", 146, 10, L),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensus_layout_is_consistent_and_155_wide() {
        let l = sensus_autoread_import();
        l.check().unwrap();
        assert_eq!(l.fields.iter().map(|f| f.length).sum::<usize>(), 155);
    }

    #[test]
    fn format_then_parse_round_trips() {
        let l = sensus_autoread_import();
        let line = l
            .format([
                ("service_address", "12 ELM ST"),
                ("meter_id", "W0000123"),
                ("account_id", "ACC-77"),
                ("meter_type", "W"),
                ("previous_read", "99999678"),
                ("meter_serial", "SN42"),
            ])
            .unwrap();
        assert_eq!(line.len(), 155);
        assert_eq!(&line[20..28], "W0000123");
        assert_eq!(&line[104..114], "  99999678");
        let rec = l.parse(&line).unwrap();
        assert_eq!(rec.get("service_address"), Some("12 ELM ST"));
        assert_eq!(rec.get("meter_id"), Some("W0000123"));
        assert_eq!(rec.get("previous_read"), Some("99999678"));
        assert_eq!(rec.get("customer_name"), Some(""));
        assert_eq!(rec.get("nope"), None);
        assert_eq!(l.format(rec.iter()).unwrap(), line);
    }

    #[test]
    fn truncated_and_overlong_records_are_errors() {
        let l = sensus_autoread_import();
        let e = l.parse(&" ".repeat(120)).unwrap_err();
        assert!(e.to_string().contains("truncated record: 120 characters"), "{e}");
        let e = l.parse(&" ".repeat(156)).unwrap_err();
        assert!(e.to_string().contains("too long"), "{e}");
    }

    #[test]
    fn values_too_long_or_unknown_fields_are_refused() {
        let l = sensus_autoread_import();
        assert!(l.format([("meter_id", "123456789")]).unwrap_err().to_string().contains("holds 8"));
        assert!(l.format([("colour", "red")]).unwrap_err().to_string().contains("no field colour"));
    }

    #[test]
    fn zero_padded_fields_and_overlap_check() {
        let l = Layout {
            name: "t".into(),
            record_length: 8,
            fields: vec![Field::new("a", 1, 4, Align::Right, '0'), Field::new("b", 5, 4, Align::Left, ' ')],
        };
        l.check().unwrap();
        let line = l.format([("a", "12"), ("b", "x")]).unwrap();
        assert_eq!(line, "0012x   ");
        assert_eq!(l.parse(&line).unwrap().get("a"), Some("12"));
        assert_eq!(l.parse("0000x   ").unwrap().get("a"), Some("0"));
        let bad = Layout { fields: vec![Field::new("a", 1, 5, Align::Left, ' '), Field::new("b", 5, 4, Align::Left, ' ')], ..l };
        assert!(bad.check().unwrap_err().to_string().contains("overlap"));
    }

    #[test]
    fn layouts_load_from_toml_shaped_data() {
        // Issue 7 loads layouts from TOML; serde is the contract. JSON here keeps the
        // protocol crate free of a TOML dependency.
        let l: Layout = serde_json::from_str(
            r#"{"name":"x","record_length":4,"fields":[{"name":"n","start":1,"length":4,"align":"right","pad":"0"}]}"#,
        )
        .unwrap();
        assert_eq!(l.format([("n", "7")]).unwrap(), "0007");
    }
}
