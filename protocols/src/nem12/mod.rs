//! AEMO NEM12 interval data files (the Meter Data File Format of the Australian National
//! Electricity Market; record layout as in `interval-data.md` §4 and the `nem-reader` PyPI
//! package's `docs/file-format.md`).
//!
//! A NEM12 file is CSV, one record a line, the first field the record indicator:
//! - `100` header: `NEM12`, creation date-time `YYYYMMDDHHMM`, from and to participant;
//! - `200` a channel (NMI data details): NMI, NMI configuration, register id, NMI suffix, MDM
//!   data stream id, meter serial, unit of measure, interval length, next scheduled read date;
//! - `300` a day of one channel: date `YYYYMMDD`, one value per interval, quality-method,
//!   reason code, reason text, update date-time and MSATS load date-time (`YYYYMMDDHHMMSS`);
//! - `400` events of the preceding `300` day when its quality is `V` (variable): first and
//!   last interval of a run, quality-method, reason code, reason text;
//! - `500` B2B details (transaction code, retailer service order, read date-time, index read);
//! - `900` end of file.
//!
//! # Modules
//! - [`quality`]: the quality-method (`A`, `S14`, `E15`, `F17`, `N`, `V`).
//! - [`fields`]: splitting a record and checking one field at a time, errors naming the field.
//! - [`read`]: [`Nem12Reader`], fed one line at a time, so a caller can stream a file of any
//!   size twice (a check pass, then an import pass) without holding it.
//! - [`write`]: record lines from the same types, a mixed-quality day as `V` plus merged `400`
//!   runs.
//!
//! # Days and their length
//! NEM12 days are Australian market days of 24 hours. meterd also uses the format for local
//! days of utilities with daylight saving time, whose days have 23 or 25 hours (92 or 100
//! quarter hours). The reader therefore takes a day of 23, 24 or 25 hours of values and
//! reports the count ([`Day::values`]); the caller checks it against the local day it means.
//!
//! Values are exact decimals turned into `i64` micro-units (meterd's `Quantity`): more than six
//! decimals or a value beyond the `i64` range is refused.

pub mod fields;
pub mod quality;
pub mod read;
pub mod write;

use jiff::civil::{Date, DateTime};

pub use quality::{Quality, QualityMethod};
pub use read::Nem12Reader;
pub use write::{LINE_END, channel_line, day_lines, end_line, header_line, write_file};

/// Interval lengths a `200` record may give, in minutes (NEM12 has 5, 15 and 30; hourly AMI
/// data written by meterd uses 60).
pub const INTERVAL_MINUTES: [u16; 4] = [5, 15, 30, 60];

/// Most characters in a line: a 25-hour day of 5-minute values is 300 values of up to
/// [`fields::MAX_VALUE`] characters, well under this.
pub const MAX_LINE: usize = 16 * 1024;

/// Most fields in a record: a `300` record of a 25-hour day of 5-minute values
/// (2 + 300 + 5).
pub const MAX_FIELDS: usize = 2 + 300 + 5;

/// A line the reader refused: which line, which field, why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {field}: {detail}")]
pub struct Nem12Error {
    /// The line number the caller gave (1-based in practice).
    pub line: u64,
    /// The record field (or `record` for the record as a whole, `file` for the file).
    pub field: &'static str,
    pub detail: String,
}

impl Nem12Error {
    pub fn new(line: u64, field: &'static str, detail: impl Into<String>) -> Self {
        Nem12Error {
            line,
            field,
            detail: detail.into(),
        }
    }
}

impl From<Nem12Error> for crate::error::Error {
    fn from(e: Nem12Error) -> Self {
        crate::error::Error::invalid("NEM12", e.to_string())
    }
}

/// The `100` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// When the file was created (participant's local time, as the file gives it).
    pub created: DateTime,
    pub from_participant: String,
    pub to_participant: String,
}

/// A `200` record: the channel the following `300` days belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// National Metering Identifier (10 characters in the NEM).
    pub nmi: String,
    /// The NMI's suffixes (e.g. `E1B1`).
    pub nmi_configuration: String,
    pub register_id: String,
    /// This channel's suffix (`E1`, `B1`, ...).
    pub nmi_suffix: String,
    pub mdm_data_stream_id: String,
    pub meter_serial: String,
    /// Unit of measure (`KWH`, `KVARH`, ...).
    pub unit: String,
    /// 5, 15, 30 or 60.
    pub interval_minutes: u16,
    pub next_scheduled_read: Option<Date>,
}

impl Channel {
    /// Values in a day of `hours` hours.
    pub fn values_per_day(&self, hours: u16) -> usize {
        values_per_day(self.interval_minutes, hours)
    }
}

/// Values in a day of `hours` hours at `interval_minutes` (0 for a zero length).
pub fn values_per_day(interval_minutes: u16, hours: u16) -> usize {
    (usize::from(hours) * 60)
        .checked_div(usize::from(interval_minutes))
        .unwrap_or(0)
}

