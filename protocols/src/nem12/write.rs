//! NEM12 record lines from [`Header`], [`Channel`] and [`Day`].
//!
//! Lines are given back without their ending; [`write_file`] joins them with CR LF
//! ([`LINE_END`]), the ending NEM12 files carry in practice (the reader takes both). Values
//! are written as the shortest exact decimal (`1.5`, `0`, `12.345`). A day of mixed quality is
//! written as a `V` day with one `400` record per run ([`Day::from_intervals`] builds one).
//! Every line written is one the reader takes back: the same checks apply (field sizes,
//! value counts, `400` runs covering the day), and text holding a comma or a line break is
//! refused rather than quoted, as NEM12 has no quoting.

use std::fmt::Write as _;

use super::fields;
use super::{Channel, Day, Header, INTERVAL_MINUTES, Quality, values_per_day};
use crate::decimal::format_micros;
use crate::error::{Error, Result};

/// The line ending [`write_file`] uses.
pub const LINE_END: &str = "\r\n";

fn text<'a>(field: &'static str, t: &'a str, max: usize, required: bool) -> Result<&'a str> {
    if t.chars().count() > max {
        return Err(Error::invalid(field, format!("longer than {max} characters")));
    }
    if required && t.is_empty() {
        return Err(Error::invalid(field, "empty"));
    }
    if t.contains([',', '\r', '\n']) {
        return Err(Error::invalid(field, format!("{t:?} holds a comma or a line break")));
    }
    Ok(t)
}

fn reason(code: Option<u16>) -> Result<String> {
    match code {
        None => Ok(String::new()),
        Some(c) if c <= fields::MAX_REASON_CODE => Ok(c.to_string()),
        Some(c) => Err(Error::invalid(
            "reason code",
            format!("{c} is more than {}", fields::MAX_REASON_CODE),
        )),
    }
}

/// The `100` record.
pub fn header_line(h: &Header) -> Result<String> {
    Ok(format!(
        "100,NEM12,{},{},{}",
        h.created.strftime("%Y%m%d%H%M"),
        text("from participant", &h.from_participant, fields::MAX_PARTICIPANT, false)?,
        text("to participant", &h.to_participant, fields::MAX_PARTICIPANT, false)?,
    ))
}

/// The `200` record.
pub fn channel_line(c: &Channel) -> Result<String> {
    if !INTERVAL_MINUTES.contains(&c.interval_minutes) {
        return Err(Error::invalid(
            "interval length",
            format!("{} is not 5, 15, 30 or 60", c.interval_minutes),
        ));
    }
    Ok(format!(
        "200,{},{},{},{},{},{},{},{},{}",
        text("NMI", &c.nmi, fields::MAX_NMI, true)?,
        text(
            "NMI configuration",
            &c.nmi_configuration,
            fields::MAX_NMI_CONFIGURATION,
            false
        )?,
        text("register id", &c.register_id, fields::MAX_REGISTER_ID, false)?,
        text("NMI suffix", &c.nmi_suffix, fields::MAX_SUFFIX, true)?,
        text("MDM data stream id", &c.mdm_data_stream_id, fields::MAX_SUFFIX, false)?,
        text("meter serial", &c.meter_serial, fields::MAX_METER_SERIAL, false)?,
        text("unit of measure", &c.unit, fields::MAX_UNIT, true)?,
        c.interval_minutes,
        c.next_scheduled_read
            .map(|d| d.strftime("%Y%m%d").to_string())
            .unwrap_or_default(),
    ))
}

/// The `300` record of a day of a channel with `interval_minutes` intervals, then its `400`
/// records.
pub fn day_lines(interval_minutes: u16, d: &Day) -> Result<Vec<String>> {
    let allowed = [23, 24, 25].map(|h| values_per_day(interval_minutes, h));
    if !INTERVAL_MINUTES.contains(&interval_minutes) || !allowed.contains(&d.values.len()) {
        return Err(Error::invalid(
            "interval values",
            format!(
                "{} values do not make a day of {interval_minutes}-minute intervals",
                d.values.len()
            ),
        ));
    }
    check_events(d)?;
    let mut line = String::with_capacity(32 + 8 * d.values.len());
    let _ = write!(line, "300,{}", d.date.strftime("%Y%m%d"));
    for v in &d.values {
        line.push(',');
        line.push_str(&format_micros(*v));
    }
    let stamp =
        |t: &Option<jiff::civil::DateTime>| t.map(|t| t.strftime("%Y%m%d%H%M%S").to_string()).unwrap_or_default();
    let _ = write!(
        line,
        ",{},{},{},{},{}",
        d.quality,
        reason(d.reason_code)?,
        text("reason text", &d.reason_text, fields::MAX_REASON_TEXT, false)?,
        stamp(&d.updated),
        stamp(&d.msats_loaded),
    );
    let mut out = vec![line];
    for e in &d.events {
        out.push(format!(
            "400,{},{},{},{},{}",
            e.start,
            e.end,
            e.quality,
            reason(e.reason_code)?,
            text("reason text", &e.reason_text, fields::MAX_REASON_TEXT, false)?,
        ));
    }
    Ok(out)
}

/// A `V` day's events cover it in order; any other day has none.
fn check_events(d: &Day) -> Result<()> {
    if d.quality.quality != Quality::Variable {
        if !d.events.is_empty() {
            return Err(Error::invalid(
                "400 records",
                format!("a {} day has no 400 records", d.quality),
            ));
        }
        return Ok(());
    }
    let mut next = 1;
    for e in &d.events {
        if e.quality.quality == Quality::Variable {
            return Err(Error::invalid("quality-method", "a 400 event cannot be V"));
        }
        if e.start != next || e.end < e.start || e.end > d.values.len() {
            return Err(Error::invalid(
                "400 records",
                format!(
                    "event {}..={} does not continue at interval {next} inside the day's {}",
                    e.start,
                    e.end,
                    d.values.len()
                ),
            ));
        }
        next = e.end + 1;
    }
    if next != d.values.len() + 1 {
        return Err(Error::invalid(
            "400 records",
            format!("cover intervals 1 to {} of the day's {}", next - 1, d.values.len()),
        ));
    }
    Ok(())
}

/// The `900` record.
pub fn end_line() -> &'static str {
    "900"
}

/// A whole file: the header, each channel with its days, the end record; lines joined and
/// ended with CR LF.
pub fn write_file(header: &Header, channels: &[(Channel, Vec<Day>)]) -> Result<String> {
    let mut out = String::new();
    let mut push = |line: &str| {
        out.push_str(line);
        out.push_str(LINE_END);
    };
    push(&header_line(header)?);
    for (c, days) in channels {
        push(&channel_line(c)?);
        for d in days {
            for line in day_lines(c.interval_minutes, d)? {
                push(&line);
            }
        }
    }
    push(end_line());
    Ok(out)
}
