//! Firmware 1 records: fixed-width ASCII lines ending in CR LF, modelled on the Sensus AutoRead
//! import (route) and export (read) layouts. Columns are 1-based, as in the vendor manuals.
//!
//! Route meter line (`M`, 142 characters):
//!
//! | Field | Start | Len | Form |
//! |---|---|---|---|
//! | record type `M` | 1 | 1 | |
//! | walk sequence | 2 | 6 | zero-padded |
//! | service address | 8 | 20 | left, space-padded |
//! | meter ID | 28 | 12 | left |
//! | account ID | 40 | 15 | left |
//! | customer name | 55 | 25 | left |
//! | service type | 80 | 1 | `W` `G` `E` `P` |
//! | previous read | 81 | 10 | zero-padded |
//! | low limit | 91 | 10 | zero-padded |
//! | high limit | 101 | 10 | zero-padded |
//! | dials | 111 | 2 | zero-padded |
//! | location note | 113 | 30 | left |
//!
//! Trouble-code line (`T`, 35 characters): code 2–5 (left), text 6–35 (left).
//!
//! Read line (`R`, 71 characters):
//!
//! | Field | Start | Len | Form |
//! |---|---|---|---|
//! | record type `R` | 1 | 1 | |
//! | read sequence | 2 | 10 | zero-padded |
//! | route ID | 12 | 10 | left |
//! | meter ID | 22 | 12 | left |
//! | reading | 34 | 10 | zero-padded; blank = no read |
//! | read date | 44 | 8 | `MMDDYYYY` |
//! | read time | 52 | 6 | `HHMMSS` |
//! | read type | 58 | 1 | `K` keyed, `R` radio, `E` probe |
//! | verified | 59 | 1 | blank, `H` high re-keyed, `L` low re-keyed |
//! | skip code | 60 | 4 | left; blank = none |
//! | trouble code 1 | 64 | 4 | left |
//! | trouble code 2 | 68 | 4 | left |

use super::record::{ReadRecord, ReadTime, ReadType, RouteMeter, TroubleCode, Verified};
use crate::error::{Error, Result};

pub const ROUTE_LINE_LEN: usize = 142;
pub const CODE_LINE_LEN: usize = 35;
pub const READ_LINE_LEN: usize = 71;

fn left(out: &mut Vec<u8>, s: &str, width: usize) {
    out.extend_from_slice(s.as_bytes());
    out.resize(out.len() + width - s.len(), b' ');
}

fn zero(out: &mut Vec<u8>, v: u64, width: usize) {
    out.extend_from_slice(format!("{v:0width$}").as_bytes());
}

/// A line being parsed; errors name the record, the field and its column.
struct Line<'a> {
    record: &'static str,
    bytes: &'a [u8],
}

impl<'a> Line<'a> {
    fn err(&self, field: &'static str, start: usize, detail: impl std::fmt::Display) -> Error {
        Error::invalid(field, format!("{} line column {start}: {detail}", self.record))
    }

    fn raw(&self, start: usize, len: usize) -> &'a [u8] {
        &self.bytes[start - 1..start - 1 + len]
    }

    fn text(&self, field: &'static str, start: usize, len: usize) -> Result<String> {
        let raw = self.raw(start, len);
        if let Some(b) = raw.iter().find(|b| !(0x20..=0x7E).contains(*b)) {
            return Err(self.err(field, start, format!("non-printable byte {b:#04x}")));
        }
        // Checked printable ASCII above, so this cannot fail.
        let s = std::str::from_utf8(raw).map_err(|e| self.err(field, start, e))?;
        Ok(s.trim_end().to_string())
    }

    fn number(&self, field: &'static str, start: usize, len: usize) -> Result<u64> {
        let raw = self.raw(start, len);
        if !raw.iter().all(u8::is_ascii_digit) {
            return Err(self.err(
                field,
                start,
                format!("{:?} is not {len} digits", String::from_utf8_lossy(raw)),
            ));
        }
        Ok(raw.iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')))
    }

    fn code(&self, field: &'static str, start: usize) -> Result<Option<String>> {
        let s = self.text(field, start, 4)?;
        if s.is_empty() {
            return Ok(None);
        }
        super::record::check_code(field, &s).map_err(|_| self.err(field, start, format!("{s:?} is not a code")))?;
        Ok(Some(s))
    }
}

