//! Data sets `address(value*unit)` as carried by IEC 62056-21 data blocks and DSMR telegrams,
//! and what they mean as readings (quantity, exact numeric value, timestamps).
//!
//! A line may hold several data sets (`3:14(314*kWh)4:15(415*kWh)`), a data set several values
//! (`0-1:24.2.1(170102161005W)(00000.107*m3)`), and a line of bare `(value)` groups continues the
//! previous data set (the DSMR 2.2 gas reading on the line after `0-1:24.3.0`).

use nom::bytes::complete::{tag, take_while, take_while1};
use nom::combinator::opt;
use nom::multi::many1;
use nom::sequence::delimited;
use nom::{IResult, Parser};
use serde_json::{Number, Value};

use crate::decoded::Reading;
use crate::error::{Error, Result};

/// One data set: the address as written and its value groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSet {
    pub address: String,
    pub values: Vec<DataValue>,
}

/// One `(value*unit)` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataValue {
    pub value: String,
    pub unit: Option<String>,
}

impl DataValue {
    pub fn new(value: impl Into<String>, unit: Option<&str>) -> Self {
        DataValue {
            value: value.into(),
            unit: unit.map(str::to_owned),
        }
    }
}

fn address(i: &[u8]) -> IResult<&[u8], &[u8]> {
    take_while(|b: u8| b != b'(' && b != b')' && b != b'\r' && b != b'\n').parse(i)
}

fn group(i: &[u8]) -> IResult<&[u8], DataValue> {
    let (i, body) = delimited(
        tag(&b"("[..]),
        take_while(|b: u8| b != b'(' && b != b')'),
        tag(&b")"[..]),
    )
    .parse(i)?;
    let (value, unit) = match body.iter().position(|&b| b == b'*') {
        Some(p) => (&body[..p], Some(&body[p + 1..]).filter(|u| !u.is_empty())),
        None => (body, None),
    };
    Ok((
        i,
        DataValue {
            value: text(value),
            unit: unit.map(text),
        },
    ))
}

fn data_set(i: &[u8]) -> IResult<&[u8], (&[u8], Vec<DataValue>)> {
    (address, many1(group)).parse(i)
}

/// Parses the data sets of one line (without its CR LF). Bare groups at the start are returned
/// with an empty address for the caller to append to the previous data set.
pub fn parse_line(line: &[u8]) -> Result<Vec<DataSet>> {
    let mut sets = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        let (r, (addr, values)) = data_set(rest).map_err(|_| {
            let at = line.len() - rest.len();
            Error::invalid(
                "data set",
                format!("cannot parse {:?} at column {}", text(rest), at + 1),
            )
        })?;
        let addr = text(addr);
        if addr.len() > 32 || addr.contains(['/', '!']) {
            return Err(Error::invalid("data set", format!("bad address {addr:?}")));
        }
        sets.push(DataSet {
            address: addr.trim().to_owned(),
            values,
        });
        // Some meters pad between data sets with spaces.
        let (r, _) = opt(take_while1::<_, _, nom::error::Error<&[u8]>>(|b: u8| b == b' '))
            .parse(r)
            .unwrap_or((r, None));
        rest = r;
    }
    Ok(sets)
}

/// Parses a block of data lines (CR LF or bare LF separated). Stops at the `!` end line.
/// Errors name the 1-based line within the block.
pub fn parse_lines(block: &[u8]) -> Result<Vec<DataSet>> {
    let mut sets: Vec<DataSet> = Vec::new();
    for (n, line) in block.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == b"!" {
            break;
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let parsed = parse_line(line).map_err(|e| match e {
            Error::Invalid { field, detail } => Error::invalid(field, format!("line {}: {detail}", n + 1)),
            e => e,
        })?;
        for set in parsed {
            match sets.last_mut() {
                Some(prev) if set.address.is_empty() => prev.values.extend(set.values),
                _ => sets.push(set),
            }
        }
    }
    Ok(sets)
}

