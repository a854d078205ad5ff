//! CMEP (California Metering Exchange Protocol) `MEPMD01` records: metering data, one
//! context-free comma-separated line per record (CMEP v1.20, March 2000; its record formats are quoted in
//! craignicholson/cmepparser `recordformats/README.md`).
//!
//! Rules kept here, from CMEP v1.20: lines end in CR LF and hold at most 2048 characters; a
//! field holds at most 256 characters and is quoted when it contains a comma; leading and
//! trailing blanks are stripped; times are UTC `CCYYMMDDHHMM` and mark the end of an interval;
//! a record carries `Count` (≤ 48) triplets of (date/time, flag, value) and so has exactly
//! `14 + 3 × Count` fields. A date/time left empty after the first triplet is the previous one
//! plus `Interval`; [`Mepmd01::times`] fills them in.
//!
//! [`interval`] turns a channel's interval values into records with interval units and back.

use jiff::Timestamp;
use jiff::civil::DateTime;

use crate::error::{Error, Result};

pub mod interval;

pub use interval::{
    IntervalFlag, IntervalValue, interval_field, interval_records, interval_values, is_interval_units,
    is_register_units,
};

/// The record type tag.
pub const MEPMD01: &str = "MEPMD01";
/// Record version of CMEP v1.20.
pub const VERSION_1_20: &str = "19970819";
/// Most characters per line.
pub const MAX_LINE: usize = 2048;
/// Most characters per field.
pub const MAX_FIELD: usize = 256;
/// Most triplets per record.
pub const MAX_TRIPLETS: usize = 48;

/// One (date/time, flag, value) triplet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Triplet {
    /// End of the interval (or the register read time), UTC `CCYYMMDDHHMM`; `None` when left
    /// empty for the reader to compute from the interval.
    pub at: Option<String>,
    /// Empty = validated, `E` estimated, `A` adjusted, `N` no value, `R` raw (vendors add a
    /// second character, e.g. Sensus `R0`).
    pub flag: String,
    /// The value, as text (decimal, or `H` + hex).
    pub value: String,
}

/// A `MEPMD01` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mepmd01 {
    pub version: String,
    pub sender_id: String,
    pub sender_customer_id: String,
    pub receiver_id: String,
    pub receiver_customer_id: String,
    /// Record creation time, UTC `CCYYMMDDHHMM`.
    pub created: String,
    pub meter_id: String,
    /// `OK`, `RESEND`, `SUMMARY`, `HISTORY`, `PROFILE`, `TEMPLATE`, `REJECT`.
    pub purpose: String,
    /// `E`, `G`, `W`, `S`.
    pub commodity: String,
    /// `KWHREG`, `GALREG`, `CFREG`, ...
    pub units: String,
    /// Calculation constant (multiplier to engineering units).
    pub constant: String,
    /// `MMDDHHMM`.
    pub interval: String,
    pub triplets: Vec<Triplet>,
}

/// CMEP date/time text (`CCYYMMDDHHMM`, UTC) of a timestamp; seconds are dropped.
pub fn datetime(t: Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::UTC).strftime("%Y%m%d%H%M").to_string()
}

/// Parse CMEP date/time text (UTC).
pub fn parse_datetime(text: &str) -> Result<Timestamp> {
    if text.len() != 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid("date/time", format!("{text:?} is not CCYYMMDDHHMM")));
    }
    let dt =
        DateTime::strptime("%Y%m%d%H%M", text).map_err(|e| Error::invalid("date/time", format!("{text:?}: {e}")))?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| Error::invalid("date/time", e.to_string()))
}

/// Parse an interval `MMDDHHMM` into minutes (months are not a fixed length and are refused).
pub fn interval_minutes(text: &str) -> Result<i64> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid("interval", format!("{text:?} is not MMDDHHMM")));
    }
    let n = |r: std::ops::Range<usize>| text[r].parse::<i64>().unwrap_or(0);
    if n(0..2) != 0 {
        return Err(Error::invalid(
            "interval",
            format!("{text:?}: month intervals are not supported"),
        ));
    }
    Ok(n(2..4) * 1440 + n(4..6) * 60 + n(6..8))
}

fn quote(field: &str, out: &mut String) {
    if field.contains(',') || field.contains('"') {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// Split a record into fields: commas separate, `"..."` quotes a field containing commas
/// (`""` inside is a quote), blanks around a field are stripped.
fn split(line: &str) -> Result<Vec<String>> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => {
                        return Err(Error::invalid(
                            "field",
                            format!("field {} has an unterminated quote", fields.len() + 1),
                        ));
                    }
                }
            }
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            match chars.peek() {
                None | Some(',') => {}
                Some(c) => {
                    return Err(Error::invalid(
                        "field",
                        format!("field {}: {c:?} after a closing quote", fields.len() + 1),
                    ));
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                field.push(c);
                chars.next();
            }
            field.truncate(field.trim_end().len());
        }
        if field.chars().count() > MAX_FIELD {
            return Err(Error::invalid(
                "field",
                format!("field {} is longer than {MAX_FIELD} characters", fields.len() + 1),
            ));
        }
        fields.push(field);
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

