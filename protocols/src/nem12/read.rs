//! The NEM12 reader: lines in, events out, one line at a time.
//!
//! The reader holds one day at most (the `300` record waiting for its `400` records), so a
//! file of any size streams through it; a caller can run a check pass and then an import pass
//! over the same file without holding it. A `300` day is given back once the next record
//! that is not a `400` arrives, so the caller always gets a complete day.
//!
//! Checks, each error naming the line and the field:
//! - the first record is a `100` header of version `NEM12`, the last a `900`, nothing after;
//! - a `300` day follows a `200` channel, its value count is 23, 24 or 25 hours of the
//!   channel's interval length, every value an exact decimal of at most six places;
//! - `400` records follow a `V` day only, are not `V` themselves, and cover its intervals
//!   from the first to the last in order, without gap or overlap; a `V` day has them;
//! - every record has its record type's number of fields, every field its size limit.
//!
//! Blank lines are skipped. A line may keep its `\r\n` or `\n` ending. After an error the
//! reader's state is unspecified: stop reading.

use super::fields::{self, Record};
use super::{
    B2bDetails, Channel, Day, Header, INTERVAL_MINUTES, IntervalEvent, Nem12Error, Nem12Event, Quality, values_per_day,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// No `100` header yet.
    Start,
    /// After the header, before the `900`.
    Body,
    /// After the `900`.
    Ended,
}

/// Streaming NEM12 reader; see the module documentation.
#[derive(Debug)]
pub struct Nem12Reader {
    stage: Stage,
    /// The current channel's interval length.
    interval_minutes: Option<u16>,
    /// The last `300` day, waiting for its `400` records.
    pending: Option<Day>,
    last_line: u64,
}

impl Default for Nem12Reader {
    fn default() -> Self {
        Self::new()
    }
}

impl Nem12Reader {
    pub fn new() -> Self {
        Nem12Reader {
            stage: Stage::Start,
            interval_minutes: None,
            pending: None,
            last_line: 0,
        }
    }

    /// Read one line. Gives back the events it completes, in file order: none (a `300` day
    /// waits for its `400` records; a `400` record; a blank line), one, or two (the waiting
    /// day, then the record that closed it).
    pub fn push_line(&mut self, line_no: u64, line: &str) -> Result<Vec<Nem12Event>, Nem12Error> {
        self.last_line = line_no;
        let rec = fields::split(line_no, line)?;
        if rec.fields.len() == 1 && rec.indicator().trim().is_empty() {
            return Ok(Vec::new());
        }
        if self.stage == Stage::Ended {
            return Err(Nem12Error::new(line_no, "record", "a record after the 900 end record"));
        }
        if self.stage == Stage::Start && rec.indicator() != "100" {
            return Err(Nem12Error::new(
                line_no,
                "record indicator",
                format!(
                    "the file must begin with a 100 header, found {:?}",
                    rec.indicator().chars().take(8).collect::<String>()
                ),
            ));
        }
        let mut out = Vec::new();
        match rec.indicator() {
            "100" => {
                if self.stage != Stage::Start {
                    return Err(Nem12Error::new(line_no, "record indicator", "a second 100 header"));
                }
                out.push(Nem12Event::Header(header(&rec)?));
                self.stage = Stage::Body;
            }
            "200" => {
                self.flush(&mut out)?;
                let c = channel(&rec)?;
                self.interval_minutes = Some(c.interval_minutes);
                out.push(Nem12Event::Channel(c));
            }
            "300" => {
                self.flush(&mut out)?;
                let Some(minutes) = self.interval_minutes else {
                    return Err(Nem12Error::new(
                        line_no,
                        "record indicator",
                        "a 300 interval day before any 200 channel",
                    ));
                };
                self.pending = Some(day(&rec, minutes)?);
            }
            "400" => {
                let Some(day) = self.pending.as_mut() else {
                    return Err(Nem12Error::new(
                        line_no,
                        "record indicator",
                        "a 400 event without a 300 day before it",
                    ));
                };
                let e = event(&rec)?;
                attach(day, e, line_no)?;
            }
            "500" => {
                self.flush(&mut out)?;
                out.push(Nem12Event::B2b(b2b(&rec)?));
            }
            "900" => {
                self.flush(&mut out)?;
                rec.expect_fields(&[1])?;
                self.stage = Stage::Ended;
                out.push(Nem12Event::End);
            }
            other => {
                return Err(Nem12Error::new(
                    line_no,
                    "record indicator",
                    format!("unknown record {:?}", other.chars().take(8).collect::<String>()),
                ));
            }
        }
        Ok(out)
    }