/// Writes data sets one per line, each line ending CR LF.
pub fn emit_lines(sets: &[DataSet]) -> Vec<u8> {
    let mut out = Vec::new();
    for set in sets {
        out.extend_from_slice(set.address.as_bytes());
        for v in &set.values {
            out.push(b'(');
            out.extend_from_slice(v.value.as_bytes());
            if let Some(unit) = &v.unit {
                out.push(b'*');
                out.extend_from_slice(unit.as_bytes());
            }
            out.push(b')');
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// ---------------------------------------------------------------------------------------------
// OBIS addresses and what they mean

/// An address split the OBIS way `A-B:C.D.E*F`; absent parts are `None`. C may be a letter
/// (`C.1.0`, `F.F`), so parts are kept as text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Obis<'a> {
    pub a: Option<&'a str>,
    pub b: Option<&'a str>,
    pub c: &'a str,
    pub d: Option<&'a str>,
    pub e: Option<&'a str>,
}

impl<'a> Obis<'a> {
    pub fn parse(address: &'a str) -> Obis<'a> {
        let core = address.split(['*', '&']).next().unwrap_or(address);
        let (ab, cde) = match core.split_once(':') {
            Some((ab, cde)) => (Some(ab), cde),
            None => (None, core),
        };
        let (a, b) = match ab.map(|ab| ab.split_once('-')) {
            Some(Some((a, b))) => (Some(a), Some(b)),
            Some(None) => (ab, None),
            None => (None, None),
        };
        let mut parts = cde.splitn(3, '.');
        Obis {
            a,
            b,
            c: parts.next().unwrap_or(""),
            d: parts.next(),
            e: parts.next(),
        }
    }

    /// True when `C.D.E` (or as much of it as is written) equals `reduced`, e.g. `"96.1.1"`.
    pub fn is(&self, reduced: &str) -> bool {
        let mut want = reduced.split('.');
        want.next() == Some(self.c) && want.next() == self.d && want.next() == self.e && want.next().is_none()
    }

    /// `C.D.E` (or as much of it as is written).
    pub fn reduced(&self) -> String {
        let mut s = self.c.to_owned();
        for p in [self.d, self.e].into_iter().flatten() {
            s.push('.');
            s.push_str(p);
        }
        s
    }
}

/// How a data set's value is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A number when it looks like one, else the text.
    Number,
    /// Always text (serial numbers keep their leading zeros).
    Text,
    /// Text sent as hex-encoded ASCII when it decodes to printable text (DSMR ids, messages).
    HexText,
    /// A DSMR timestamp `YYMMDDhhmmss[SW]`, turned into RFC 3339 UTC.
    Timestamp,
}

/// The quantity name and value kind for an address, with the unit as a fallback hint.
pub fn classify(address: &str, unit: Option<&str>) -> (&'static str, ValueKind) {
    use ValueKind::*;
    let o = Obis::parse(address);
    let (c, d, e) = (o.c, o.d.unwrap_or(""), o.e.unwrap_or(""));
    let medium_gas_or_water = o.a == Some("0") && o.b.is_some_and(|b| b != "0");
    match (c, d, e) {
        ("C", "1", _) | ("0", "0", _) => return ("serial_number", Text),
        ("96", "1", _) => return ("equipment_id", HexText),
        ("F", "F", _) => return ("error_register", Text),
        ("C", "5", _) => return ("status", Text),
        ("0", "9", "1") => return ("time", Text),
        ("0", "9", "2") => return ("date", Text),
        ("0", "2", "8") => return ("version", Text),
        ("1", "0", "0") if o.a == Some("0") => return ("date_time", Timestamp),
        ("96", "13", _) => return ("text_message", HexText),
        ("96", "14", _) => return ("tariff_indicator", Number),
        ("96", "7", "21") => return ("power_failures", Number),
        ("96", "7", "9") => return ("long_power_failures", Number),
        ("96", "3", "10") => return ("breaker_state", Number),
        ("17", "0", "0") => return ("power_limit", Number),
        ("24", "1", _) => return ("device_type", Number),
        ("24", "2" | "3", _) if medium_gas_or_water => {
            return (
                if unit.is_some_and(|u| u.eq_ignore_ascii_case("GJ")) {
                    "energy"
                } else {
                    "volume"
                },
                Number,
            );
        }
        (_, "32", _) => return ("voltage_sags", Number),
        (_, "36", _) => return ("voltage_swells", Number),
        // C above 80 is abstract or service data (96 = general service), not a quantity.
        (_, "8", _) if electrical_c(c).is_some() && !medium_gas_or_water => return ("energy", Number),
        (_, "4" | "5" | "6" | "7", _) if !medium_gas_or_water => {
            if let Some(q) = electrical_quantity(c) {
                return (q, Number);
            }
        }
        _ => {}
    }
    let q = match unit.unwrap_or("") {
        u if [
            "kWh", "Wh", "MWh", "varh", "kvarh", "VAh", "kVAh", "GJ", "MJ", "J", "kJ",
        ]
        .iter()
        .any(|x| x.eq_ignore_ascii_case(u)) =>
        {
            "energy"
        }
        u if ["kW", "W", "MW", "var", "kvar", "VA", "kVA"]
            .iter()
            .any(|x| x.eq_ignore_ascii_case(u)) =>
        {
            "power"
        }
        "V" => "voltage",
        "A" => "current",
        u if u.eq_ignore_ascii_case("m3") => "volume",
        u if u.eq_ignore_ascii_case("m3/h") => "volume_flow",
        "Hz" => "frequency",
        "s" => "duration",
        _ => "value",
    };
    (q, Number)
}

/// C (quantity) of an electricity OBIS code with D = instantaneous/average/maximum.
fn electrical_quantity(c: &str) -> Option<&'static str> {
    Some(match electrical_c(c)? % 20 {
        11 => "current",
        12 => "voltage",
        13 => "power_factor",
        14 => "frequency",
        1..=10 | 15..=19 => "power",
        _ => return None,
    })
}

/// C of an electricity quantity (1..=80), if `c` is one.
fn electrical_c(c: &str) -> Option<u32> {
    c.parse().ok().filter(|c| (1..=80).contains(c))
}

/// The function of a register (M-Bus vocabulary): `maximum` for maximum demand (D = 6).
pub fn function(address: &str) -> Option<&'static str> {
    let o = Obis::parse(address);
    (o.d == Some("6") && electrical_c(o.c).is_some()).then_some("maximum")
}

