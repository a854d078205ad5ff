//! Interval (AMI) data: a meter's channels and its meter-channel-days.
//!
//! A channel is one measured quantity of a meter (kWh delivered, kWh received, water volume).
//! A meter-channel-day is one record: the local day's values and quality codes as arrays (the
//! row layout of NEM12 and of the MDM systems in `interval-data.md` §5: 96× fewer records than
//! one per interval, and a day's VEE is one record read).
//!
//! Days are local days of the utility's time zone, so a day has 23, 24 or 25 hours: with
//! 15-minute intervals 92 values on the spring DST change, 100 in the fall, 96 otherwise.
//! Interval `n` (1-based, as NEM12 and the flags count them) starts `(n − 1) × length` after
//! local midnight in absolute time. Stored with postcard: append fields and variants at the
//! end only.

use std::fmt;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};
use serde::{Deserialize, Serialize};

use super::{BatchId, Quantity, ReadStatus, time_serde};

/// Interval lengths meterd takes, in minutes (NEM12 allows 5, 15, 30; hourly AMI data is 60).
pub const INTERVAL_MINUTES: [u16; 4] = [5, 15, 30, 60];

/// Most values a day can have: 25 hours of 5-minute intervals.
pub const MAX_DAY_VALUES: usize = 25 * 12;

/// Which way energy or water flows through the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the utility to the customer (consumption): a negative value is impossible.
    Delivered,
    /// From the customer to the grid (solar export).
    Received,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Delivered => "delivered",
            Direction::Received => "received",
        }
    }
}

/// One measured quantity of a meter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub meter_id: String,
    /// The channel's name: the NEM12 NMI suffix (`E1`, `B1`), a CMEP unit (`KWH`), `idm` for
    /// an ERT endpoint's intervals.
    pub channel: String,
    /// Unit of the values (`kWh`, `m3`, `gal`, ...).
    pub unit: String,
    pub direction: Direction,
}

/// Where an interval's value stands (the NEM12 quality flags, `interval-data.md` §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Quality {
    /// `A`: measured.
    Actual,
    /// `E`: estimated (by meterd's estimation, or sent as a forward estimate).
    Estimated,
    /// `S`: substituted by the sender.
    Substituted,
    /// `F`: edited by a clerk (NEM12: final substitute).
    Edited,
    /// `N`: no value.
    Missing,
}

impl Quality {
    pub const ALL: [Quality; 5] = [
        Quality::Actual,
        Quality::Estimated,
        Quality::Substituted,
        Quality::Edited,
        Quality::Missing,
    ];

    pub fn code(self) -> char {
        match self {
            Quality::Actual => 'A',
            Quality::Estimated => 'E',
            Quality::Substituted => 'S',
            Quality::Edited => 'F',
            Quality::Missing => 'N',
        }
    }

    pub fn from_code(c: char) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.code() == c)
    }
}

impl Serialize for QualityCodes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|q| q.code().to_string()))
    }
}

/// The quality codes of a day as JSON strings (`["A","E",…]`).
pub struct QualityCodes<'a>(pub &'a [Quality]);

/// How an interval's value was estimated or substituted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    /// Linear interpolation between the neighbouring actual intervals (CPUC: gaps ≤ 2 hours).
    Linear,
    /// Average of the same intervals on like days, scaled to a register difference when one
    /// brackets the day (CPUC: longer gaps; Itron IEE historical estimation).
    LikeDay,
    /// A method the sender named, by its NEM12 method number (AEMO Metrology Procedure Part B:
    /// 11 check … 75 unmetered).
    Source(u8),
}

impl Method {
    /// The method's name in JSON and CSV: `linear`, `like_day`, `nem12_14`.
    pub fn name(self) -> String {
        match self {
            Method::Linear => "linear".into(),
            Method::LikeDay => "like_day".into(),
            Method::Source(n) => format!("nem12_{n}"),
        }
    }

    /// The NEM12 method number: 17 linear, 15 average like day; a sender's own number.
    pub fn nem12(self) -> u8 {
        match self {
            Method::Linear => 17,
            Method::LikeDay => 15,
            Method::Source(n) => n,
        }
    }

    /// From a NEM12 method number (17 and 15 become meterd's own methods).
    pub fn from_nem12(n: u8) -> Self {
        match n {
            17 => Method::Linear,
            15 => Method::LikeDay,
            n => Method::Source(n),
        }
    }
}

