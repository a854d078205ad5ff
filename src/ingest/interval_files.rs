//! Interval data files: AEMO NEM12 and CMEP MEPMD01 interval records, imported as
//! meter-channel-days.
//!
//! Like `reads import`, a file is checked whole before anything is stored, and a bad one is
//! refused naming the line and field. Memory stays bounded whatever the file's size: the file is
//! read twice as a stream ([`Source`]: a client's upload the daemon spooled, a local file, or
//! bytes), line by line (a line over [`MAX_LINE`] is refused, not held): the first pass checks
//! every record (the format's rules, each day's number of values against its local day,
//! interval boundaries), the second turns records into [`IncomingDay`]s and commits them in
//! chunks. Facts on the layouts: `interval-data.md` §4.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use meterd_protocols::cmep::{self, Mepmd01};
use meterd_protocols::nem12::{self, Nem12Event, Nem12Reader};

use super::intervals::{IncomingDay, IncomingValue, IntervalReport, accept_interval_days};
use super::source::{Source, next_line};
use crate::model::Quantity;
use crate::model::interval::{Channel, DayClock, Direction, INTERVAL_MINUTES, Method, Quality};
use crate::model::limits;
use crate::store::{Store, StoreError};
use crate::vee::interval::IntervalConfig;

/// The formats `intervals import` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalFormat {
    Nem12,
    Cmep,
}

impl IntervalFormat {
    pub fn name(self) -> &'static str {
        match self {
            IntervalFormat::Nem12 => "nem12",
            IntervalFormat::Cmep => "cmep",
        }
    }
}

/// Why an interval file was refused.
#[derive(Debug, thiserror::Error)]
pub enum IntervalFileError {
    #[error("{file}, line {line}, field {field}: {message}")]
    Field {
        file: String,
        line: u64,
        field: String,
        message: String,
    },
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::store::Retryable for IntervalFileError {
    fn is_retryable(&self) -> bool {
        matches!(self, IntervalFileError::Store(e) if e.is_retryable())
    }
}

/// Bytes a line of an interval file may have: a day of 5-minute values with qualities is a few
/// KiB; a longer line is refused without being held.
pub const MAX_LINE: usize = 1 << 20;

/// The lines of a file with their 1-based numbers; CR LF or LF; blank lines skipped.
struct Lines<'s> {
    file: String,
    input: Box<dyn std::io::BufRead + 's>,
    buf: Vec<u8>,
    line: u64,
}

impl<'s> Lines<'s> {
    fn open(file: &str, src: &'s dyn Source) -> Result<Self, IntervalFileError> {
        let input = src.open().map_err(|e| IntervalFileError::File {
            file: file.into(),
            message: e.to_string(),
        })?;
        Ok(Lines {
            file: file.to_owned(),
            input,
            buf: Vec::new(),
            line: 0,
        })
    }
}

impl Iterator for Lines<'_> {
    type Item = Result<(u64, String), IntervalFileError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let len = match next_line(&mut *self.input, &mut self.buf, MAX_LINE) {
                Ok(Some(len)) => len,
                Ok(None) => return None,
                Err(e) => {
                    return Some(Err(IntervalFileError::File {
                        file: self.file.clone(),
                        message: e.to_string(),
                    }));
                }
            };
            self.line += 1;
            let line = self.line;
            if len > MAX_LINE as u64 {
                return Some(Err(IntervalFileError::Field {
                    file: self.file.clone(),
                    line,
                    field: "record".into(),
                    message: format!("{len} bytes long; a line has at most {} MiB", MAX_LINE >> 20),
                }));
            }
            if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            return Some(
                std::str::from_utf8(&self.buf)
                    .map(|s| (line, s.to_owned()))
                    .map_err(|e| IntervalFileError::Field {
                        file: self.file.clone(),
                        line,
                        field: "record".into(),
                        message: format!("not UTF-8 text ({e})"),
                    }),
            );
        }
    }
}

fn lines<'s>(file: &str, src: &'s dyn Source) -> Result<Lines<'s>, IntervalFileError> {
    Lines::open(file, src)
}

/// The format of a file from its first record.
pub fn detect(file: &str, bytes: &[u8]) -> Result<IntervalFormat, IntervalFileError> {
    detect_source(file, &bytes)
}

