//! Route and read records as the host and the recorder see them, independent of the wire form
//! ([`super::ascii`] for firmware 1, [`super::binary`] for firmware 2).
//!
//! Field widths follow the fixed-width ASCII layout (firmware 1), so every record that one
//! firmware accepts the other can carry too: [`RouteMeter::validate`] and
//! [`ReadRecord::validate`] enforce them for both.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest value a 10-digit register field holds.
pub const MAX_REGISTER: u64 = 9_999_999_999;

/// A route as loaded into a recorder: meters in walk order plus the trouble-code table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Route identifier (≤ 10 characters).
    pub id: String,
    /// Meters in walk order.
    pub meters: Vec<RouteMeter>,
    /// Skip and trouble codes the reader may key, with their text.
    pub trouble_codes: Vec<TroubleCode>,
}

/// One meter on a route (modelled on the Sensus AutoRead import record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteMeter {
    /// Walk order within the route (≤ 999999).
    pub sequence: u32,
    /// Meter ID (≤ 12).
    pub meter_id: String,
    /// Account ID (≤ 15).
    pub account: String,
    /// Service address (≤ 20).
    pub address: String,
    /// Customer name (≤ 25).
    pub customer: String,
    /// Service type: `W` water, `G` gas, `E` electric, `P` other.
    pub service: char,
    /// Previous reading, as a register value (not consumption).
    pub previous_read: u64,
    /// Lowest plausible reading; the recorder asks for a re-key below it.
    pub low_limit: u64,
    /// Highest plausible reading; the recorder asks for a re-key above it.
    pub high_limit: u64,
    /// Number of reading dials (1..=10).
    pub dials: u8,
    /// Location note shown to the reader (≤ 30), e.g. "rear yard, dog".
    pub location: String,
}

/// One entry of the skip/trouble code table sent with a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TroubleCode {
    /// Code as keyed (1–4 letters or digits).
    pub code: String,
    /// Description (≤ 30).
    pub text: String,
}

/// How a read was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReadType {
    /// Keyed by the reader from the dials.
    Keyed,
    /// Received from a radio endpoint.
    Radio,
    /// Read through a probe/touch pad.
    Probe,
}

impl ReadType {
    pub fn code(self) -> u8 {
        match self {
            ReadType::Keyed => b'K',
            ReadType::Radio => b'R',
            ReadType::Probe => b'E',
        }
    }

    pub fn from_code(c: u8) -> Result<Self> {
        Ok(match c {
            b'K' => ReadType::Keyed,
            b'R' => ReadType::Radio,
            b'E' => ReadType::Probe,
            _ => {
                return Err(Error::invalid("read type", format!("unknown code {:?}", c as char)));
            }
        })
    }
}

/// The recorder's hi/lo check: the read fell outside the limits and the reader re-keyed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Verified {
    /// Within limits (or no read).
    #[default]
    No,
    /// Above the high limit, confirmed by re-keying.
    High,
    /// Below the low limit, confirmed by re-keying.
    Low,
}

impl Verified {
    pub fn code(self) -> u8 {
        match self {
            Verified::No => b' ',
            Verified::High => b'H',
            Verified::Low => b'L',
        }
    }

    pub fn from_code(c: u8) -> Result<Self> {
        Ok(match c {
            b' ' => Verified::No,
            b'H' => Verified::High,
            b'L' => Verified::Low,
            _ => {
                return Err(Error::invalid("verified flag", format!("unknown code {:?}", c as char)));
            }
        })
    }
}

/// Civil date and time on the recorder's clock (local time, no zone: what the reader saw).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReadTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => 29,
        2 => 28,
        _ => 0,
    }
}

impl ReadTime {
    /// Validates the fields (years 2000–2099 only: the recorders' clocks cannot hold others).
    pub fn new(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Result<Self> {
        let t = ReadTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        };
        t.validate()?;
        Ok(t)
    }

    pub fn validate(&self) -> Result<()> {
        if !(2000..=2099).contains(&self.year) {
            return Err(Error::invalid(
                "read date",
                format!("year {} outside 2000-2099", self.year),
            ));
        }
        if self.month == 0 || self.day == 0 || self.day > days_in_month(self.year, self.month) {
            return Err(Error::invalid(
                "read date",
                format!("{:04}-{:02}-{:02} is not a date", self.year, self.month, self.day),
            ));
        }
        if self.hour > 23 || self.minute > 59 || self.second > 59 {
            return Err(Error::invalid(
                "read time",
                format!("{:02}:{:02}:{:02} is not a time", self.hour, self.minute, self.second),
            ));
        }
        Ok(())
    }