/// An exact JSON number for a decimal written by a meter, or `None` when it is not a plain
/// decimal or has more digits than a double keeps exactly (it then stays text).
pub fn number(s: &str) -> Option<Value> {
    let s = s.trim();
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !frac.is_none_or(all_digits) || (int.is_empty() && frac.is_none_or(str::is_empty)) {
        return None;
    }
    match frac {
        None | Some("") => {
            let int = int.trim_start_matches('0');
            let int = if int.is_empty() { "0" } else { int };
            let n: u64 = int.parse().ok()?;
            if neg {
                Some(Value::Number(Number::from(0i64.checked_sub_unsigned(n)?)))
            } else {
                Some(Value::Number(Number::from(n)))
            }
        }
        Some(f) => {
            // Significant digits: a double round-trips any decimal of up to 15 of them, and
            // serde_json prints the shortest form that round-trips, so no float noise appears.
            let int_sig = int.trim_start_matches('0');
            let sig = if int_sig.is_empty() {
                f.trim_start_matches('0').len()
            } else {
                int_sig.len() + f.len()
            };
            if sig > 15 {
                return None;
            }
            let v: f64 = s.parse().ok()?; // checked above to be a plain decimal
            if v.fract() == 0.0 && v.abs() < 1e15 {
                // `000000.000` is the integer 0; keep integers integral in JSON.
                return Some(Value::Number(Number::from(v as i64)));
            }
            Number::from_f64(v).map(Value::Number)
        }
    }
}

/// Hex-encoded ASCII (`4B38...` → `K8...`) when every decoded byte is printable, else `None`.
pub fn hex_text(s: &str) -> Option<String> {
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes = hex::decode(s).ok()?;
    bytes
        .iter()
        .all(|b| (0x20..0x7F).contains(b))
        .then(|| bytes.into_iter().map(char::from).collect())
}