    /// The file has ended: refused unless it had its `100` header and `900` end record.
    pub fn finish(&mut self) -> Result<(), Nem12Error> {
        match self.stage {
            Stage::Ended => Ok(()),
            Stage::Start => Err(Nem12Error::new(self.last_line, "file", "no 100 header")),
            Stage::Body => Err(Nem12Error::new(self.last_line, "file", "no 900 end record")),
        }
    }

    /// Give back the waiting day, checking a `V` day's `400` records reach its last interval.
    fn flush(&mut self, out: &mut Vec<Nem12Event>) -> Result<(), Nem12Error> {
        let Some(day) = self.pending.take() else {
            return Ok(());
        };
        if day.quality.quality == Quality::Variable {
            let covered = day.events.last().map_or(0, |e| e.end);
            if day.events.is_empty() {
                return Err(Nem12Error::new(
                    day.line,
                    "quality-method",
                    "a V day without 400 records",
                ));
            }
            if covered != day.values.len() {
                return Err(Nem12Error::new(
                    day.line,
                    "400 records",
                    format!("cover intervals 1 to {covered} of the day's {}", day.values.len()),
                ));
            }
        }
        out.push(Nem12Event::Day(day));
        Ok(())
    }
}

fn header(rec: &Record<'_>) -> Result<Header, Nem12Error> {
    rec.expect_fields(&[5])?;
    if rec.get(1, "version header")? != "NEM12" {
        return Err(Nem12Error::new(
            rec.line,
            "version header",
            format!(
                "{:?} is not NEM12",
                rec.text(1, "version header", 8, false).unwrap_or_default()
            ),
        ));
    }
    Ok(Header {
        created: rec
            .datetime(2, "date-time", false, true)?
            .ok_or_else(|| Nem12Error::new(rec.line, "date-time", "empty"))?,
        from_participant: rec.text(3, "from participant", fields::MAX_PARTICIPANT, false)?,
        to_participant: rec.text(4, "to participant", fields::MAX_PARTICIPANT, false)?,
    })
}

fn channel(rec: &Record<'_>) -> Result<Channel, Nem12Error> {
    rec.expect_fields(&[9, 10])?;
    let minutes = rec.number(8, "interval length", 60)?;
    let interval_minutes = u16::try_from(minutes)
        .ok()
        .filter(|m| INTERVAL_MINUTES.contains(m))
        .ok_or_else(|| Nem12Error::new(rec.line, "interval length", format!("{minutes} is not 5, 15, 30 or 60")))?;
    let next_scheduled_read = if rec.fields.len() == 10 {
        rec.date(9, "next scheduled read date", false)?
    } else {
        None
    };
    Ok(Channel {
        nmi: rec.text(1, "NMI", fields::MAX_NMI, true)?,
        nmi_configuration: rec.text(2, "NMI configuration", fields::MAX_NMI_CONFIGURATION, false)?,
        register_id: rec.text(3, "register id", fields::MAX_REGISTER_ID, false)?,
        nmi_suffix: rec.text(4, "NMI suffix", fields::MAX_SUFFIX, true)?,
        mdm_data_stream_id: rec.text(5, "MDM data stream id", fields::MAX_SUFFIX, false)?,
        meter_serial: rec.text(6, "meter serial", fields::MAX_METER_SERIAL, false)?,
        unit: rec.text(7, "unit of measure", fields::MAX_UNIT, true)?,
        interval_minutes,
        next_scheduled_read,
    })
}