impl Mepmd01 {
    /// The record as one line, without the line ending.
    pub fn encode(&self) -> Result<String> {
        if self.triplets.len() > MAX_TRIPLETS {
            return Err(Error::invalid(
                "count",
                format!(
                    "{} triplets, a record holds at most {MAX_TRIPLETS}",
                    self.triplets.len()
                ),
            ));
        }
        let count = self.triplets.len().to_string();
        let head = [
            MEPMD01,
            &self.version,
            &self.sender_id,
            &self.sender_customer_id,
            &self.receiver_id,
            &self.receiver_customer_id,
            &self.created,
            &self.meter_id,
            &self.purpose,
            &self.commodity,
            &self.units,
            &self.constant,
            &self.interval,
            &count,
        ];
        let mut out = String::with_capacity(128 + 32 * self.triplets.len());
        let tail = self
            .triplets
            .iter()
            .flat_map(|t| [t.at.as_deref().unwrap_or(""), &t.flag, &t.value]);
        for (i, f) in head.into_iter().chain(tail).enumerate() {
            if f.chars().count() > MAX_FIELD {
                return Err(Error::invalid(
                    "field",
                    format!("field {} is longer than {MAX_FIELD} characters", i + 1),
                ));
            }
            if i > 0 {
                out.push(',');
            }
            quote(f, &mut out);
        }
        if out.len() > MAX_LINE {
            return Err(Error::invalid(
                "record",
                format!("{} characters, a record holds at most {MAX_LINE}", out.len()),
            ));
        }
        Ok(out)
    }

    /// Parse one record (a line without its line ending).
    pub fn parse(line: &str) -> Result<Self> {
        if line.len() > MAX_LINE {
            return Err(Error::invalid(
                "record",
                format!("{} characters, a record holds at most {MAX_LINE}", line.len()),
            ));
        }
        let f = split(line)?;
        if f.first().map(String::as_str) != Some(MEPMD01) {
            return Err(Error::invalid(
                "record type",
                format!("{:?} is not {MEPMD01}", f.first().map(String::as_str).unwrap_or("")),
            ));
        }
        if f.len() < 14 {
            return Err(Error::invalid(
                "record",
                format!("{} fields, a {MEPMD01} record has at least 14", f.len()),
            ));
        }
        let count: usize = f[13]
            .parse()
            .map_err(|_| Error::invalid("count", format!("{:?} is not a number", f[13])))?;
        if count > MAX_TRIPLETS {
            return Err(Error::invalid(
                "count",
                format!("{count} triplets, a record holds at most {MAX_TRIPLETS}"),
            ));
        }
        if f.len() != 14 + 3 * count {
            return Err(Error::invalid(
                "count",
                format!(
                    "count {count} needs {} fields, the record has {}",
                    14 + 3 * count,
                    f.len()
                ),
            ));
        }
        if !f[6].is_empty() {
            parse_datetime(&f[6])?;
        }
        let mut triplets = Vec::with_capacity(count);
        for (i, t) in f[14..].chunks(3).enumerate() {
            let at = if t[0].is_empty() { None } else { Some(t[0].clone()) };
            match &at {
                Some(at) => {
                    parse_datetime(at).map_err(|e| Error::invalid("triplet", format!("triplet {}: {e}", i + 1)))?;
                }
                None if i == 0 => return Err(Error::invalid("triplet", "triplet 1 has no date/time")),
                None => {}
            }
            triplets.push(Triplet {
                at,
                flag: t[1].clone(),
                value: t[2].clone(),
            });
        }
        let mut it = f.into_iter().skip(1);
        let mut next = || it.next().unwrap_or_default();
        Ok(Mepmd01 {
            version: next(),
            sender_id: next(),
            sender_customer_id: next(),
            receiver_id: next(),
            receiver_customer_id: next(),
            created: next(),
            meter_id: next(),
            purpose: next(),
            commodity: next(),
            units: next(),
            constant: next(),
            interval: next(),
            triplets,
        })
    }