/// Splits `input` into one line, checking its length, record type and CR LF.
fn take_line<'a>(input: &'a [u8], record: &'static str, tag: u8, len: usize) -> Result<(Line<'a>, &'a [u8])> {
    if input.len() < len + 2 {
        return Err(Error::invalid(
            "line length",
            format!("{record} line needs {} bytes, {} left", len + 2, input.len()),
        ));
    }
    if input[0] != tag {
        return Err(Error::invalid(
            "record type",
            format!(
                "expected {:?} for a {record} line, got {:?}",
                tag as char, input[0] as char
            ),
        ));
    }
    if &input[len..len + 2] != b"\r\n" {
        return Err(Error::invalid(
            "line length",
            format!("{record} line is not {len} characters + CR LF"),
        ));
    }
    Ok((
        Line {
            record,
            bytes: &input[..len],
        },
        &input[len + 2..],
    ))
}

/// Appends a read line (with CR LF). The record must be valid.
pub fn emit_read(r: &ReadRecord, out: &mut Vec<u8>) -> Result<()> {
    r.validate()?;
    out.push(b'R');
    zero(out, u64::from(r.seq), 10);
    left(out, &r.route_id, 10);
    left(out, &r.meter_id, 12);
    match r.reading {
        Some(v) => zero(out, v, 10),
        None => left(out, "", 10),
    }
    let t = &r.taken_at;
    out.extend_from_slice(
        format!(
            "{:02}{:02}{:04}{:02}{:02}{:02}",
            t.month, t.day, t.year, t.hour, t.minute, t.second
        )
        .as_bytes(),
    );
    out.push(r.read_type.code());
    out.push(r.verified.code());
    left(out, r.skip_code.as_deref().unwrap_or(""), 4);
    left(out, r.trouble_codes.first().map_or("", String::as_str), 4);
    left(out, r.trouble_codes.get(1).map_or("", String::as_str), 4);
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Parses one read line; returns the record and the rest of the input.
pub fn parse_read(input: &[u8]) -> Result<(ReadRecord, &[u8])> {
    let (l, rest) = take_line(input, "read", b'R', READ_LINE_LEN)?;
    let seq = l.number("read sequence", 2, 10)?;
    let seq = u32::try_from(seq).map_err(|_| l.err("read sequence", 2, format!("{seq} exceeds 32 bits")))?;
    let reading = if l.raw(34, 10) == b"          " {
        None
    } else {
        Some(l.number("reading", 34, 10)?)
    };
    let month = l.number("read date", 44, 2)? as u8;
    let day = l.number("read date", 46, 2)? as u8;
    let year = l.number("read date", 48, 4)? as u16;
    let hour = l.number("read time", 52, 2)? as u8;
    let minute = l.number("read time", 54, 2)? as u8;
    let second = l.number("read time", 56, 2)? as u8;
    let taken_at = ReadTime::new(year, month, day, hour, minute, second).map_err(|e| l.err("read date", 44, e))?;
    let read_type = ReadType::from_code(l.raw(58, 1)[0]).map_err(|e| l.err("read type", 58, e))?;
    let verified = Verified::from_code(l.raw(59, 1)[0]).map_err(|e| l.err("verified flag", 59, e))?;
    let skip_code = l.code("skip code", 60)?;
    let t1 = l.code("trouble code", 64)?;
    let t2 = l.code("trouble code", 68)?;
    if t1.is_none() && t2.is_some() {
        return Err(l.err("trouble code", 64, "trouble code 2 without trouble code 1"));
    }
    let record = ReadRecord {
        seq,
        route_id: l.text("route id", 12, 10)?,
        meter_id: l.text("meter id", 22, 12)?,
        reading,
        taken_at,
        read_type,
        verified,
        skip_code,
        trouble_codes: t1.into_iter().chain(t2).collect(),
    };
    record.validate()?;
    Ok((record, rest))
}

/// Appends a route meter line (with CR LF). The meter must be valid.
pub fn emit_meter(m: &RouteMeter, out: &mut Vec<u8>) -> Result<()> {
    m.validate()?;
    out.push(b'M');
    zero(out, u64::from(m.sequence), 6);
    left(out, &m.address, 20);
    left(out, &m.meter_id, 12);
    left(out, &m.account, 15);
    left(out, &m.customer, 25);
    out.push(m.service as u8);
    zero(out, m.previous_read, 10);
    zero(out, m.low_limit, 10);
    zero(out, m.high_limit, 10);
    zero(out, u64::from(m.dials), 2);
    left(out, &m.location, 30);
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Parses one route meter line; returns the meter and the rest of the input.
pub fn parse_meter(input: &[u8]) -> Result<(RouteMeter, &[u8])> {
    let (l, rest) = take_line(input, "route meter", b'M', ROUTE_LINE_LEN)?;
    let meter = RouteMeter {
        sequence: l.number("walk sequence", 2, 6)? as u32,
        address: l.text("service address", 8, 20)?,
        meter_id: l.text("meter id", 28, 12)?,
        account: l.text("account", 40, 15)?,
        customer: l.text("customer name", 55, 25)?,
        service: l.raw(80, 1)[0] as char,
        previous_read: l.number("previous read", 81, 10)?,
        low_limit: l.number("low limit", 91, 10)?,
        high_limit: l.number("high limit", 101, 10)?,
        dials: l.number("dials", 111, 2)? as u8,
        location: l.text("location note", 113, 30)?,
    };
    meter.validate()?;
    Ok((meter, rest))
}

/// Appends a trouble-code line (with CR LF).
pub fn emit_code(c: &TroubleCode, out: &mut Vec<u8>) -> Result<()> {
    c.validate()?;
    out.push(b'T');
    left(out, &c.code, 4);
    left(out, &c.text, 30);
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Parses one trouble-code line.
pub fn parse_code(input: &[u8]) -> Result<(TroubleCode, &[u8])> {
    let (l, rest) = take_line(input, "trouble code", b'T', CODE_LINE_LEN)?;
    let code = l
        .code("trouble code", 2)?
        .ok_or_else(|| l.err("trouble code", 2, "blank"))?;
    let c = TroubleCode {
        code,
        text: l.text("trouble code text", 6, 30)?,
    };
    c.validate()?;
    Ok((c, rest))
}

#[cfg(test)]
mod tests {
    use super::super::record::strategies;
    use super::*;
    use proptest::prelude::*;

    fn sample_read() -> ReadRecord {
        ReadRecord {
            seq: 42,
            route_id: "R017".into(),
            meter_id: "60012345".into(),
            reading: Some(1234),
            taken_at: ReadTime::new(2026, 11, 21, 14, 5, 9).unwrap(),
            read_type: ReadType::Keyed,
            verified: Verified::High,
            skip_code: None,
            trouble_codes: vec!["LK".into()],
        }
    }

    #[test]
    fn read_line_has_the_documented_columns() {
        let mut out = Vec::new();
        emit_read(&sample_read(), &mut out).unwrap();
        let line = std::str::from_utf8(&out).unwrap();
        assert_eq!(
            line,
            "R0000000042R017      60012345    000000123411212026140509KH    LK      \r\n"
        );
        assert_eq!(line.len(), READ_LINE_LEN + 2);
    }

    #[test]
    fn errors_name_field_and_column() {
        let mut out = Vec::new();
        emit_read(&sample_read(), &mut out).unwrap();
        out[43] = b'X'; // first column of the read date
        let err = parse_read(&out).unwrap_err().to_string();
        assert!(err.contains("read date") && err.contains("column 44"), "{err}");
        let mut bad_month = Vec::new();
        emit_read(&sample_read(), &mut bad_month).unwrap();
        bad_month[43] = b'1';
        bad_month[44] = b'3';
        assert!(parse_read(&bad_month).unwrap_err().to_string().contains("not a date"));
    }

    proptest! {
        #[test]
        fn read_parse_emit_reparse(r in strategies::read_record()) {
            let mut out = Vec::new();
            emit_read(&r, &mut out).unwrap();
            prop_assert_eq!(out.len(), READ_LINE_LEN + 2);
            let (back, rest) = parse_read(&out).unwrap();
            prop_assert!(rest.is_empty());
            prop_assert_eq!(&back, &r);
            let mut again = Vec::new();
            emit_read(&back, &mut again).unwrap();
            prop_assert_eq!(again, out);
        }

        #[test]
        fn meter_parse_emit_reparse(m in strategies::route_meter()) {
            let mut out = Vec::new();
            emit_meter(&m, &mut out).unwrap();
            prop_assert_eq!(out.len(), ROUTE_LINE_LEN + 2);
            let (back, _) = parse_meter(&out).unwrap();
            prop_assert_eq!(&back, &m);
        }

        #[test]
        fn code_parse_emit_reparse(c in strategies::trouble_code()) {
            let mut out = Vec::new();
            emit_code(&c, &mut out).unwrap();
            let (back, _) = parse_code(&out).unwrap();
            prop_assert_eq!(back, c);
        }

        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_read(&bytes);
            let _ = parse_meter(&bytes);
            let _ = parse_code(&bytes);
        }
    }
}