    /// Seconds since 1970-01-01T00:00:00 of this civil time, as if it were UTC.
    pub fn to_unix(&self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400 + i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second)
    }

    /// The civil time `secs` seconds after 1970-01-01T00:00:00.
    pub fn from_unix(secs: i64) -> Result<Self> {
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let year = u16::try_from(year).map_err(|_| Error::invalid("read date", format!("year {year}")))?;
        ReadTime::new(
            year,
            month as u8,
            day as u8,
            (sod / 3600) as u8,
            (sod / 60 % 60) as u8,
            (sod % 60) as u8,
        )
    }
}

/// One read as taken on the recorder (modelled on the Sensus AutoRead export record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadRecord {
    /// Recorder-side transactional sequence number: unique per device, never reused.
    pub seq: u32,
    /// Route the meter was read on (≤ 10).
    pub route_id: String,
    /// Meter ID (≤ 12).
    pub meter_id: String,
    /// Register value as keyed; `None` when the meter was skipped or left blank.
    pub reading: Option<u64>,
    /// When the read was taken, on the recorder's clock.
    pub taken_at: ReadTime,
    pub read_type: ReadType,
    /// Hi/lo re-key flag.
    pub verified: Verified,
    /// Skip code when the meter could not be read.
    pub skip_code: Option<String>,
    /// Up to two trouble codes.
    pub trouble_codes: Vec<String>,
}

/// Checks a free-text field: printable ASCII, at most `max` characters, no trailing space
/// (fixed-width fields are space-padded, so a trailing space could not survive a round trip).
pub(crate) fn check_text(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(Error::invalid(
            field,
            format!("{value:?} is longer than {max} characters"),
        ));
    }
    if let Some(c) = value.bytes().find(|b| !(0x20..=0x7E).contains(b)) {
        return Err(Error::invalid(
            field,
            format!("{value:?} holds non-printable byte {c:#04x}"),
        ));
    }
    if value.ends_with(' ') {
        return Err(Error::invalid(field, format!("{value:?} ends with a space")));
    }
    Ok(())
}

/// Checks a skip or trouble code: 1–4 ASCII letters or digits.
pub(crate) fn check_code(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > 4 || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::invalid(field, format!("{value:?} is not 1-4 letters or digits")));
    }
    Ok(())
}

pub(crate) fn check_register(field: &'static str, value: u64) -> Result<()> {
    if value > MAX_REGISTER {
        return Err(Error::invalid(field, format!("{value} has more than 10 digits")));
    }
    Ok(())
}

impl RouteMeter {
    pub fn validate(&self) -> Result<()> {
        if self.sequence > 999_999 {
            return Err(Error::invalid(
                "walk sequence",
                format!("{} exceeds 999999", self.sequence),
            ));
        }
        check_text("meter id", &self.meter_id, 12)?;
        if self.meter_id.trim().is_empty() {
            return Err(Error::invalid("meter id", "empty"));
        }
        check_text("account", &self.account, 15)?;
        check_text("service address", &self.address, 20)?;
        check_text("customer name", &self.customer, 25)?;
        if !matches!(self.service, 'W' | 'G' | 'E' | 'P') {
            return Err(Error::invalid(
                "service type",
                format!("{:?} is not W, G, E or P", self.service),
            ));
        }
        check_register("previous read", self.previous_read)?;
        check_register("low limit", self.low_limit)?;
        check_register("high limit", self.high_limit)?;
        if self.low_limit > self.high_limit {
            return Err(Error::invalid(
                "low limit",
                format!("{} above high limit {}", self.low_limit, self.high_limit),
            ));
        }
        if !(1..=10).contains(&self.dials) {
            return Err(Error::invalid("dials", format!("{} outside 1-10", self.dials)));
        }
        check_text("location note", &self.location, 30)
    }
}

impl TroubleCode {
    pub fn validate(&self) -> Result<()> {
        check_code("trouble code", &self.code)?;
        check_text("trouble code text", &self.text, 30)
    }
}

impl Route {
    pub fn validate(&self) -> Result<()> {
        check_text("route id", &self.id, 10)?;
        if self.id.trim().is_empty() {
            return Err(Error::invalid("route id", "empty"));
        }
        self.meters.iter().try_for_each(RouteMeter::validate)?;
        self.trouble_codes.iter().try_for_each(TroubleCode::validate)
    }
}