/// A `400` record: one run of intervals of a `V` day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalEvent {
    /// First interval of the run, 1-based.
    pub start: usize,
    /// Last interval of the run, inclusive.
    pub end: usize,
    pub quality: QualityMethod,
    pub reason_code: Option<u16>,
    pub reason_text: String,
}

/// The quality of one interval, with the reason given for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalQuality {
    pub quality: QualityMethod,
    pub reason_code: Option<u16>,
    pub reason_text: String,
}

impl IntervalQuality {
    /// A quality-method without a reason.
    pub fn new(quality: QualityMethod) -> Self {
        IntervalQuality {
            quality,
            reason_code: None,
            reason_text: String::new(),
        }
    }
}

/// A `300` record with its `400` records: one channel's day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    /// The line of the `300` record (0 for a day built to be written).
    pub line: u64,
    pub date: Date,
    /// One value per interval, in micro-units; 23, 24 or 25 hours of them.
    pub values: Vec<i64>,
    /// The day's quality-method: `V` when [`Day::events`] give it per run.
    pub quality: QualityMethod,
    pub reason_code: Option<u16>,
    pub reason_text: String,
    pub updated: Option<DateTime>,
    pub msats_loaded: Option<DateTime>,
    /// The `400` records, in order, covering every interval exactly once; empty unless the
    /// quality is `V`.
    pub events: Vec<IntervalEvent>,
}

impl Day {
    /// A day from one quality per interval: all equal gives that quality on the `300`
    /// record; mixed gives `V` and one `400` event per run of equal quality and reason.
    /// Refused: a count of qualities other than the count of values, or a `V` among them.
    pub fn from_intervals(
        date: Date,
        values: Vec<i64>,
        qualities: &[IntervalQuality],
    ) -> Result<Day, crate::error::Error> {
        use crate::error::Error;
        if qualities.len() != values.len() {
            return Err(Error::invalid(
                "quality-method",
                format!("{} qualities for {} values", qualities.len(), values.len()),
            ));
        }
        if qualities.iter().any(|q| q.quality.quality == Quality::Variable) {
            return Err(Error::invalid("quality-method", "an interval's quality cannot be V"));
        }
        let mut runs: Vec<IntervalEvent> = Vec::new();
        for (i, q) in qualities.iter().enumerate() {
            match runs.last_mut() {
                Some(run)
                    if run.quality == q.quality
                        && run.reason_code == q.reason_code
                        && run.reason_text == q.reason_text =>
                {
                    run.end = i + 1;
                }
                _ => runs.push(IntervalEvent {
                    start: i + 1,
                    end: i + 1,
                    quality: q.quality,
                    reason_code: q.reason_code,
                    reason_text: q.reason_text.clone(),
                }),
            }
        }
        let mut day = Day {
            line: 0,
            date,
            values,
            quality: QualityMethod::new(Quality::Actual, None),
            reason_code: None,
            reason_text: String::new(),
            updated: None,
            msats_loaded: None,
            events: Vec::new(),
        };
        match runs.len() {
            0 => {}
            1 => {
                if let Some(run) = runs.pop() {
                    day.quality = run.quality;
                    day.reason_code = run.reason_code;
                    day.reason_text = run.reason_text;
                }
            }
            _ => {
                day.quality = QualityMethod::new(Quality::Variable, None);
                day.events = runs;
            }
        }
        Ok(day)
    }

    /// Each interval's quality and reason: the day's own, or for a `V` day the `400` event
    /// covering it. An interval no event covers (only possible in a hand-built day) gets `V`.
    pub fn interval_qualities(&self) -> Vec<IntervalQuality> {
        if self.quality.quality != Quality::Variable {
            let q = IntervalQuality {
                quality: self.quality,
                reason_code: self.reason_code,
                reason_text: self.reason_text.clone(),
            };
            return vec![q; self.values.len()];
        }
        let mut out = vec![IntervalQuality::new(self.quality); self.values.len()];
        for e in &self.events {
            let start = e.start.saturating_sub(1);
            let end = e.end.min(out.len());
            for q in out.get_mut(start..end).into_iter().flatten() {
                *q = IntervalQuality {
                    quality: e.quality,
                    reason_code: e.reason_code,
                    reason_text: e.reason_text.clone(),
                };
            }
        }
        out
    }
}

/// A `500` record (B2B details), kept as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct B2bDetails {
    pub transaction_code: String,
    pub retailer_service_order: String,
    pub read_time: Option<DateTime>,
    pub index_read: String,
}

/// What the reader gives back, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nem12Event {
    Header(Header),
    Channel(Channel),
    /// A complete day: the `300` record and its `400` records.
    Day(Day),
    B2b(B2bDetails),
    /// The `900` record.
    End,
}

#[cfg(test)]
mod tests;