/// [`detect`] of a source.
pub fn detect_source(file: &str, src: &dyn Source) -> Result<IntervalFormat, IntervalFileError> {
    let Some(first) = lines(file, src)?.next() else {
        return Err(IntervalFileError::File {
            file: file.into(),
            message: "the file is empty".into(),
        });
    };
    let (line, text) = first?;
    let tag = text.split(',').next().unwrap_or("").trim().trim_matches('"');
    match tag {
        "100" => Ok(IntervalFormat::Nem12),
        cmep::MEPMD01 => Ok(IntervalFormat::Cmep),
        other => Err(IntervalFileError::Field {
            file: file.into(),
            line,
            field: "record type".into(),
            message: format!(
                "{:?} starts neither a NEM12 file (100 header) nor a CMEP file (MEPMD01 records); name the format \
                 with --format",
                limits::quote(other)
            ),
        }),
    }
}

/// Checks `bytes` whole, then stores its days in chunks of `chunk` days, each chunk one
/// durable transaction; `progress` hears the running totals after each commit.
pub fn import_bytes(
    store: &dyn Store,
    config: &IntervalConfig,
    file: &str,
    bytes: &[u8],
    format: Option<IntervalFormat>,
    chunk: usize,
    progress: &mut dyn FnMut(&IntervalReport),
) -> Result<IntervalReport, IntervalFileError> {
    import(store, config, file, &bytes, format, chunk, progress)
}

/// [`import_bytes`] of a source (the daemon: a client's upload it spooled; in process: the
/// file), read twice as a stream.
pub fn import(
    store: &dyn Store,
    config: &IntervalConfig,
    file: &str,
    bytes: &dyn Source,
    format: Option<IntervalFormat>,
    chunk: usize,
    progress: &mut dyn FnMut(&IntervalReport),
) -> Result<IntervalReport, IntervalFileError> {
    let tz = config.time_zone().map_err(|message| IntervalFileError::File {
        file: file.into(),
        message,
    })?;
    let clock = DayClock::new(tz);
    let format = match format {
        Some(f) => f,
        None => detect_source(file, bytes)?,
    };
    // First pass: check everything, store nothing.
    read_days(file, bytes, format, &clock, &mut |_| Ok(()), &|c| Ok(c.nmi.clone()))?;
    // Second pass: store, in chunks.
    let mut total = IntervalReport::default();
    let mut pending: Vec<IncomingDay> = Vec::new();
    let names = MeterNames { store };
    let mut flush = |pending: &mut Vec<IncomingDay>, total: &mut IntervalReport| -> Result<(), IntervalFileError> {
        if pending.is_empty() {
            return Ok(());
        }
        let r = accept_interval_days(store, config, &clock, pending)?;
        pending.clear();
        total.add(&r);
        progress(total);
        Ok(())
    };
    read_days(
        file,
        bytes,
        format,
        &clock,
        &mut |day| {
            pending.push(day);
            if pending.len() >= chunk.max(1) {
                flush(&mut pending, &mut total)?;
            }
            Ok(())
        },
        &|c| names.resolve(c),
    )?;
    flush(&mut pending, &mut total)?;
    Ok(total)
}

/// Which meter id a NEM12 channel names: the NMI when a meter has it, else the meter serial
/// when a meter has that, else the NMI.
struct MeterNames<'a> {
    store: &'a dyn Store,
}

impl MeterNames<'_> {
    fn resolve(&self, c: &nem12::Channel) -> Result<String, StoreError> {
        let txn = self.store.begin_read()?;
        if txn.meter(&c.nmi)?.is_some() || c.meter_serial.is_empty() {
            return Ok(c.nmi.clone());
        }
        if txn.meter(&c.meter_serial)?.is_some() {
            return Ok(c.meter_serial.clone());
        }
        Ok(if c.nmi.is_empty() {
            c.meter_serial.clone()
        } else {
            c.nmi.clone()
        })
    }
}

type DaySink<'s> = dyn FnMut(IncomingDay) -> Result<(), IntervalFileError> + 's;
type MeterOf<'s> = dyn Fn(&nem12::Channel) -> Result<String, StoreError> + 's;

fn read_days(
    file: &str,
    bytes: &dyn Source,
    format: IntervalFormat,
    clock: &DayClock,
    sink: &mut DaySink<'_>,
    meter_of: &MeterOf<'_>,
) -> Result<(), IntervalFileError> {
    match format {
        IntervalFormat::Nem12 => read_nem12(file, bytes, clock, sink, meter_of),
        IntervalFormat::Cmep => read_cmep(file, bytes, clock, sink),
    }
}