fn day(rec: &Record<'_>, minutes: u16) -> Result<Day, Nem12Error> {
    let allowed = [23, 24, 25].map(|h| values_per_day(minutes, h));
    let n = rec.fields.len().saturating_sub(7);
    if rec.fields.len() < 7 || !allowed.contains(&n) {
        return Err(Nem12Error::new(
            rec.line,
            "interval values",
            format!(
                "{n} values; a day of {minutes}-minute intervals has {}, {} or {} (23, 24 or 25 hours)",
                allowed[0], allowed[1], allowed[2]
            ),
        ));
    }
    let date = rec
        .date(1, "interval date", true)?
        .ok_or_else(|| Nem12Error::new(rec.line, "interval date", "empty"))?;
    let values = (0..n).map(|i| rec.value(2 + i, i + 1)).collect::<Result<Vec<_>, _>>()?;
    Ok(Day {
        line: rec.line,
        date,
        values,
        quality: rec.quality(2 + n)?,
        reason_code: rec.reason_code(3 + n)?,
        reason_text: rec.text(4 + n, "reason text", fields::MAX_REASON_TEXT, false)?,
        updated: rec.datetime(5 + n, "update date-time", true, false)?,
        msats_loaded: rec.datetime(6 + n, "MSATS load date-time", true, false)?,
        events: Vec::new(),
    })
}

fn event(rec: &Record<'_>) -> Result<IntervalEvent, Nem12Error> {
    rec.expect_fields(&[6])?;
    let max = super::MAX_FIELDS as u64;
    let start = rec.number(1, "start interval", max)? as usize;
    let end = rec.number(2, "end interval", max)? as usize;
    Ok(IntervalEvent {
        start,
        end,
        quality: rec.quality(3)?,
        reason_code: rec.reason_code(4)?,
        reason_text: rec.text(5, "reason text", fields::MAX_REASON_TEXT, false)?,
    })
}

/// Add a `400` event to its day: the day must be `V`, the event not, and the event must start
/// right after the previous one and stay inside the day.
fn attach(day: &mut Day, e: IntervalEvent, line: u64) -> Result<(), Nem12Error> {
    if day.quality.quality != Quality::Variable {
        return Err(Nem12Error::new(
            line,
            "record indicator",
            format!("a 400 event after a {} day (only a V day has them)", day.quality),
        ));
    }
    if e.quality.quality == Quality::Variable {
        return Err(Nem12Error::new(line, "quality-method", "a 400 event cannot be V"));
    }
    if e.start == 0 {
        return Err(Nem12Error::new(line, "start interval", "0: intervals count from 1"));
    }
    let next = day.events.last().map_or(1, |p| p.end + 1);
    if e.start < next {
        return Err(Nem12Error::new(
            line,
            "start interval",
            format!("{} overlaps the previous event (next free interval {next})", e.start),
        ));
    }
    if e.start > next {
        return Err(Nem12Error::new(
            line,
            "start interval",
            format!(
                "{} leaves intervals {next} to {} without an event",
                e.start,
                e.start - 1
            ),
        ));
    }
    if e.end < e.start {
        return Err(Nem12Error::new(
            line,
            "end interval",
            format!("{} is before the start interval {}", e.end, e.start),
        ));
    }
    if e.end > day.values.len() {
        return Err(Nem12Error::new(
            line,
            "end interval",
            format!("{} is beyond the day's {} intervals", e.end, day.values.len()),
        ));
    }
    day.events.push(e);
    Ok(())
}

fn b2b(rec: &Record<'_>) -> Result<B2bDetails, Nem12Error> {
    rec.expect_fields(&[5])?;
    Ok(B2bDetails {
        transaction_code: rec.text(1, "transaction code", fields::MAX_B2B_TEXT, false)?,
        retailer_service_order: rec.text(2, "retailer service order", fields::MAX_B2B_TEXT, false)?,
        read_time: rec.datetime(3, "read date-time", true, false)?,
        index_read: rec.text(4, "index read", fields::MAX_B2B_TEXT, false)?,
    })
}