/// Interval VEE rules. Their ids are part of the interface (flags in JSON, config keys, the
/// review screen). Append only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IntervalRule {
    #[serde(rename = "interval_gap")]
    Gap,
    #[serde(rename = "interval_spike")]
    Spike,
    #[serde(rename = "interval_zero_run")]
    ZeroRun,
    #[serde(rename = "continuous_flow")]
    ContinuousFlow,
    #[serde(rename = "interval_negative")]
    Negative,
    #[serde(rename = "sum_check")]
    SumCheck,
    #[serde(rename = "interval_high")]
    High,
    #[serde(rename = "interval_low")]
    Low,
    #[serde(rename = "interval_count")]
    Count,
    #[serde(rename = "interval_duplicate")]
    Duplicate,
    /// A gap estimation could not fill (too long for interpolation, no like days).
    #[serde(rename = "not_estimable")]
    NotEstimable,
}

impl IntervalRule {
    pub const ALL: [IntervalRule; 11] = [
        IntervalRule::Gap,
        IntervalRule::Spike,
        IntervalRule::ZeroRun,
        IntervalRule::ContinuousFlow,
        IntervalRule::Negative,
        IntervalRule::SumCheck,
        IntervalRule::High,
        IntervalRule::Low,
        IntervalRule::Count,
        IntervalRule::Duplicate,
        IntervalRule::NotEstimable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IntervalRule::Gap => "interval_gap",
            IntervalRule::Spike => "interval_spike",
            IntervalRule::ZeroRun => "interval_zero_run",
            IntervalRule::ContinuousFlow => "continuous_flow",
            IntervalRule::Negative => "interval_negative",
            IntervalRule::SumCheck => "sum_check",
            IntervalRule::High => "interval_high",
            IntervalRule::Low => "interval_low",
            IntervalRule::Count => "interval_count",
            IntervalRule::Duplicate => "interval_duplicate",
            IntervalRule::NotEstimable => "not_estimable",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }

    /// Whether the flag holds the day for a clerk even when estimation repaired every gap
    /// (the rule: spike, negative, sum check, duplicate, and a day that could not be
    /// estimated; a wrong count too, since the day's shape is in doubt).
    pub fn holds_day(self) -> bool {
        !matches!(self, IntervalRule::Gap)
    }
}

impl fmt::Display for IntervalRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A flag an interval rule raised on a day, with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalFlag {
    pub rule: IntervalRule,
    /// The 1-based numbers of the intervals concerned (empty for a whole-day rule).
    pub intervals: Vec<u16>,
    /// What the rule expected (like-day total, register difference, third-highest × factor).
    pub expected: Option<Quantity>,
    /// The limit crossed.
    pub limit: Option<Quantity>,
    /// What the day showed.
    pub actual: Option<Quantity>,
    /// Plain words (the conflicting value of a duplicate, the lowest interval of a leak).
    pub detail: Option<String>,
}

impl IntervalFlag {
    pub fn new(rule: IntervalRule, intervals: Vec<u16>) -> Self {
        IntervalFlag {
            rule,
            intervals,
            expected: None,
            limit: None,
            actual: None,
            detail: None,
        }
    }
}

/// Identifies a meter-channel-day.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DayKey {
    pub meter_id: String,
    pub channel: String,
    pub date: Date,
}

impl fmt::Display for DayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.meter_id, self.channel, self.date)
    }
}

/// One meter, channel and local day of interval data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalDay {
    pub meter_id: String,
    pub channel: String,
    pub date: Date,
    pub interval_minutes: u16,
    /// One per interval of the local day; `None` where no value is known.
    pub values: Vec<Option<Quantity>>,
    /// One per interval.
    pub quality: Vec<Quality>,
    /// One per interval: how an estimated or substituted value was made.
    pub methods: Vec<Option<Method>>,
    /// 1-based numbers of intervals the meter marked as a power outage (never an
    /// interpolation end point: CPUC VEE rules).
    pub outages: Vec<u16>,
    pub status: ReadStatus,
    pub flags: Vec<IntervalFlag>,
    /// Where the values came from (`nem12 day.csv line 3`, `mqtt gw-1 ERT-IDM`, `estimate`,
    /// `clerk anna`); [`IntervalDay::value_source`] indexes it.
    pub sources: Vec<String>,
    /// One per interval: which of `sources` gave the value.
    pub value_source: Vec<Option<u8>>,
    /// When meterd first stored the day, and last changed it.
    #[serde(with = "time_serde")]
    pub received_at: Timestamp,
    #[serde(with = "time_serde")]
    pub updated_at: Timestamp,
    /// The billing batch that took the day.
    pub batch: Option<BatchId>,
    /// Bumped on every change (a clerk's action names the revision it saw).
    pub rev: u64,
}