fn field_error(file: &str, line: u64, field: &str, message: impl Into<String>) -> IntervalFileError {
    IntervalFileError::Field {
        file: file.into(),
        line,
        field: field.into(),
        message: message.into(),
    }
}

/// A unit as meterd writes it (`KWH` → `kWh`, `M3` → `m3`); others as given, lower case.
pub fn unit_name(unit: &str) -> String {
    match unit.trim().to_ascii_uppercase().as_str() {
        "KWH" => "kWh".into(),
        "KVARH" => "kvarh".into(),
        "KW" => "kW".into(),
        "WH" => "Wh".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// NEM12 suffixes: `E`, `Q` import (delivered), `B`, `K` export (received) (AEMO NMI
/// suffix rules).
fn nem12_direction(suffix: &str) -> Direction {
    match suffix.chars().next() {
        Some('B' | 'K' | 'b' | 'k') => Direction::Received,
        _ => Direction::Delivered,
    }
}

fn nem12_quality(q: nem12::QualityMethod) -> (Quality, Option<Method>) {
    let method = q.method.map(Method::from_nem12);
    match q.quality {
        nem12::Quality::Actual => (Quality::Actual, None),
        nem12::Quality::Estimated => (Quality::Estimated, method.or(Some(Method::Source(0)))),
        nem12::Quality::Substituted => (Quality::Substituted, method),
        nem12::Quality::Final => (Quality::Edited, method),
        nem12::Quality::Null | nem12::Quality::Variable => (Quality::Missing, None),
    }
}

fn read_nem12(
    file: &str,
    bytes: &dyn Source,
    clock: &DayClock,
    sink: &mut DaySink<'_>,
    meter_of: &MeterOf<'_>,
) -> Result<(), IntervalFileError> {
    let mut reader = Nem12Reader::new();
    let mut channel: Option<(Channel, u16, u64)> = None;
    let nem = |e: nem12::Nem12Error| field_error(file, e.line, e.field, e.detail);
    let mut handle = |event: Nem12Event, channel: &mut Option<(Channel, u16, u64)>| -> Result<(), IntervalFileError> {
        match event {
            Nem12Event::Channel(c) => {
                let meter_id = meter_of(&c)?;
                let name = if c.nmi_suffix.is_empty() {
                    c.unit.clone()
                } else {
                    c.nmi_suffix.clone()
                };
                *channel = Some((
                    Channel {
                        meter_id,
                        channel: name,
                        unit: unit_name(&c.unit),
                        direction: nem12_direction(&c.nmi_suffix),
                    },
                    c.interval_minutes,
                    0,
                ));
            }
            Nem12Event::Day(day) => {
                let Some((ch, minutes, _)) = channel.as_ref() else {
                    return Err(field_error(
                        file,
                        day.line,
                        "record",
                        "a 300 record before any 200 record",
                    ));
                };
                let expected = clock.intervals_in_day(day.date, *minutes).unwrap_or(0);
                if day.values.len() != expected {
                    return Err(field_error(
                        file,
                        day.line,
                        "interval values",
                        format!(
                            "{} values of {minutes} minutes, but the local day {} has {expected}",
                            day.values.len(),
                            day.date
                        ),
                    ));
                }
                let qualities = day.interval_qualities();
                let mut values = Vec::with_capacity(day.values.len());
                for (i, (v, q)) in day.values.iter().zip(&qualities).enumerate() {
                    let (quality, method) = nem12_quality(q.quality);
                    if quality == Quality::Missing {
                        continue;
                    }
                    values.push(IncomingValue {
                        interval: (i + 1) as u16,
                        value: Quantity::from_micros(*v),
                        quality,
                        method,
                    });
                }
                // Intervals whose reason is a power outage alarm: never interpolation end points.
                let outages: Vec<u16> = qualities
                    .iter()
                    .enumerate()
                    .filter(|(_, q)| q.reason_code == Some(POWER_OUTAGE_REASON))
                    .map(|(i, _)| (i + 1) as u16)
                    .collect();
                sink(IncomingDay {
                    channel: ch.clone(),
                    date: day.date,
                    interval_minutes: *minutes,
                    values,
                    outages,
                    source: format!("nem12 {file} line {}", day.line),
                })?;
            }
            Nem12Event::Header(_) | Nem12Event::B2b(_) | Nem12Event::End => {}
        }
        Ok(())
    };
    for l in lines(file, bytes)? {
        let (n, text) = l?;
        for event in reader.push_line(n, &text).map_err(nem)? {
            handle(event, &mut channel)?;
        }
    }
    reader.finish().map_err(nem)?;
    Ok(())
}

/// The NEM12 reason code "Power Outage Alarm" (AEMO MDFF reason code list, code 79; as used by
/// the nemwriter package's example).
pub const POWER_OUTAGE_REASON: u16 = 79;

fn read_cmep(
    file: &str,
    bytes: &dyn Source,
    clock: &DayClock,
    sink: &mut DaySink<'_>,
) -> Result<(), IntervalFileError> {
    // Days of the records seen so far, sent on when a record of another meter or channel
    // comes (a head-end writes a meter's records together) and at the end: memory holds one
    // meter-channel's days at a time.
    let mut open: BTreeMap<Date, IncomingDay> = BTreeMap::new();
    let mut open_key: Option<(String, String)> = None;
    for l in lines(file, bytes)? {
        let (n, text) = l?;
        let record = Mepmd01::parse(&text).map_err(|e| cmep_error(file, n, e))?;
        if cmep::interval::is_register_units(&record.units) {
            return Err(field_error(
                file,
                n,
                "units",
                format!(
                    "{} are register units: import register reads with `meterd reads import`",
                    limits::quote(&record.units)
                ),
            ));
        }
        let minutes = cmep::interval_minutes(&record.interval).map_err(|e| cmep_error(file, n, e))?;
        let minutes = u16::try_from(minutes)
            .ok()
            .filter(|m| INTERVAL_MINUTES.contains(m))
            .ok_or_else(|| field_error(file, n, "interval", format!("{minutes} minutes is not 5, 15, 30 or 60")))?;
        let values = cmep::interval::interval_values(&record).map_err(|e| cmep_error(file, n, e))?;
        let key = (record.meter_id.clone(), record.units.clone());
        if open_key.as_ref() != Some(&key) {
            for (_, d) in std::mem::take(&mut open) {
                sink(d)?;
            }
            open_key = Some(key);
        }
        let channel = Channel {
            meter_id: record.meter_id.clone(),
            channel: record.units.clone(),
            unit: unit_name(&record.units),
            direction: Direction::Delivered,
        };
        for v in values {
            let Some(value) = v.value else { continue };
            let start = v
                .end
                .checked_sub(SignedDuration::from_mins(i64::from(minutes)))
                .unwrap_or(Timestamp::MIN);
            let (date, number) = clock.locate(start, minutes).ok_or_else(|| {
                field_error(
                    file,
                    n,
                    "date/time",
                    format!(
                        "{} is not on a {minutes}-minute interval boundary of the local day",
                        v.end
                    ),
                )
            })?;
            let (quality, method) = match v.flag {
                cmep::interval::IntervalFlag::Estimated => (Quality::Estimated, Some(Method::Source(0))),
                // CMEP's "adjusted" is a person's change: meterd's edited (F), as it writes them.
                cmep::interval::IntervalFlag::Adjusted => (Quality::Edited, None),
                _ => (Quality::Actual, None),
            };
            let day = open.entry(date).or_insert_with(|| IncomingDay {
                channel: channel.clone(),
                date,
                interval_minutes: minutes,
                values: Vec::new(),
                outages: Vec::new(),
                source: format!("cmep {file} line {n}"),
            });
            if day.interval_minutes != minutes {
                return Err(field_error(
                    file,
                    n,
                    "interval",
                    format!(
                        "{minutes} minutes, but earlier records of {date} have {}",
                        day.interval_minutes
                    ),
                ));
            }
            day.values.push(IncomingValue {
                interval: number,
                value: Quantity::from_micros(value),
                quality,
                method,
            });
        }
    }
    for (_, d) in open {
        sink(d)?;
    }
    Ok(())
}

fn cmep_error(file: &str, line: u64, e: meterd_protocols::Error) -> IntervalFileError {
    match e {
        meterd_protocols::Error::Invalid { field, detail } => field_error(file, line, field, detail),
        other => field_error(file, line, "record", other.to_string()),
    }
}