/// A DSMR timestamp `YYMMDDhhmmss` with `W` (winter, UTC+1) or `S` (summer, UTC+2) as RFC 3339
/// UTC. Without the suffix (DSMR 2.2/3) Dutch time is assumed and the EU daylight-saving rule
/// decides; the repeated October hour is taken as summer time.
pub fn timestamp(s: &str) -> Option<String> {
    let (digits, suffix) = match s.len() {
        // `get`: byte 12 may fall inside a multi-byte character of a damaged telegram.
        13 => (s.get(..12)?, Some(s.as_bytes()[12])),
        12 => (s, None),
        _ => return None,
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let f = |r: std::ops::Range<usize>| digits[r].parse::<i64>().unwrap_or(0);
    let (y, mo, d, h, mi, se) = (2000 + f(0..2), f(2..4), f(4..6), f(6..8), f(8..10), f(10..12));
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let local = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se;
    let offset_h = match suffix {
        Some(b'W') => 1,
        Some(b'S') => 2,
        None => {
            if eu_summer_time(y, local - 3600) || eu_summer_time(y, local - 7200) {
                2
            } else {
                1
            }
        }
        Some(_) => return None,
    };
    let utc = local - offset_h * 3600;
    let (days, secs) = (utc.div_euclid(86_400), utc.rem_euclid(86_400));
    let (y, mo, d) = civil_from_days(days);
    Some(format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ))
}

/// EU summer time runs from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last
/// Sunday of October.
fn eu_summer_time(y: i64, utc_secs: i64) -> bool {
    let last_sunday = |m: i64| {
        let last = days_from_civil(y, m, 31);
        last - (last + 4).rem_euclid(7) // 1970-01-01 was a Thursday (weekday 4, Sunday = 0)
    };
    let start = last_sunday(3) * 86_400 + 3600;
    let end = last_sunday(10) * 86_400 + 3600;
    (start..end).contains(&utc_secs)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil-date algorithms (public domain).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

// ---------------------------------------------------------------------------------------------
// Data sets → readings

/// Splits a unit some meters put inside the value (Iskra MT171 `0000000 kWh`).
fn value_and_unit(v: &DataValue) -> (&str, Option<&str>) {
    if v.unit.is_none()
        && let Some((num, unit)) = v.value.trim().split_once(' ')
        && number(num).is_some()
        && !unit.is_empty()
        && unit.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'/')
    {
        return (num, Some(unit));
    }
    (&v.value, v.unit.as_deref())
}

/// The JSON value of a data value of the given kind.
pub fn value_of(kind: ValueKind, raw: &str) -> Value {
    match kind {
        ValueKind::Number => number(raw).unwrap_or_else(|| Value::String(raw.to_owned())),
        ValueKind::Text => Value::String(raw.to_owned()),
        ValueKind::HexText => Value::String(hex_text(raw).unwrap_or_else(|| raw.to_owned())),
        ValueKind::Timestamp => Value::String(timestamp(raw).unwrap_or_else(|| raw.to_owned())),
    }
}

fn reading(set: &DataSet, v: &DataValue) -> Reading {
    let (raw, unit) = value_and_unit(v);
    let (quantity, kind) = classify(&set.address, unit);
    let mut r = Reading::new(quantity, value_of(kind, raw), unit);
    r.obis = Some(set.address.clone());
    r.function = function(&set.address).map(std::borrow::Cow::Borrowed);
    r
}

/// Readings of a data set. Usually one; the DSMR multi-value objects are read by their layout:
/// gas/water `(timestamp)(value*unit)`, DSMR 2.2 gas `(ts)(..)(..)(..)(obis)(unit)(value)`, and the
/// power failure event log `1-0:99.97.0(n)(0-0:96.7.19)(end)(duration*s)...` (one reading per
/// event, at the end of the failure).
pub fn readings(set: &DataSet) -> Vec<Reading> {
    let o = Obis::parse(&set.address);
    let vals = &set.values;
    let stamp = |v: &DataValue| timestamp(&v.value);
    match (o.c, o.d.unwrap_or(""), o.e.unwrap_or("")) {
        ("99", "97", "0") => {
            return vals
                .iter()
                .skip(2)
                .collect::<Vec<_>>()
                .chunks_exact(2)
                .map(|pair| {
                    let mut r = reading(set, pair[1]);
                    r.quantity = "power_failure".into();
                    r.at = stamp(pair[0]);
                    r
                })
                .collect();
        }
        ("24", "3", "0") if vals.len() >= 7 => {
            let mut v = vals[6].clone();
            v.unit = v.unit.or_else(|| Some(vals[5].value.clone()).filter(|u| !u.is_empty()));
            let mut r = reading(set, &v);
            r.at = stamp(&vals[0]);
            return vec![r];
        }
        _ => {}
    }
    if vals.len() == 2 && stamp(&vals[0]).is_some() && vals[1].unit.is_some() {
        let mut r = reading(set, &vals[1]);
        r.at = stamp(&vals[0]);
        return vec![r];
    }
    vals.iter()
        .enumerate()
        .map(|(i, v)| {
            let mut r = reading(set, v);
            // Extra groups after the value, such as the time of a maximum demand
            // `1.6.0(00.632*kW)(21-03-04 10:15)`, are the meter's local time, not the quantity.
            if i > 0 && v.unit.is_none() && number(&v.value).is_none() && looks_like_time(&v.value) {
                r.quantity = "date_time".into();
                r.function = None;
            }
            r
        })
        .collect()
}