impl IntervalDay {
    /// An empty day: every interval missing.
    pub fn empty(key: DayKey, interval_minutes: u16, count: usize, at: Timestamp) -> Self {
        IntervalDay {
            meter_id: key.meter_id,
            channel: key.channel,
            date: key.date,
            interval_minutes,
            values: vec![None; count],
            quality: vec![Quality::Missing; count],
            methods: vec![None; count],
            outages: Vec::new(),
            status: ReadStatus::Validated,
            flags: Vec::new(),
            sources: Vec::new(),
            value_source: vec![None; count],
            received_at: at,
            updated_at: at,
            batch: None,
            rev: 0,
        }
    }

    pub fn key(&self) -> DayKey {
        DayKey {
            meter_id: self.meter_id.clone(),
            channel: self.channel.clone(),
            date: self.date,
        }
    }

    /// The day's total of known values (saturating: a clerk's or sender's absurd values must
    /// not overflow it).
    pub fn total(&self) -> Quantity {
        let sum: i128 = self.values.iter().flatten().map(|v| i128::from(v.micros())).sum();
        Quantity::from_micros(sum.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }

    /// Whether interval `n` (1-based) is marked as an outage.
    pub fn is_outage(&self, n: u16) -> bool {
        self.outages.binary_search(&n).is_ok()
    }

    pub fn has_flag(&self, rule: IntervalRule) -> bool {
        self.flags.iter().any(|f| f.rule == rule)
    }

    /// The index of `source` in [`IntervalDay::sources`], added when new (at most 255 kept;
    /// after that the last one stands for the rest).
    pub fn source_index(&mut self, source: &str) -> u8 {
        if let Some(i) = self.sources.iter().position(|s| s == source) {
            return i as u8;
        }
        if self.sources.len() < 255 {
            self.sources.push(source.to_owned());
        }
        (self.sources.len() - 1) as u8
    }
}

/// A day as `intervals list --json` and the JSON export show it (the interface's field names).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalDayView<'a> {
    pub meter_id: &'a str,
    pub channel: &'a str,
    pub date: Date,
    pub interval_minutes: u16,
    pub values: &'a [Option<Quantity>],
    pub quality: QualityCodes<'a>,
    pub methods: Vec<Option<String>>,
    pub status: ReadStatus,
    pub flags: &'a [IntervalFlag],
    pub outages: &'a [u16],
    pub total: Quantity,
    pub sources: &'a [String],
    pub value_source: &'a [Option<u8>],
    pub batch: Option<BatchId>,
    pub rev: u64,
}

impl PartialEq for QualityCodes<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl fmt::Debug for QualityCodes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.iter().map(|q| q.code()).collect::<String>())
    }
}

impl Clone for QualityCodes<'_> {
    fn clone(&self) -> Self {
        QualityCodes(self.0)
    }
}

impl IntervalDay {
    pub fn view(&self) -> IntervalDayView<'_> {
        IntervalDayView {
            meter_id: &self.meter_id,
            channel: &self.channel,
            date: self.date,
            interval_minutes: self.interval_minutes,
            values: &self.values,
            quality: QualityCodes(&self.quality),
            methods: self.methods.iter().map(|m| m.map(Method::name)).collect(),
            status: self.status,
            flags: &self.flags,
            outages: &self.outages,
            total: self.total(),
            sources: &self.sources,
            value_source: &self.value_source,
            batch: self.batch,
            rev: self.rev,
        }
    }
}

/// A batch of interval days handed to one billing client (`batches next --kind intervals`);
/// its id comes from the same sequence as the register-read batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalBatch {
    pub id: BatchId,
    pub client: String,
    pub days: Vec<DayKey>,
    pub status: super::BatchStatus,
    #[serde(with = "time_serde")]
    pub created_at: Timestamp,
    #[serde(with = "time_serde::option")]
    pub acked_at: Option<Timestamp>,
}