    /// Each triplet's time, empty ones computed from the previous one plus the interval.
    pub fn times(&self) -> Result<Vec<Timestamp>> {
        let mut out: Vec<Timestamp> = Vec::with_capacity(self.triplets.len());
        for t in &self.triplets {
            let at = match (&t.at, out.last()) {
                (Some(at), _) => parse_datetime(at)?,
                (None, Some(prev)) => {
                    let minutes = interval_minutes(&self.interval)?;
                    prev.checked_add(jiff::SignedDuration::from_mins(minutes))
                        .map_err(|e| Error::invalid("interval", e.to_string()))?
                }
                (None, None) => return Err(Error::invalid("triplet", "triplet 1 has no date/time")),
            };
            out.push(at);
        }
        Ok(out)
    }
}

/// Parse a CMEP file: every non-blank line a `MEPMD01` record. Errors name the line.
pub fn parse_file(text: &str) -> Result<Vec<Mepmd01>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            Mepmd01::parse(l.trim_end_matches('\r')).map_err(|e| Error::invalid("line", format!("line {}: {e}", n + 1)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// First record of a Sensus CMEP file (craignicholson/cmepparser `cmep.dat`, first record).
    const SENSUS: &str = "MEPMD01,20080501,SENSUS,SPS:130000,15173624,B72842123,201109211458,,OK,W,GALREG,1.0,00000100,25,201109200002,R0,36318,201109200102,R0,36328,201109200202,R0,36328,201109200302,R0,36338,201109200402,R0,36338,201109200502,R0,36338,201109200602,R0,36348,201109200702,R0,36356,201109200802,R0,36356,201109200902,R0,36386,201109201002,R0,36386,201109201102,R0,36396,201109201202,R0,36406,201109201302,R0,36416,201109201402,R0,36416,201109201502,R0,36418,201109201602,R0,36428,201109201702,R0,36438,201109201802,R0,36458,201109201902,R0,36501,201109202002,R0,36501,201109202102,R0,36511,201109202202,R0,36511,201109202302,R0,36512,201109210002,R0,36512";

    #[test]
    fn sensus_record_parses_and_reencodes_exactly() {
        let r = Mepmd01::parse(SENSUS).unwrap();
        assert_eq!(r.receiver_id, "15173624");
        assert_eq!(r.meter_id, "");
        assert_eq!(r.units, "GALREG");
        assert_eq!(r.triplets.len(), 25);
        assert_eq!(r.triplets[24].value, "36512");
        assert_eq!(r.triplets[0].flag, "R0");
        assert_eq!(r.encode().unwrap(), SENSUS);
        let times = r.times().unwrap();
        assert_eq!(times[1].to_string(), "2011-09-20T01:02:00Z");
    }

    #[test]
    fn empty_times_are_filled_from_the_interval() {
        let r =
            Mepmd01::parse("MEPMD01,19970819,A,,B,,201101010000,M1,OK,E,KWH,1,00000015,3,201101010015,,1.5,,,2,,E,2.5")
                .unwrap();
        let t = r.times().unwrap();
        assert_eq!(t[2].to_string(), "2011-01-01T00:45:00Z");
        assert_eq!(r.triplets[2].flag, "E");
    }

    #[test]
    fn quoted_fields_round_trip() {
        let mut r = Mepmd01::parse(SENSUS).unwrap();
        r.sender_customer_id = "ACME, \"Water\" Dept".into();
        let line = r.encode().unwrap();
        assert!(line.contains("\"ACME, \"\"Water\"\" Dept\""), "{line}");
        assert_eq!(Mepmd01::parse(&line).unwrap(), r);
    }

    #[test]
    fn bad_records_name_the_problem() {
        let e =
            Mepmd01::parse("MEPMD01,1,2,3,4,5,201101010000,M,OK,W,GALREG,1,00000100,2,201101010000,,1").unwrap_err();
        assert!(e.to_string().contains("count 2 needs 20 fields"), "{e}");
        let e = Mepmd01::parse("MEPMD02,1").unwrap_err();
        assert!(e.to_string().contains("is not MEPMD01"), "{e}");
        let e = Mepmd01::parse("MEPMD01,1,2,3,4,5,2011010100,M,OK,W,GALREG,1,00000100,0").unwrap_err();
        assert!(e.to_string().contains("CCYYMMDDHHMM"), "{e}");
        let e = parse_file("\r\nMEPMD01,x\r\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = Mepmd01::parse("MEPMD01,\"open").unwrap_err();
        assert!(e.to_string().contains("unterminated"), "{e}");
    }

    #[test]
    fn datetime_is_utc_minutes() {
        let t: Timestamp = "2026-03-29T01:30:59Z".parse().unwrap();
        assert_eq!(datetime(t), "202603290130");
        assert_eq!(
            parse_datetime("202603290130").unwrap().to_string(),
            "2026-03-29T01:30:00Z"
        );
    }
}