fn looks_like_time(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit()) && s.bytes().all(|b| b.is_ascii_digit() || b" -:./".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn several_data_sets_per_line_and_values_per_set() {
        let three = parse_line(b"12(12*kWh)13(13*kWh)14(14*kwh)").unwrap();
        assert_eq!(three.len(), 3);
        assert_eq!(
            three[0],
            DataSet {
                address: "12".into(),
                values: vec![DataValue::new("12", Some("kWh"))]
            }
        );
        assert_eq!(
            parse_line(b"3.1.0(100)").unwrap()[0].values,
            vec![DataValue::new("100", None)]
        );
        assert!(parse_line(b"\"Tralalalala").is_err());
        let sets = parse_line(b"3:14(314*kWh)4:15(415*kWh)").unwrap();
        assert_eq!(sets.len(), 2);
        assert_eq!(
            sets[1],
            DataSet {
                address: "4:15".into(),
                values: vec![DataValue::new("415", Some("kWh"))]
            }
        );
        let gas = parse_line(b"0-1:24.2.1(170102161005W)(00000.107*m3)").unwrap();
        assert_eq!(gas[0].values.len(), 2);
        assert_eq!(
            parse_line(b"0-0:96.13.0()").unwrap()[0].values,
            vec![DataValue::new("", None)]
        );
        assert!(parse_line(b"1.8.0(12").is_err());
        assert!(parse_line(b"garbage").is_err());
    }

    #[test]
    fn continuation_lines_extend_the_previous_set() {
        let sets = parse_lines(b"0-1:24.3.0(161107190000)(00)(60)(1)(0-1:24.2.1)(m3)\r\n(00001.001)\r\n!\r\n").unwrap();
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].values.len(), 7);
        let r = readings(&sets[0]);
        assert_eq!(r[0].value, json!(1.001));
        assert_eq!(r[0].unit.as_deref(), Some("m3"));
        assert_eq!(r[0].quantity, "volume");
        // 2016-11-07 19:00 Dutch winter time.
        assert_eq!(r[0].at.as_deref(), Some("2016-11-07T18:00:00Z"));
        let err = parse_lines(b"1.8.0(1*kWh)\r\n1.8.1(2\r\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn numbers_are_exact() {
        assert_eq!(number("000065.3"), Some(json!(65.3)));
        assert_eq!(number("00043.8"), Some(json!(43.8)));
        assert_eq!(number("000000.000"), Some(json!(0)));
        assert_eq!(number("00052185.7825309").unwrap().to_string(), "52185.7825309");
        assert_eq!(number("0001"), Some(json!(1)));
        assert_eq!(number("-12.50").unwrap().to_string(), "-12.5");
        assert_eq!(number("2147583646"), Some(json!(2147583646u64)));
        assert_eq!(number("1234567890.1234567"), None);
        assert_eq!(number("4B38"), None);
        assert_eq!(number(""), None);
        assert_eq!(number("."), None);
        assert_eq!(number("1.2.3"), None);
        assert_eq!(number(".5"), Some(json!(0.5)));
        assert_eq!(number("+7.25"), Some(json!(7.25)));
        assert_eq!(number("1e5"), None);
        assert!(Obis::parse("1-3:0.2.8").is("0.2.8"));
        assert!(!Obis::parse("1-3:0.2.8").is("0.2"));
        assert!(Obis::parse("C.1.0").is("C.1.0"));
    }

    #[test]
    fn timestamps_become_utc() {
        assert_eq!(timestamp("170102192002W").as_deref(), Some("2017-01-02T18:20:02Z"));
        assert_eq!(timestamp("221006155014S").as_deref(), Some("2022-10-06T13:50:14Z"));
        assert_eq!(timestamp("000101000001W").as_deref(), Some("1999-12-31T23:00:01Z"));
        // Damaged: a multi-byte character across the suffix position is no timestamp, not a panic.
        assert_eq!(timestamp("1701021920\u{fffd}"), None);
        assert_eq!(timestamp("17010219200\u{e9}"), None);
        // Without suffix: the EU rule. 2023-03-26 is the switch day (02:00 local → 03:00).
        assert_eq!(timestamp("230326013000").as_deref(), Some("2023-03-26T00:30:00Z"));
        assert_eq!(timestamp("230326033000").as_deref(), Some("2023-03-26T01:30:00Z"));
        assert_eq!(timestamp("230701120000").as_deref(), Some("2023-07-01T10:00:00Z"));
        assert_eq!(timestamp("170230120000W"), None);
        assert_eq!(timestamp("170102192002X"), None);
    }

    #[test]
    fn quantities_follow_the_obis_code() {
        let q = |a: &str, u: Option<&str>| classify(a, u).0;
        assert_eq!(q("1.8.0", Some("kWh")), "energy");
        assert_eq!(q("1-0:2.8.1", Some("kWh")), "energy");
        assert_eq!(q("1-0:1.7.0", Some("kW")), "power");
        assert_eq!(q("1-0:32.7.0", Some("V")), "voltage");
        assert_eq!(q("1-0:71.7.0", Some("A")), "current");
        assert_eq!(q("1-0:21.7.0*255", Some("W")), "power");
        assert_eq!(q("0-1:24.2.1", Some("m3")), "volume");
        assert_eq!(q("C.1.0", None), "serial_number");
        assert_eq!(q("F.F", None), "error_register");
        assert_eq!(q("3:14", Some("kWh")), "energy");
        assert_eq!(q("3:171.0", None), "value");
        assert_eq!(function("1.6.0"), Some("maximum"));
        assert_eq!(function("0-0:96.6.1"), None);
        assert_eq!(q("0-0:96.8.0", Some("s")), "duration");
        assert_eq!(q("1-0:1.8.0*255", Some("kWh")), "energy");
        assert_eq!(
            hex_text("4B384547303034303436333935353037").as_deref(),
            Some("K8EG004046395507")
        );
        assert_eq!(hex_text("3960221976967177082151037881335713"), None);
    }

    #[test]
    fn time_of_a_maximum_is_not_a_power() {
        let set = &parse_line(b"1.6.0(00.632*kW)(21-03-04 10:15)").unwrap()[0];
        let r = readings(set);
        assert_eq!((&*r[0].quantity, r[0].function.as_deref()), ("power", Some("maximum")));
        assert_eq!(
            (&*r[1].quantity, r[1].value.clone()),
            ("date_time", json!("21-03-04 10:15"))
        );
    }

    #[test]
    fn unit_inside_the_value() {
        let set = &parse_line(b"1-0:1.8.1*255(0000000 kWh)").unwrap()[0];
        let r = readings(set);
        assert_eq!(
            (r[0].value.clone(), r[0].unit.as_deref(), &*r[0].quantity),
            (json!(0), Some("kWh"), "energy")
        );
    }

    #[test]
    fn power_failure_log_gives_one_reading_per_event() {
        let set = &parse_line(b"1-0:99.97.0(2)(0-0:96.7.19)(101208152415W)(0000000240*s)(101208151004W)(0000000301*s)")
            .unwrap()[0];
        let r = readings(set);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].quantity, "power_failure");
        assert_eq!(r[0].value, json!(240));
        assert_eq!(r[0].at.as_deref(), Some("2010-12-08T14:24:15Z"));
        assert_eq!(r[1].value, json!(301));
        let empty = &parse_line(b"1-0:99.97.0(0)(0-0:96.7.19)").unwrap()[0];
        assert!(readings(empty).is_empty());
    }
}