/// One day as it went out in a batch, with what billing needs of its meter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchDay {
    pub day: IntervalDay,
    /// Empty when the meter is not in the meter list.
    pub account: String,
    pub service: Option<super::Service>,
    pub unit: String,
    pub direction: Direction,
    /// The batch that carried an earlier version of this day: this one corrects it.
    pub correction_of: Option<BatchId>,
}

/// Everything an interval batch carries, frozen when it was made (asking again returns the
/// same bytes even if a day changes later).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalBatchContents {
    pub days: Vec<BatchDay>,
}

/// The utility's calendar: the local days of its time zone.
#[derive(Debug, Clone)]
pub struct DayClock {
    pub tz: TimeZone,
}

impl DayClock {
    pub fn new(tz: TimeZone) -> Self {
        DayClock { tz }
    }

    /// The instant the local day begins (local midnight; where midnight does not exist, the
    /// first instant after it).
    pub fn day_start(&self, date: Date) -> Option<Timestamp> {
        date.to_zoned(self.tz.clone()).ok().map(|z| z.timestamp())
    }

    /// How long the local day is (23, 24 or 25 hours around DST changes).
    pub fn day_length(&self, date: Date) -> Option<SignedDuration> {
        let start = self.day_start(date)?;
        let next = self.day_start(date.tomorrow().ok()?)?;
        Some(next.duration_since(start))
    }

    /// How many intervals of `minutes` the local day has.
    pub fn intervals_in_day(&self, date: Date, minutes: u16) -> Option<usize> {
        let len = self.day_length(date)?;
        let step = i64::from(minutes) * 60;
        (minutes > 0 && len.as_secs() % step == 0).then(|| (len.as_secs() / step) as usize)
    }

    /// The local day an instant falls on.
    pub fn date_of(&self, at: Timestamp) -> Date {
        Zoned::new(at, self.tz.clone()).date()
    }

    /// Which day and 1-based interval the interval **starting** at `start` is; `None` when
    /// `start` is not on an interval boundary of its day.
    pub fn locate(&self, start: Timestamp, minutes: u16) -> Option<(Date, u16)> {
        let date = self.date_of(start);
        let day_start = self.day_start(date)?;
        let offset = start.duration_since(day_start).as_secs();
        let step = i64::from(minutes) * 60;
        if minutes == 0 || offset < 0 || offset % step != 0 {
            return None;
        }
        u16::try_from(offset / step + 1).ok().map(|n| (date, n))
    }

    /// The start of interval `n` (1-based) of `date`.
    pub fn interval_start(&self, date: Date, minutes: u16, n: u16) -> Option<Timestamp> {
        let start = self.day_start(date)?;
        start
            .checked_add(SignedDuration::from_mins(
                i64::from(minutes) * i64::from(n.saturating_sub(1)),
            ))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn la() -> DayClock {
        DayClock::new(TimeZone::get("America/Los_Angeles").unwrap())
    }

    #[test]
    fn dst_days_in_los_angeles_have_92_and_100_quarter_hours() {
        let c = la();
        assert_eq!(c.intervals_in_day(jiff::civil::date(2026, 3, 8), 15), Some(92));
        assert_eq!(c.intervals_in_day(jiff::civil::date(2026, 11, 1), 15), Some(100));
        assert_eq!(c.intervals_in_day(jiff::civil::date(2026, 6, 1), 15), Some(96));
        assert_eq!(c.intervals_in_day(jiff::civil::date(2026, 11, 1), 60), Some(25));
    }

    #[test]
    fn locate_counts_intervals_in_absolute_time_across_the_fall_change() {
        let c = la();
        let d = jiff::civil::date(2026, 11, 1);
        let start = c.day_start(d).unwrap();
        // 01:00 PDT is an hour after midnight: the 5th quarter hour; 01:00 PST comes an hour
        // later: the 9th.
        let first_one_am = start.checked_add(SignedDuration::from_hours(1)).unwrap();
        let second_one_am = start.checked_add(SignedDuration::from_hours(2)).unwrap();
        assert_eq!(c.locate(first_one_am, 15), Some((d, 5)));
        assert_eq!(c.locate(second_one_am, 15), Some((d, 9)));
        assert_eq!(c.interval_start(d, 15, 9), Some(second_one_am));
        assert_eq!(
            c.locate(second_one_am.checked_add(SignedDuration::from_mins(7)).unwrap(), 15),
            None
        );
    }
}
