//! `MEPMD01` records carrying interval data (CMEP v1.20; `interval-data.md` §4,
//! `handheld-vee-billing.md` §5.1).
//!
//! A record holds interval data when its units are interval units (`KWH`, `KW`, `KVARH`,
//! `THERM`, `GAL`, `CF`, `CCF`, ...); register units end in `REG` ([`is_register_units`]).
//! Field 13 is the interval length `MMDDHHMM` (`00000015` = 15 minutes, `00000100` = 1 hour),
//! a record holds at most 48 triplets, so a day of quarter hours is two records (three for a
//! 100-interval DST day). Each triplet's time is UTC `CCYYMMDDHHMM` and marks the **end** of
//! its interval.
//!
//! Flags: empty validated, `E` estimated, `A` adjusted, `N` no value (value left empty), `R`
//! raw. Vendors add a second character (Sensus `R0`); it is read as its first letter.
//!
//! Boundaries are checked in UTC: an interval's end must fall on a multiple of the interval
//! length counted from UTC midnight. Intervals of 5, 15, 30 and 60 minutes that align with
//! local time also align with UTC for every zone whose offset is a whole number of hours
//! (and for half-hour offsets up to 30-minute intervals), which is what utilities using CMEP
//! (North America) have.
//!
//! [`interval_records`] writes every triplet's time, the form every CMEP reader takes;
//! [`interval_values`] also takes times left empty (the previous time plus the interval).

use jiff::{SignedDuration, Timestamp};

use super::{MAX_TRIPLETS, Mepmd01, Triplet, datetime, interval_minutes};
use crate::decimal::{format_micros, parse_micros};
use crate::error::{Error, Result};

/// Interval lengths taken, in minutes.
pub const INTERVAL_MINUTES: [u16; 4] = [5, 15, 30, 60];

/// Most characters of a triplet's flag (a CMEP flag and a vendor's second character).
pub const MAX_FLAG: usize = 2;

/// A triplet's flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntervalFlag {
    /// Empty: validated.
    Validated,
    /// `E`.
    Estimated,
    /// `A`.
    Adjusted,
    /// `N`: no value; the value is empty.
    NoValue,
    /// `R`: raw, not validated.
    Raw,
}

impl IntervalFlag {
    /// The flag as CMEP writes it.
    pub fn code(self) -> &'static str {
        match self {
            IntervalFlag::Validated => "",
            IntervalFlag::Estimated => "E",
            IntervalFlag::Adjusted => "A",
            IntervalFlag::NoValue => "N",
            IntervalFlag::Raw => "R",
        }
    }

    /// Read a flag: empty, `E`, `A`, `N`, `R`, or one of these followed by a vendor's
    /// character (`R0`).
    pub fn parse(text: &str) -> Result<Self> {
        if text.chars().count() > MAX_FLAG {
            return Err(Error::invalid(
                "flag",
                format!("{text:?} is longer than {MAX_FLAG} characters"),
            ));
        }
        match text.chars().next() {
            None => Ok(IntervalFlag::Validated),
            Some('E') => Ok(IntervalFlag::Estimated),
            Some('A') => Ok(IntervalFlag::Adjusted),
            Some('N') => Ok(IntervalFlag::NoValue),
            Some('R') => Ok(IntervalFlag::Raw),
            Some(_) => Err(Error::invalid("flag", format!("{text:?} is not empty, E, A, N or R"))),
        }
    }
}

/// One interval: when it ends (UTC), its flag, its value in micro-units (`None` with
/// [`IntervalFlag::NoValue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalValue {
    pub end: Timestamp,
    pub flag: IntervalFlag,
    pub value: Option<i64>,
}

/// Register units end in `REG` (`KWHREG`, `GALREG`, `SKWHREG`).
pub fn is_register_units(units: &str) -> bool {
    units.ends_with("REG")
}

