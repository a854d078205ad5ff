//! Interval days from register values that carry their own capture times:
//!
//! - **DSMR hourly gas.** A DSMR 4/5 P1 telegram carries the gas meter's last register value
//!   with its capture time, `0-n:24.2.1(YYMMDDhhmmssX)(value*m3)` (DSMR 5.0.2 P1 companion
//!   standard §6.12; DSMR 2.2/3 send the hourly value as the profile `0-n:24.3.0`), repeated in
//!   every telegram until the next capture. The value is stored as a register read at its
//!   capture time (repeats are the same read again and store nothing), and the value captured
//!   on a whole hour minus the one stored an hour earlier is the hour's interval of channel
//!   [`GAS_CHANNEL`] ([`gas_days`]). The previous value comes from the store, so a restart loses
//!   nothing; when it is not there (the first hour, a missed hour) the hour gets no interval
//!   and the day's gap rule and estimation deal with it. DSMR 5 gas meters report every
//!   5 minutes; only the values captured on the hour make intervals.
//! - **M-Bus storage-number history.** EN 13757-3 data records carry a storage number
//!   (0 = the current value, 1… = stored values); many meters send a value and a date/time
//!   record per storage number. Where the history of the mapped register is spaced by an
//!   interval length of 15, 30 or 60 minutes, consecutive values become intervals
//!   ([`mbus_history`]). Daily or monthly history (the usual billing-date values) is no
//!   interval data and is left alone.
//!
//! A register that went down (meter exchange, rollover, a broken value) gives no interval:
//! it is logged, and the register reads' own VEE flags the read; the day shows a gap that
//! estimation fills or a clerk edits, rather than a negative value in a delivered channel.

use jiff::{SignedDuration, Timestamp};

use crate::ingest::intervals::{IncomingDay, IncomingValue, place_by_time};
use crate::model::interval::{Channel, DayClock, Direction, Quality};
use crate::model::{OriginKind, Quantity};
use crate::store::Result;
use crate::store::prelude::*;

/// The channel of DSMR hourly gas intervals.
pub const GAS_CHANNEL: &str = "gas_hourly";

/// Interval lengths an M-Bus history becomes intervals of (anything longer is billing history).
pub const HISTORY_MINUTES: [u16; 3] = [15, 30, 60];

/// A register value at the time the meter captured it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub at: Timestamp,
    pub value: Quantity,
}

/// What a pair of register values one interval apart gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The interval starting at `start`: how far the register moved.
    Interval { start: Timestamp, value: Quantity },
    /// The register went down from `from` to `to`: no interval.
    Negative {
        start: Timestamp,
        from: Quantity,
        to: Quantity,
    },
}

/// `at` without its seconds: meters stamp a capture a few seconds past the boundary
/// (`170102161005W` in the DSMR 5 example telegram).
pub fn to_minute(at: Timestamp) -> Option<Timestamp> {
    let s = at.as_second();
    Timestamp::from_second(s.checked_sub(s.rem_euclid(60))?).ok()
}

/// The start of the interval of `minutes` ending at `at` (to the minute), when that is an
/// interval boundary of the local day.
pub fn interval_ending(clock: &DayClock, at: Timestamp, minutes: u16) -> Option<Timestamp> {
    let start = to_minute(at)?
        .checked_sub(SignedDuration::from_mins(i64::from(minutes)))
        .ok()?;
    clock.locate(start, minutes).map(|_| start)
}

/// The interval ending at `this` from `before`, the register one interval earlier; `None` when
/// `this` does not end an interval of the local day's grid or `before` is not at its start
/// (both to the minute).
pub fn step(clock: &DayClock, minutes: u16, before: Point, this: Point) -> Option<Step> {
    let start = interval_ending(clock, this.at, minutes)?;
    if to_minute(before.at)? != start {
        return None;
    }
    let value = this.value.checked_sub(before.value)?;
    Some(if value.is_negative() {
        Step::Negative {
            start,
            from: before.value,
            to: this.value,
        }
    } else {
        Step::Interval { start, value }
    })
}

/// Intervals in the channel's units: the register's movement × the meter's multiplier (as the
/// register points of interval VEE are). Negative steps are logged and left out.
fn values_of(
    steps: impl IntoIterator<Item = Step>,
    meter_id: &str,
    multiplier: Quantity,
) -> Vec<(Timestamp, IncomingValue)> {
    steps
        .into_iter()
        .filter_map(|s| match s {
            Step::Interval { start, value } => Some((
                start,
                IncomingValue {
                    interval: 0,
                    value: value.mul_factor(multiplier)?,
                    quality: Quality::Actual,
                    method: None,
                },
            )),
            Step::Negative { start, from, to } => {
                tracing::warn!(
                    meter = meter_id,
                    %start,
                    %from,
                    %to,
                    "register went down (meter exchange or rollover?): no interval"
                );
                None
            }
        })
        .collect()
}

/// A register read with its own capture time that makes intervals (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedRegister {
    pub meter_id: String,
    /// The register's unit as sent (`m3`).
    pub unit: Option<String>,
    pub point: Point,
    /// Where it came from (`dsmr /dev/ttyUSB2`), kept with the interval values.
    pub source: String,
}