impl ReadRecord {
    pub fn validate(&self) -> Result<()> {
        check_text("route id", &self.route_id, 10)?;
        check_text("meter id", &self.meter_id, 12)?;
        if let Some(r) = self.reading {
            check_register("reading", r)?;
        }
        self.taken_at.validate()?;
        if let Some(code) = &self.skip_code {
            check_code("skip code", code)?;
        }
        if self.trouble_codes.len() > 2 {
            return Err(Error::invalid(
                "trouble codes",
                format!("{} codes, at most 2", self.trouble_codes.len()),
            ));
        }
        self.trouble_codes
            .iter()
            .try_for_each(|c| check_code("trouble code", c))?;
        if self.reading.is_none() && self.verified != Verified::No {
            return Err(Error::invalid("verified flag", "set on a read without a reading"));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod strategies {
    //! proptest generators of valid records, shared by the round-trip tests.
    use super::*;
    use proptest::prelude::*;

    fn text(max: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("([!-~][ -~]{{0,{}}})?", max - 1))
            .unwrap()
            .prop_map(|s| s.trim_end().to_string())
    }

    fn nonempty(max: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("[!-~]([ -~]{{0,{}}}[!-~])?", max - 2)).unwrap()
    }

    fn code() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[A-Za-z0-9]{1,4}").unwrap()
    }

    pub fn read_time() -> impl Strategy<Value = ReadTime> {
        (946_684_800i64..4_102_444_799).prop_map(|s| ReadTime::from_unix(s).unwrap())
    }

    pub fn read_record() -> impl Strategy<Value = ReadRecord> {
        (
            any::<u32>(),
            text(10),
            text(12),
            proptest::option::of(0..=MAX_REGISTER),
            read_time(),
            prop_oneof![Just(ReadType::Keyed), Just(ReadType::Radio), Just(ReadType::Probe)],
            prop_oneof![Just(Verified::No), Just(Verified::High), Just(Verified::Low)],
            proptest::option::of(code()),
            proptest::collection::vec(code(), 0..=2),
        )
            .prop_map(
                |(seq, route_id, meter_id, reading, taken_at, read_type, verified, skip_code, trouble_codes)| {
                    ReadRecord {
                        seq,
                        route_id,
                        meter_id,
                        reading,
                        taken_at,
                        read_type,
                        verified: if reading.is_some() { verified } else { Verified::No },
                        skip_code,
                        trouble_codes,
                    }
                },
            )
    }

    pub fn route_meter() -> impl Strategy<Value = RouteMeter> {
        (
            0u32..=999_999,
            nonempty(12),
            text(15),
            text(20),
            text(25),
            prop_oneof![Just('W'), Just('G'), Just('E'), Just('P')],
            (0..=MAX_REGISTER, 0..=MAX_REGISTER, 0..=MAX_REGISTER),
            1u8..=10,
            text(30),
        )
            .prop_map(
                |(sequence, meter_id, account, address, customer, service, (p, a, b), dials, location)| RouteMeter {
                    sequence,
                    meter_id,
                    account,
                    address,
                    customer,
                    service,
                    previous_read: p,
                    low_limit: a.min(b),
                    high_limit: a.max(b),
                    dials,
                    location,
                },
            )
    }

    pub fn trouble_code() -> impl Strategy<Value = TroubleCode> {
        (code(), text(30)).prop_map(|(code, text)| TroubleCode { code, text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn civil_time_conversion_matches_known_instants() {
        let t = ReadTime::new(2026, 11, 22, 9, 30, 5).unwrap();
        assert_eq!(t.to_unix(), 1_795_339_805);
        assert_eq!(ReadTime::from_unix(1_795_339_805).unwrap(), t);
        assert_eq!(ReadTime::new(2024, 2, 29, 0, 0, 0).unwrap().to_unix(), 1_709_164_800);
        assert!(ReadTime::new(2025, 2, 29, 0, 0, 0).is_err());
        assert!(ReadTime::new(2025, 1, 1, 24, 0, 0).is_err());
    }

    #[test]
    fn validation_names_the_field() {
        let mut m = RouteMeter {
            sequence: 1,
            meter_id: "M1".into(),
            account: "A".into(),
            address: "1 Main St".into(),
            customer: "Doe".into(),
            service: 'W',
            previous_read: 10,
            low_limit: 10,
            high_limit: 50,
            dials: 6,
            location: "front".into(),
        };
        m.validate().unwrap();
        m.address = "a very long service address".into();
        assert!(m.validate().unwrap_err().to_string().contains("service address"));
    }

    proptest! {
        #[test]
        fn unix_round_trip(t in strategies::read_time()) {
            prop_assert_eq!(ReadTime::from_unix(t.to_unix()).unwrap(), t);
        }
    }
}