/// Interval units: anything else that is not empty (`KWH`, `KW`, `GAL`, `CCF`, `PULSE`, ...).
pub fn is_interval_units(units: &str) -> bool {
    !units.is_empty() && !is_register_units(units)
}

/// The `MMDDHHMM` field of an interval length (`15` → `00000015`, `60` → `00000100`).
pub fn interval_field(minutes: u16) -> Result<String> {
    if !INTERVAL_MINUTES.contains(&minutes) {
        return Err(Error::invalid(
            "interval",
            format!("{minutes} minutes is not 5, 15, 30 or 60"),
        ));
    }
    Ok(format!("0000{:02}{:02}", minutes / 60, minutes % 60))
}

/// Whether `t` is on a boundary of `minutes`-long intervals counted from UTC midnight.
fn on_boundary(t: Timestamp, minutes: u16) -> bool {
    let secs = t.as_second();
    t.subsec_nanosecond() == 0 && secs.rem_euclid(i64::from(minutes) * 60) == 0
}

/// The records of one channel's intervals: `head` gives every field but the interval and the
/// triplets; values are cut into records of at most 48 triplets, every time written.
///
/// Refused: units that are not interval units, an interval length other than 5, 15, 30 or
/// 60, an end time off an interval boundary or not after the one before it, a flag of
/// [`IntervalFlag::NoValue`] with a value or another flag without one.
pub fn interval_records(head: &Mepmd01, minutes: u16, values: &[IntervalValue]) -> Result<Vec<Mepmd01>> {
    if !is_interval_units(&head.units) {
        return Err(Error::invalid(
            "units",
            format!("{:?} are not interval units", head.units),
        ));
    }
    let interval = interval_field(minutes)?;
    let mut prev: Option<Timestamp> = None;
    for (i, v) in values.iter().enumerate() {
        check_value(i + 1, v, minutes, prev)?;
        prev = Some(v.end);
    }
    values
        .chunks(MAX_TRIPLETS)
        .map(|chunk| {
            let record = Mepmd01 {
                interval: interval.clone(),
                triplets: chunk
                    .iter()
                    .map(|v| Triplet {
                        at: Some(datetime(v.end)),
                        flag: v.flag.code().to_string(),
                        value: v.value.map(format_micros).unwrap_or_default(),
                    })
                    .collect(),
                ..head.clone()
            };
            // Field sizes and the line length are checked by encoding once.
            record.encode()?;
            Ok(record)
        })
        .collect()
}

fn check_value(n: usize, v: &IntervalValue, minutes: u16, prev: Option<Timestamp>) -> Result<()> {
    if !on_boundary(v.end, minutes) {
        return Err(Error::invalid(
            "triplet",
            format!("triplet {n}: {} is not on a {minutes}-minute boundary (UTC)", v.end),
        ));
    }
    if prev.is_some_and(|p| v.end <= p) {
        return Err(Error::invalid(
            "triplet",
            format!("triplet {n}: {} is not after the triplet before it", v.end),
        ));
    }
    match (v.flag, v.value) {
        (IntervalFlag::NoValue, Some(_)) => Err(Error::invalid(
            "flag",
            format!("triplet {n}: flag N (no value) with a value"),
        )),
        (f, None) if f != IntervalFlag::NoValue => Err(Error::invalid(
            "flag",
            format!("triplet {n}: no value needs flag N, not {:?}", f.code()),
        )),
        _ => Ok(()),
    }
}

/// A triplet's value: a decimal, or `H` and hex digits (an integer); empty is no value.
fn parse_value(n: usize, text: &str) -> Result<Option<i64>> {
    if text.is_empty() {
        return Ok(None);
    }
    let bad = |e: String| Error::invalid("value", format!("triplet {n}: {text:?}: {e}"));
    if let Some(hex) = text.strip_prefix('H') {
        if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("not H and at most 16 hex digits".into()));
        }
        let units = i64::from_str_radix(hex, 16).map_err(|e| bad(e.to_string()))?;
        return units
            .checked_mul(crate::decimal::SCALE)
            .map(Some)
            .ok_or_else(|| bad("too large".into()));
    }
    parse_micros(text).map(Some).map_err(|e| bad(e.to_string()))
}