/// The DSMR hourly gas days of `registers`, whose reads this transaction has already stored:
/// each value captured on a whole hour T, minus the register read stored at T − 1 h (to the
/// minute), is the interval ending at T. Reads of other origins (a clerk's reading, an import)
/// at that time are not the same register's capture and are not used.
pub fn gas_days(txn: &dyn WriteTxn, clock: &DayClock, registers: &[TimedRegister]) -> Result<Vec<IncomingDay>> {
    let mut days = Vec::new();
    for r in registers {
        let Some(start) = interval_ending(clock, r.point.at, 60) else {
            continue;
        };
        let Some(until) = start.checked_add(SignedDuration::from_mins(1)).ok() else {
            continue;
        };
        let before = txn
            .meter_reads(&r.meter_id, start, until)?
            .into_iter()
            .filter(|s| s.read.origin.kind == OriginKind::Probe)
            .max_by_key(|s| s.read.read_at)
            .map(|s| Point {
                at: s.read.read_at,
                value: s.read.value,
            });
        let Some(before) = before else { continue };
        let Some(step) = step(clock, 60, before, r.point) else {
            continue;
        };
        let multiplier = txn
            .meter(&r.meter_id)?
            .map_or(Quantity::from_micros(1_000_000), |m| m.multiplier);
        let channel = Channel {
            meter_id: r.meter_id.clone(),
            channel: GAS_CHANNEL.to_owned(),
            unit: r.unit.clone().unwrap_or_else(|| "m3".to_owned()),
            direction: Direction::Delivered,
        };
        let values = values_of([step], &r.meter_id, multiplier);
        // `interval_ending` checked the grid, so placing cannot fail; a failure is skipped.
        if let Ok(d) = place_by_time(clock, &channel, 60, &r.source, values) {
            days.extend(d);
        }
    }
    Ok(merge_days(days))
}

/// One incoming day per channel and date.
fn merge_days(days: Vec<IncomingDay>) -> Vec<IncomingDay> {
    let mut merged: Vec<IncomingDay> = Vec::new();
    for d in days {
        match merged.iter_mut().find(|m| {
            m.date == d.date && m.channel.meter_id == d.channel.meter_id && m.channel.channel == d.channel.channel
        }) {
            Some(m) => {
                for v in d.values {
                    if !m.values.iter().any(|have| have.interval == v.interval) {
                        m.values.push(v);
                    }
                }
            }
            None => merged.push(d),
        }
    }
    merged
}

/// The interval days of one meter's storage-number history (EN 13757-3): `points` are the
/// register's stored values (storage numbers 1…) with their times, in any order. The
/// interval length is the spacing of consecutive points when every one is the same 15, 30 or
/// 60 minutes; otherwise (a daily or monthly history, irregular times) there are none. A pair
/// not one interval apart (a missing storage number) gives no interval.
pub fn mbus_history(
    clock: &DayClock,
    channel: &Channel,
    source: &str,
    multiplier: Quantity,
    points: &[Point],
) -> Vec<IncomingDay> {
    let mut points: Vec<Point> = points
        .iter()
        .filter_map(|p| {
            Some(Point {
                at: to_minute(p.at)?,
                ..*p
            })
        })
        .collect();
    points.sort_by_key(|p| p.at);
    points.dedup_by_key(|p| p.at);
    let Some(minutes) = history_minutes(&points) else {
        return Vec::new();
    };
    let steps = points.windows(2).filter_map(|w| step(clock, minutes, w[0], w[1]));
    let values = values_of(steps, &channel.meter_id, multiplier);
    place_by_time(clock, channel, minutes, source, values).unwrap_or_default()
}

/// The interval length of a history: the smallest spacing of consecutive (sorted, distinct)
/// points when it is one of [`HISTORY_MINUTES`] and every spacing is a whole multiple of it
/// (a missing storage number leaves a gap of two). At least two points are needed.
fn history_minutes(points: &[Point]) -> Option<u16> {
    let gaps: Vec<i64> = points
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at).as_mins())
        .collect();
    let smallest = *gaps.iter().min()?;
    let minutes = HISTORY_MINUTES.into_iter().find(|m| i64::from(*m) == smallest)?;
    gaps.iter().all(|g| g % i64::from(minutes) == 0).then_some(minutes)
}

/// The stored values (storage numbers other than `current`, above 0) of the register `register`
/// at `tariff` and `subunit` in a decoded M-Bus frame, each with the date/time record of the
/// same storage number (EN 13757-3: a storage number names one stored set of values, its time
/// included). The meter's date/time is local time in `tz`; in the repeated hour of a DST change
/// the earlier instant is taken. A storage number without exactly one date/time record (or with
/// only a date, type G: no time of day) gives nothing.
pub fn mbus_points(
    decoded: &meterd_protocols::Decoded,
    register: &str,
    current: u64,
    tariff: u64,
    subunit: u64,
    tz: &jiff::tz::TimeZone,
) -> Vec<Point> {
    let mut out = Vec::new();
    for r in &decoded.readings {
        let storage = r.storage.unwrap_or(0);
        if r.quantity != register
            || storage == 0
            || storage == current
            || r.tariff.unwrap_or(0) != tariff
            || r.subunit.unwrap_or(0) != subunit
            || r.function.as_deref().is_some_and(|f| f != "instantaneous")
        {
            continue;
        }
        let Some(value) = number(&r.value) else { continue };
        let mut times = decoded
            .readings
            .iter()
            .filter(|t| t.quantity == "date_time" && t.storage.unwrap_or(0) == storage);
        let (Some(time), None) = (times.next(), times.next()) else {
            continue;
        };
        let Some(at) = time
            .value
            .as_str()
            .and_then(|s| s.parse::<jiff::civil::DateTime>().ok())
            .and_then(|dt| tz.to_ambiguous_timestamp(dt).earlier().ok())
        else {
            continue;
        };
        out.push(Point { at, value });
    }
    out
}

/// A decoded number (or a numeric string) as a quantity.
fn number(v: &serde_json::Value) -> Option<Quantity> {
    match v {
        serde_json::Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
        serde_json::Value::String(s) => Quantity::parse(s).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