/// The intervals of a record with interval units: each triplet's end time (empty times
/// filled in from the interval), flag and value in micro-units (an empty value, or flag `N`,
/// gives `None` with flag `N`). The calculation constant (field 12) is not applied.
///
/// Refused: register units, an interval length other than 5, 15, 30 or 60, more than 48
/// triplets, a time off an interval boundary or not after the one before it, an unknown
/// flag, a value that is not a number.
pub fn interval_values(record: &Mepmd01) -> Result<Vec<IntervalValue>> {
    if !is_interval_units(&record.units) {
        return Err(Error::invalid(
            "units",
            format!("{:?} are not interval units", record.units),
        ));
    }
    let minutes = interval_minutes(&record.interval)?;
    let minutes = u16::try_from(minutes)
        .ok()
        .filter(|m| INTERVAL_MINUTES.contains(m))
        .ok_or_else(|| {
            Error::invalid(
                "interval",
                format!("{:?} is not 5, 15, 30 or 60 minutes", record.interval),
            )
        })?;
    if record.triplets.len() > MAX_TRIPLETS {
        return Err(Error::invalid(
            "count",
            format!(
                "{} triplets, a record holds at most {MAX_TRIPLETS}",
                record.triplets.len()
            ),
        ));
    }
    let step = SignedDuration::from_mins(i64::from(minutes));
    let mut out: Vec<IntervalValue> = Vec::with_capacity(record.triplets.len());
    for (i, t) in record.triplets.iter().enumerate() {
        let n = i + 1;
        let end = match (&t.at, out.last()) {
            (Some(at), _) => {
                super::parse_datetime(at).map_err(|e| Error::invalid("triplet", format!("triplet {n}: {e}")))?
            }
            (None, Some(prev)) => prev
                .end
                .checked_add(step)
                .map_err(|e| Error::invalid("triplet", format!("triplet {n}: {e}")))?,
            (None, None) => return Err(Error::invalid("triplet", "triplet 1 has no date/time")),
        };
        let flag = IntervalFlag::parse(&t.flag).map_err(|e| match e {
            Error::Invalid { detail, .. } => Error::invalid("flag", format!("triplet {n}: {detail}")),
            e => e,
        })?;
        let value = match flag {
            IntervalFlag::NoValue => None,
            _ => parse_value(n, &t.value)?,
        };
        let flag = if value.is_none() { IntervalFlag::NoValue } else { flag };
        let v = IntervalValue { end, flag, value };
        check_value(n, &v, minutes, out.last().map(|p| p.end))?;
        out.push(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn head(units: &str) -> Mepmd01 {
        Mepmd01 {
            version: super::super::VERSION_1_20.into(),
            sender_id: "UTILITY".into(),
            sender_customer_id: String::new(),
            receiver_id: "BILLING".into(),
            receiver_customer_id: String::new(),
            created: "202403110600".into(),
            meter_id: "M1".into(),
            purpose: "OK".into(),
            commodity: "E".into(),
            units: units.into(),
            constant: "1".into(),
            interval: String::new(),
            triplets: Vec::new(),
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// `n` 15-minute intervals starting at `start`, with a mix of flags and a gap value.
    fn day(start: &str, n: usize) -> Vec<IntervalValue> {
        (0..n)
            .map(|i| {
                let end = ts(start) + SignedDuration::from_mins(15 * (i as i64 + 1));
                let (flag, value) = match i % 7 {
                    3 => (IntervalFlag::Estimated, Some(i as i64 * 250_000)),
                    5 => (IntervalFlag::NoValue, None),
                    6 => (IntervalFlag::Adjusted, Some(-1)),
                    _ => (IntervalFlag::Validated, Some(i as i64 * 1_234_500)),
                };
                IntervalValue { end, flag, value }
            })
            .collect()
    }

    fn round_trip(values: &[IntervalValue], records: usize) {
        let recs = interval_records(&head("KWH"), 15, values).unwrap();
        assert_eq!(recs.len(), records);
        let mut back = Vec::new();
        for r in &recs {
            assert!(r.triplets.len() <= MAX_TRIPLETS);
            assert_eq!(r.interval, "00000015");
            let line = r.encode().unwrap();
            back.extend(interval_values(&Mepmd01::parse(&line).unwrap()).unwrap());
        }
        assert_eq!(back, values);
    }

    #[test]
    fn a_day_of_96_quarter_hours_is_two_records_and_round_trips() {
        let values = day("2024-03-11T05:00:00Z", 96);
        round_trip(&values, 2);
        let recs = interval_records(&head("KWH"), 15, &values).unwrap();
        let line = recs[0].encode().unwrap();
        assert!(
            line.starts_with(
                "MEPMD01,19970819,UTILITY,,BILLING,,202403110600,M1,OK,E,KWH,1,00000015,48,202403110515,,0,"
            ),
            "{line}"
        );
        assert!(line.contains(",202403110600,E,0.75,"), "{line}");
        assert!(line.contains(",202403110630,N,,"), "{line}");
        assert!(line.contains(",202403110645,A,-0.000001,"), "{line}");
        assert_eq!(recs[1].triplets.len(), 48);
    }

    #[test]
    fn a_fall_back_day_of_100_quarter_hours_is_three_records() {
        let values = day("2024-11-03T04:00:00Z", 100);
        round_trip(&values, 3);
        let recs = interval_records(&head("KWH"), 15, &values).unwrap();
        assert_eq!(recs.iter().map(|r| r.triplets.len()).collect::<Vec<_>>(), [48, 48, 4]);
    }

    #[test]
    fn times_left_empty_after_the_first_are_filled() {
        let r = Mepmd01::parse(
            "MEPMD01,19970819,A,,B,,202401010000,M1,OK,E,KWH,1,00000015,4,202401010015,,1.5,,E,2,,N,,,R0,H1F",
        )
        .unwrap();
        let v = interval_values(&r).unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(v[3].end, ts("2024-01-01T01:00:00Z"));
        assert_eq!(v[1].flag, IntervalFlag::Estimated);
        assert_eq!(
            v[2],
            IntervalValue {
                end: ts("2024-01-01T00:45:00Z"),
                flag: IntervalFlag::NoValue,
                value: None
            }
        );
        assert_eq!(v[3].flag, IntervalFlag::Raw);
        assert_eq!(v[3].value, Some(31_000_000));
    }

    #[test]
    fn a_count_that_disagrees_with_the_record_names_the_count_field() {
        let e = Mepmd01::parse("MEPMD01,19970819,A,,B,,202401010000,M1,OK,E,KWH,1,00000015,3,202401010015,,1.5")
            .unwrap_err();
        assert!(matches!(e, Error::Invalid { field: "count", .. }), "{e}");
        assert!(e.to_string().contains("count 3 needs 23 fields"), "{e}");
        let mut r = head("KWH");
        r.interval = "00000015".into();
        r.triplets = vec![
            Triplet {
                at: Some("202401010015".into()),
                flag: String::new(),
                value: "1".into()
            };
            49
        ];
        let e = interval_values(&r).unwrap_err();
        assert!(matches!(e, Error::Invalid { field: "count", .. }), "{e}");
    }

    #[test]
    fn refuses_off_boundary_times_bad_flags_and_lengths() {
        let parse = |line: &str| interval_values(&Mepmd01::parse(line).unwrap()).unwrap_err();
        let e = parse("MEPMD01,19970819,A,,B,,202401010000,M1,OK,E,KWH,1,00000015,1,202401010010,,1");
        assert!(
            matches!(e, Error::Invalid { field: "triplet", .. }) && e.to_string().contains("boundary"),
            "{e}"
        );
        let e = parse("MEPMD01,19970819,A,,B,,202401010000,M1,OK,E,KWH,1,00000015,2,202401010030,,1,202401010015,,1");
        assert!(
            e.to_string().contains("triplet 2") && e.to_string().contains("not after"),
            "{e}"
        );
        let e = parse("MEPMD01,19970819,A,,B,,202401010000,M1,OK,E,KWH,1,00000015,1,202401010015,X,1");
        assert!(matches!(e, Error::Invalid { field: "flag", .. }), "{e}");
        let e = parse("MEPMD01,19970819,A,,B,,202401010000,M1,OK,E,KWH,1,00000015,1,202401010015,R01,1");
        assert!(matches!(e, Error::Invalid { field: "flag", .. }), "{e}");
        let e = parse("MEPMD01,19970819,A,,B,,202401010000,M1,OK,E,KWH,1,00000010,1,202401010010,,1");
        assert!(matches!(e, Error::Invalid { field: "interval", .. }), "{e}");
        let e = parse("MEPMD01,19970819,A,,B,,202401010000,M1,OK,E,KWH,1,00000015,1,202401010015,,1.5x");
        assert!(
            matches!(e, Error::Invalid { field: "value", .. }) && e.to_string().contains("triplet 1"),
            "{e}"
        );
        let e = parse("MEPMD01,19970819,A,,B,,202401010000,M1,OK,E,KWH,1,00000015,1,202401010015,,H-1");
        assert!(matches!(e, Error::Invalid { field: "value", .. }), "{e}");
        let e = parse("MEPMD01,19970819,A,,B,,202401010000,M1,OK,W,GALREG,1,00000100,1,202401010100,,1");
        assert!(matches!(e, Error::Invalid { field: "units", .. }), "{e}");
    }

    #[test]
    fn the_writer_refuses_inconsistent_intervals() {
        let mut v = day("2024-03-11T05:00:00Z", 4);
        assert!(interval_records(&head("KWHREG"), 15, &v).is_err());
        assert!(interval_records(&head("KWH"), 10, &v).is_err());
        v[1].value = None;
        let e = interval_records(&head("KWH"), 15, &v).unwrap_err();
        assert!(e.to_string().contains("needs flag N"), "{e}");
        let mut v = day("2024-03-11T05:00:00Z", 4);
        v[1].end = v[0].end;
        assert!(
            interval_records(&head("KWH"), 15, &v)
                .unwrap_err()
                .to_string()
                .contains("not after")
        );
        let mut v = day("2024-03-11T05:00:00Z", 4);
        v[2].end = ts("2024-03-11T05:50:00Z");
        assert!(
            interval_records(&head("KWH"), 15, &v)
                .unwrap_err()
                .to_string()
                .contains("boundary")
        );
    }

    #[test]
    fn tells_register_units_from_interval_units() {
        for u in ["KWHREG", "GALREG", "SKWHREG", "CFREG"] {
            assert!(is_register_units(u) && !is_interval_units(u), "{u}");
        }
        for u in ["KWH", "KW", "KVARH", "THERM", "GAL", "CF", "CCF", "PULSE"] {
            assert!(is_interval_units(u) && !is_register_units(u), "{u}");
        }
        assert!(!is_interval_units(""));
        assert_eq!(interval_field(60).unwrap(), "00000100");
        assert_eq!(interval_field(5).unwrap(), "00000005");
        assert_eq!(IntervalFlag::parse("R0").unwrap(), IntervalFlag::Raw);
    }

    proptest! {
        #[test]
        fn any_record_text_never_panics(fields in prop::collection::vec("[0-9A-Z.\\-]{0,14}", 0..30)) {
            let line = format!("MEPMD01,19970819,A,,B,,202401010000,M1,OK,E,KWH,1,{}", fields.join(","));
            if let Ok(r) = Mepmd01::parse(&line) {
                let _ = interval_values(&r);
            }
        }
    }
}
