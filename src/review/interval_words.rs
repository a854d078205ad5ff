//! Interval days in plain words, for a customer on the phone and for the review screen: one
//! sentence per interval flag (a template per rule id, filled with the flag's numbers, the
//! channel's unit and local times from the [`DayClock`]), and a day's profile as an hourly
//! text chart that fits 80 columns.
//!
//! Pure functions over a day and its clock: `report usage` prints them, the review screen can
//! style the chart's cells ([`ProfileCell`]).

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp, Zoned};
use serde::Serialize;

use crate::model::interval::{DayClock, IntervalDay, IntervalFlag, IntervalRule, Method, Quality};
use crate::model::{Quantity, Service};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// How many runs of intervals, or times, a sentence names before "and N more".
const NAMED: usize = 3;

/// What a sentence needs besides the day and the flag.
#[derive(Debug, Clone, Copy)]
pub struct Words<'a> {
    pub clock: &'a DayClock,
    /// The channel's unit as stored (`kWh`, `m3`).
    pub unit: &'a str,
    /// The meter's service (`None` when the meter is not in the meter list).
    pub service: Option<Service>,
}

/// `3 Oct`.
pub fn short_date(d: Date) -> String {
    format!("{} {}", d.day(), MONTHS[usize::from(d.month().clamp(1, 12) as u8) - 1])
}

/// `3 Oct 2026`.
pub fn long_date(d: Date) -> String {
    format!("{} {}", short_date(d), d.year())
}

/// A unit for people: `m3` → `m³`, `ft3` → `ft³`; others as stored.
pub fn unit_text(unit: &str) -> String {
    match unit {
        "m3" => "m³".into(),
        "ft3" => "ft³".into(),
        other => other.into(),
    }
}

/// A quantity for people: rounded to three decimals (half away from zero), unless that makes a
/// non-zero value zero, then exact.
pub fn amount(q: Quantity) -> String {
    let rounded = q
        .mul_div(1, 1000)
        .and_then(|m| m.micros().checked_mul(1000))
        .map(Quantity::from_micros);
    match rounded {
        Some(r) if r != Quantity::ZERO || q == Quantity::ZERO => r.to_string(),
        _ => q.to_string(),
    }
}

/// `12.4 kWh` (the unit left out when the channel has none).
pub fn with_unit(q: Quantity, unit: &str) -> String {
    let u = unit_text(unit);
    if u.is_empty() {
        amount(q)
    } else {
        format!("{} {u}", amount(q))
    }
}

/// `15 minutes`, `1 hour`, `2 hours 30 minutes`.
pub fn duration_words(minutes: u64) -> String {
    let (h, m) = (minutes / 60, minutes % 60);
    let hours = match h {
        0 => String::new(),
        1 => "1 hour".into(),
        h => format!("{h} hours"),
    };
    let mins = match m {
        0 => String::new(),
        1 => "1 minute".into(),
        m => format!("{m} minutes"),
    };
    match (hours.is_empty(), mins.is_empty()) {
        (true, true) => "0 minutes".into(),
        (false, true) => hours,
        (true, false) => mins,
        (false, false) => format!("{hours} {mins}"),
    }
}

/// The instant interval `n` (1-based) of `day` starts.
fn start_of(day: &IntervalDay, clock: &DayClock, n: u16) -> Option<Timestamp> {
    clock.interval_start(day.date, day.interval_minutes, n)
}

/// `HH:MM` local time of an instant.
fn hh_mm(clock: &DayClock, at: Timestamp) -> String {
    Zoned::new(at, clock.tz.clone()).strftime("%H:%M").to_string()
}

/// Local start time of interval `n` (`04:15`); `interval n` when the clock cannot tell.
pub fn interval_time(day: &IntervalDay, clock: &DayClock, n: u16) -> String {
    start_of(day, clock, n).map_or_else(|| format!("interval {n}"), |t| hh_mm(clock, t))
}

/// Local end time of interval `n`: `24:00` when it ends at the next local midnight.
fn interval_end_time(day: &IntervalDay, clock: &DayClock, n: u16) -> Option<String> {
    let end = start_of(day, clock, n)?
        .checked_add(SignedDuration::from_mins(i64::from(day.interval_minutes)))
        .ok()?;
    let next = day.date.tomorrow().ok().and_then(|d| clock.day_start(d));
    Some(if next.is_some_and(|n| end >= n) {
        "24:00".into()
    } else {
        hh_mm(clock, end)
    })
}

/// Consecutive runs of 1-based interval numbers: `[9..=16, 20..=20]`.
fn runs(intervals: &[u16]) -> Vec<(u16, u16)> {
    let mut sorted = intervals.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<(u16, u16)> = Vec::new();
    for n in sorted {
        match out.last_mut() {
            Some((_, b)) if b.checked_add(1) == Some(n) => *b = n,
            _ => out.push((n, n)),
        }
    }
    out
}

/// `intervals 9–16, 02:00–04:00; interval 20, 04:45–05:00` (the first three runs, then "and N
/// more").
fn runs_text(day: &IntervalDay, clock: &DayClock, intervals: &[u16]) -> String {
    let all = runs(intervals);
    let mut parts: Vec<String> = all
        .iter()
        .take(NAMED)
        .enumerate()
        .map(|(i, &(a, b))| {
            let numbers = match (i, a == b) {
                (0, true) => format!("interval {a}"),
                (0, false) => format!("intervals {a}–{b}"),
                (_, true) => format!("{a}"),
                (_, false) => format!("{a}–{b}"),
            };
            match (start_of(day, clock, a), interval_end_time(day, clock, b)) {
                (Some(s), Some(e)) => format!("{numbers}, {}–{e}", hh_mm(clock, s)),
                _ => numbers,
            }
        })
        .collect();
    if all.len() > NAMED {
        parts.push(format!("and {} more", all.len() - NAMED));
    }
    parts.join("; ")
}

/// ` (text)`, or nothing for an empty text.
fn in_parens(text: String) -> String {
    if text.is_empty() { text } else { format!(" ({text})") }
}

/// `18:15`, `18:15 and 19:00`, `01:00, 02:00, 03:00 and 2 more`.
fn times_text(day: &IntervalDay, clock: &DayClock, intervals: &[u16]) -> String {
    let mut times: Vec<String> = intervals
        .iter()
        .take(NAMED)
        .map(|&n| interval_time(day, clock, n))
        .collect();
    if intervals.len() > NAMED {
        times.push(format!("{} more", intervals.len() - NAMED));
    }
    match times.len() {
        0 => String::new(),
        1 => times.remove(0),
        _ => {
            let last = times.pop().unwrap_or_default();
            format!("{} and {last}", times.join(", "))
        }
    }
}

/// How long `count` intervals of the day last.
fn span(day: &IntervalDay, count: usize) -> String {
    duration_words(count as u64 * u64::from(day.interval_minutes))
}

/// A count carried in a flag's numbers (whole units) as an integer.
fn count_of(q: Option<Quantity>) -> Option<u64> {
    let q = q?;
    (q.micros() >= 0 && q.micros() % 1_000_000 == 0).then(|| q.micros().unsigned_abs() / 1_000_000)
}

/// `hour`, `15 minutes`: what one interval of the day is called.
fn period_name(day: &IntervalDay) -> String {
    match day.interval_minutes {
        60 => "hour".into(),
        m => duration_words(u64::from(m)),
    }
}

/// How the intervals of a gap were filled, from the day's methods after estimation.
fn gap_filling(day: &IntervalDay, intervals: &[u16]) -> &'static str {
    let (mut linear, mut like, mut none, mut other) = (0, 0, 0, 0);
    for &n in intervals {
        let i = usize::from(n).saturating_sub(1);
        let has_value = day.quality.get(i).is_some_and(|q| *q != Quality::Missing)
            && day.values.get(i).is_some_and(Option::is_some);
        match (has_value, day.methods.get(i).copied().flatten()) {
            (false, _) => none += 1,
            (true, Some(Method::Linear)) => linear += 1,
            (true, Some(Method::LikeDay)) => like += 1,
            (true, _) => other += 1,
        }
    }
    match (linear > 0, like > 0, none > 0 || other > 0) {
        (true, false, false) => "estimated by linear interpolation",
        (false, true, false) => "estimated from the average of like days",
        (true, true, false) => "estimated by linear interpolation and from like days",
        (false, false, _) if other == 0 => "not estimated",
        (false, false, _) => "filled later by the sender",
        _ => "partly estimated",
    }
}

/// The spike factor the flag used (limit ÷ expected), to two decimals.
fn spike_factor(flag: &IntervalFlag) -> Option<Quantity> {
    let (limit, third) = (flag.limit?, flag.expected?);
    if !third.is_positive() {
        return None;
    }
    let f = limit.mul_div(1_000_000, i128::from(third.micros()))?;
    f.mul_div(1, 10_000)
        .and_then(|c| c.micros().checked_mul(10_000))
        .map(Quantity::from_micros)
}

/// The plain-words sentence of one flag of `day` (lower case, no final full stop).
pub fn flag_sentence(day: &IntervalDay, flag: &IntervalFlag, w: &Words<'_>) -> String {
    sentence(day, flag, w).unwrap_or_else(|| {
        // A flag without the numbers its template needs (an older or hand-made record).
        let detail = flag.detail.as_deref().unwrap_or("no details");
        format!("{} on {}: {detail}", flag.rule.as_str(), short_date(day.date))
    })
}

fn sentence(day: &IntervalDay, flag: &IntervalFlag, w: &Words<'_>) -> Option<String> {
    let date = short_date(day.date);
    let q = |v: Quantity| with_unit(v, w.unit);
    let n = flag.intervals.len();
    Some(match flag.rule {
        IntervalRule::Gap => format!(
            "no data for {} on {date}{}, {}",
            span(day, n),
            in_parens(runs_text(day, w.clock, &flag.intervals)),
            gap_filling(day, &flag.intervals)
        ),
        IntervalRule::Spike => format!(
            "a spike on {date}: {} at {}, more than {} × the third-highest ({})",
            q(flag.actual?),
            times_text(day, w.clock, &flag.intervals),
            spike_factor(flag)?,
            amount(flag.expected?)
        ),
        IntervalRule::ZeroRun => {
            let longest = count_of(flag.actual)?;
            let limit = count_of(flag.limit)?;
            format!(
                "nothing used for {} in a row on {date}{} on an active meter: stopped meter or empty \
                 premises? (flagged from {})",
                span(day, longest as usize),
                in_parens(runs_text(day, w.clock, &flag.intervals)),
                span(day, limit as usize)
            )
        }
        IntervalRule::ContinuousFlow => {
            let at = *flag.intervals.first()?;
            let what = match w.service {
                Some(Service::Water) => "water never stopped flowing".to_owned(),
                Some(Service::Gas) => "gas never stopped flowing".to_owned(),
                _ => "usage never stopped".to_owned(),
            };
            format!(
                "{what} on {date}: possible leak; lowest {} {} at {}",
                period_name(day),
                q(flag.actual?),
                interval_time(day, w.clock, at)
            )
        }
        IntervalRule::Negative => {
            let lowest = flag.actual?;
            let at: Vec<u16> = flag
                .intervals
                .iter()
                .copied()
                .filter(|&k| day.values.get(usize::from(k).wrapping_sub(1)).copied().flatten() == Some(lowest))
                .collect();
            let at = match at.first() {
                Some(&k) => format!(" at {}", interval_time(day, w.clock, k)),
                None => String::new(),
            };
            format!(
                "negative usage on {date}, impossible on a delivered channel: lowest {}{at}, {} negative \
                 interval{}{}",
                q(lowest),
                n,
                if n == 1 { "" } else { "s" },
                in_parens(runs_text(day, w.clock, &flag.intervals))
            )
        }
        IntervalRule::SumCheck => match flag.limit {
            Some(limit) => {
                let (sum, moved) = (flag.actual?, flag.expected?);
                let apart = Quantity::from_micros(sum.micros().checked_sub(moved.micros())?.checked_abs()?);
                format!(
                    "the intervals up to {date} add up to {} but the meter's register moved {}: {} apart, {} \
                     allowed",
                    q(sum),
                    q(moved),
                    q(apart),
                    q(limit)
                )
            }
            // Raised by the estimation: the register left no room for the like-day values.
            None => format!(
                "the meter's register moved {} around the estimated {} on {date}{}, less than the \
                 intervals add up to ({}): the estimates were not scaled to it",
                q(flag.expected?),
                span(day, n),
                in_parens(runs_text(day, w.clock, &flag.intervals)),
                q(flag.actual?)
            ),
        },
        IntervalRule::High => format!(
            "high usage on {date}: {} for the day, above the limit of {} (like-day average {})",
            q(flag.actual?),
            q(flag.limit?),
            q(flag.expected?)
        ),
        IntervalRule::Low => format!(
            "low usage on {date}: {} for the day, below the limit of {} (like-day average {})",
            q(flag.actual?),
            q(flag.limit?),
            q(flag.expected?)
        ),
        IntervalRule::Count => {
            let actual = count_of(flag.actual)?;
            let hours = w
                .clock
                .day_length(day.date)
                .map_or_else(|| "?".to_owned(), |l| (l.as_secs() / 3600).to_string());
            match count_of(flag.expected) {
                Some(expected) => format!(
                    "{actual} values on {date}, but the {hours}-hour local day has {expected} intervals of {} \
                     minutes",
                    day.interval_minutes
                ),
                None => format!(
                    "{actual} values on {date}, but a {hours}-hour local day is no whole number of {}-minute \
                     intervals",
                    day.interval_minutes
                ),
            }
        }
        IntervalRule::Duplicate => {
            let (stored, arrived) = (flag.expected?, flag.actual?);
            if n == 1 {
                let k = flag.intervals[0];
                format!(
                    "a different value arrived for {date} at {} (interval {k}): {} where {} is stored; the stored \
                     value stands until a clerk decides",
                    interval_time(day, w.clock, k),
                    q(arrived),
                    q(stored)
                )
            } else {
                format!(
                    "different values arrived for {n} intervals of {date}{}, e.g. {} where {} is stored; the \
                     stored values stand until a clerk decides",
                    in_parens(runs_text(day, w.clock, &flag.intervals)),
                    q(arrived),
                    q(stored)
                )
            }
        }
        IntervalRule::NotEstimable => format!(
            "no estimate for {} on {date}{}: {}",
            span(day, n),
            in_parens(runs_text(day, w.clock, &flag.intervals)),
            flag.detail.as_deref().unwrap_or("no reason given")
        ),
    })
}

/// `text` in lines of at most `width` characters, broken at spaces (a longer word stands
/// alone); every line after the first starts with `indent`.
pub fn wrap(text: &str, width: usize, indent: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let len = line.chars().count();
        let fresh = line.is_empty() || line == indent;
        if !fresh && len + 1 + word.chars().count() > width {
            lines.push(std::mem::replace(&mut line, indent.to_owned()));
        }
        if !(line.is_empty() || line == indent) {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() && line != indent {
        lines.push(line);
    }
    lines
}

/// One hour of a day's profile (an hour of absolute time from local midnight: the DST days
/// have 23 or 25).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HourBar {
    /// Local start time, `HH:MM` (twice `01:00` on the fall-back day).
    pub start: String,
    /// The hour's usage: the sum of its values; `None` when it has none.
    pub total: Option<Quantity>,
    /// Some of its values are estimates or substitutes (meterd's, the sender's or a clerk's).
    pub estimated: bool,
    /// Some of its intervals have no value.
    pub missing: bool,
    /// Some of its intervals are named by a flag (other than `interval_gap`, which the
    /// estimated or missing marks already show).
    pub flagged: bool,
}

/// The day's values per hour.
pub fn hourly(day: &IntervalDay, clock: &DayClock) -> Vec<HourBar> {
    let minutes = usize::from(day.interval_minutes.max(1));
    let count = day.values.len();
    let hours = (count * minutes).div_ceil(60);
    let start = clock.day_start(day.date);
    let flagged: Vec<u16> = day
        .flags
        .iter()
        .filter(|f| f.rule != IntervalRule::Gap)
        .flat_map(|f| f.intervals.iter().copied())
        .collect();
    (0..hours)
        .map(|h| {
            let label = start
                .and_then(|s| s.checked_add(SignedDuration::from_hours(h as i64)).ok())
                .map_or_else(|| format!("+{h:02}h"), |t| hh_mm(clock, t));
            let mut bar = HourBar {
                start: label,
                total: None,
                estimated: false,
                missing: false,
                flagged: false,
            };
            let from = h * 60 / minutes;
            let to = ((h + 1) * 60).div_ceil(minutes).min(count);
            for i in from..to {
                let q = day.quality.get(i).copied().unwrap_or(Quality::Missing);
                match day.values[i] {
                    Some(v) if q != Quality::Missing => {
                        bar.total = Some(bar.total.unwrap_or(Quantity::ZERO).checked_add(v).unwrap_or(v));
                        bar.estimated |= q != Quality::Actual;
                    }
                    _ => bar.missing = true,
                }
                let n = u16::try_from(i + 1).unwrap_or(u16::MAX);
                bar.flagged |= flagged.contains(&n);
            }
            bar
        })
        .collect()
}

/// What a cell of the profile chart shows (the review screen colours by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileCell {
    Text,
    /// Measured usage.
    Actual,
    /// Usage with estimated or substituted values.
    Estimated,
    /// A flagged hour's mark.
    Flag,
    /// An hour with intervals without a value.
    Missing,
}

/// One chart line as runs of (text, kind).
pub type ProfileLine = Vec<(String, ProfileCell)>;

const EIGHTHS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The day's profile in `width` × `height` cells: a title, one bar per hour (actual usage in
/// eighth blocks, estimates in `░`), hour labels, a line of marks (`!` flagged, `?` values
/// missing) and a legend. Each hour takes up to three columns, so 25 hours fit 75.
pub fn profile_chart(day: &IntervalDay, clock: &DayClock, unit: &str, width: u16, height: u16) -> Vec<ProfileLine> {
    let hours = hourly(day, clock);
    let (width, height) = (usize::from(width), usize::from(height));
    if hours.is_empty() || height < 5 || width < hours.len() {
        return vec![vec![("(no profile to chart)".into(), ProfileCell::Text)]];
    }
    let col = (width / hours.len()).min(3);
    let bar = if col >= 2 { col - 1 } else { 1 };
    let gap = " ".repeat(col - bar);
    let rows = height - 4;
    let unit = unit_text(unit);
    let peak = hours
        .iter()
        .filter_map(|h| h.total.map(|t| (t, h)))
        .filter(|(t, _)| t.is_positive())
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.start.cmp(&a.1.start)));
    let title = match peak {
        Some((max, h)) => format!(
            "{unit} per hour on {}: highest {} at {}",
            long_date(day.date),
            amount(max),
            h.start
        ),
        None => format!("{unit} per hour on {}: nothing used", long_date(day.date)),
    };
    let max = peak.map_or(Quantity::ZERO, |(m, _)| m);
    let mut out: Vec<ProfileLine> = vec![vec![(title, ProfileCell::Text)]];
    let levels = super::chart::eighth_levels(hours.iter().map(|h| h.total), max, rows);
    for r in 0..rows {
        let level = (rows - 1 - r) as i64;
        let mut line: ProfileLine = Vec::new();
        for (h, &eighths) in hours.iter().zip(&levels) {
            let filled = eighths - level * 8;
            let kind = if h.estimated {
                ProfileCell::Estimated
            } else {
                ProfileCell::Actual
            };
            let ch = match kind {
                ProfileCell::Estimated if filled > 0 => '░',
                _ if filled >= 8 => '█',
                _ if filled > 0 => EIGHTHS[filled as usize],
                _ if level == 0 && h.total.is_some_and(|t| t.is_negative()) => '-',
                _ => ' ',
            };
            line.push((ch.to_string().repeat(bar), kind));
            line.push((gap.clone(), ProfileCell::Text));
        }
        out.push(line);
    }
    // Hour labels (`HH`) where they fit without touching the one before.
    let mut labels = String::new();
    for (i, h) in hours.iter().enumerate() {
        let at = i * col;
        if at >= labels.chars().count() + usize::from(!labels.is_empty()) {
            labels.push_str(&" ".repeat(at - labels.chars().count()));
            labels.push_str(h.start.get(..2).unwrap_or(&h.start));
        }
    }
    out.push(vec![(labels, ProfileCell::Text)]);
    let mut marks: ProfileLine = Vec::new();
    for h in &hours {
        let (mark, kind) = match (h.flagged, h.missing) {
            (true, _) => ("!", ProfileCell::Flag),
            (false, true) => ("?", ProfileCell::Missing),
            _ => (" ", ProfileCell::Text),
        };
        marks.push((mark.into(), kind));
        marks.push((" ".repeat(col - 1), ProfileCell::Text));
    }
    out.push(marks);
    out.push(vec![
        ("█".into(), ProfileCell::Actual),
        (" actual  ".into(), ProfileCell::Text),
        ("░".into(), ProfileCell::Estimated),
        (" estimated  ".into(), ProfileCell::Text),
        ("!".into(), ProfileCell::Flag),
        (" flagged  ".into(), ProfileCell::Text),
        ("?".into(), ProfileCell::Missing),
        (" no data".into(), ProfileCell::Text),
    ]);
    out
}

/// The profile chart as plain text lines (reports).
pub fn profile_text(day: &IntervalDay, clock: &DayClock, unit: &str, width: u16, height: u16) -> Vec<String> {
    profile_chart(day, clock, unit, width, height)
        .into_iter()
        .map(|l| l.into_iter().map(|(s, _)| s).collect::<String>().trim_end().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::interval::DayKey;
    use jiff::civil::date;
    use jiff::tz::TimeZone;

    fn utc() -> DayClock {
        DayClock::new(TimeZone::UTC)
    }

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    /// A 15-minute day of 96 actual values of 0.1.
    fn day(d: Date, minutes: u16, count: usize) -> IntervalDay {
        let key = DayKey {
            meter_id: "M1".into(),
            channel: "E1".into(),
            date: d,
        };
        let mut day = IntervalDay::empty(key, minutes, count, Timestamp::UNIX_EPOCH);
        for i in 0..count {
            day.values[i] = Some(q("0.1"));
            day.quality[i] = Quality::Actual;
        }
        day
    }

    fn flag(rule: IntervalRule, intervals: Vec<u16>) -> IntervalFlag {
        IntervalFlag::new(rule, intervals)
    }

    fn words<'a>(clock: &'a DayClock, unit: &'a str, service: Option<Service>) -> Words<'a> {
        Words { clock, unit, service }
    }

    #[test]
    fn a_gap_filled_by_interpolation() {
        let c = utc();
        let mut d = day(date(2026, 10, 7), 15, 96);
        for i in 8..16 {
            d.quality[i] = Quality::Estimated;
            d.methods[i] = Some(Method::Linear);
        }
        let f = flag(IntervalRule::Gap, (9..=16).collect());
        assert_eq!(
            flag_sentence(&d, &f, &words(&c, "kWh", None)),
            "no data for 2 hours on 7 Oct (intervals 9–16, 02:00–04:00), estimated by linear interpolation"
        );
        // Two runs, one left open: partly estimated.
        d.values[40] = None;
        d.quality[40] = Quality::Missing;
        let f = flag(IntervalRule::Gap, vec![9, 10, 11, 12, 13, 14, 15, 16, 41]);
        assert_eq!(
            flag_sentence(&d, &f, &words(&c, "kWh", None)),
            "no data for 2 hours 15 minutes on 7 Oct (intervals 9–16, 02:00–04:00; 41, 10:00–10:15), partly \
             estimated"
        );
    }

    #[test]
    fn a_gap_at_the_end_of_the_day_ends_at_24_00_and_like_days() {
        let c = utc();
        let mut d = day(date(2026, 10, 7), 60, 24);
        for i in 20..24 {
            d.quality[i] = Quality::Estimated;
            d.methods[i] = Some(Method::LikeDay);
        }
        let f = flag(IntervalRule::Gap, (21..=24).collect());
        assert_eq!(
            flag_sentence(&d, &f, &words(&c, "kWh", None)),
            "no data for 4 hours on 7 Oct (intervals 21–24, 20:00–24:00), estimated from the average of like days"
        );
    }

    #[test]
    fn a_spike_names_its_time_and_the_factor() {
        let c = utc();
        let d = day(date(2026, 10, 5), 15, 96);
        let mut f = flag(IntervalRule::Spike, vec![74]);
        f.actual = Some(q("12.4"));
        f.expected = Some(q("2.1"));
        f.limit = Some(q("6.3"));
        assert_eq!(
            flag_sentence(&d, &f, &words(&c, "kWh", None)),
            "a spike on 5 Oct: 12.4 kWh at 18:15, more than 3 × the third-highest (2.1)"
        );
    }

    #[test]
    fn continuous_flow_on_a_water_meter_is_a_possible_leak() {
        let c = utc();
        let d = day(date(2026, 10, 3), 60, 24);
        let mut f = flag(IntervalRule::ContinuousFlow, vec![5]);
        f.actual = Some(q("0.8"));
        f.limit = Some(Quantity::ZERO);
        assert_eq!(
            flag_sentence(&d, &f, &words(&c, "m3", Some(Service::Water))),
            "water never stopped flowing on 3 Oct: possible leak; lowest hour 0.8 m³ at 04:00"
        );
        let d = day(date(2026, 10, 3), 15, 96);
        assert_eq!(
            flag_sentence(&d, &f, &words(&c, "kWh", None)),
            "usage never stopped on 3 Oct: possible leak; lowest 15 minutes 0.8 kWh at 01:00"
        );
    }

    #[test]
    fn zero_runs_negatives_and_not_estimable() {
        let c = utc();
        let mut d = day(date(2026, 10, 4), 15, 96);
        let mut f = flag(IntervalRule::ZeroRun, (1..=36).collect());
        f.limit = Quantity::from_units(32);
        f.actual = Quantity::from_units(36);
        assert_eq!(
            flag_sentence(&d, &f, &words(&c, "kWh", None)),
            "nothing used for 9 hours in a row on 4 Oct (intervals 1–36, 00:00–09:00) on an active meter: stopped \
             meter or empty premises? (flagged from 8 hours)"
        );
        d.values[52] = Some(q("-0.3"));
        d.values[53] = Some(q("-0.1"));
        let mut f = flag(IntervalRule::Negative, vec![53, 54]);
        f.limit = Some(Quantity::ZERO);
        f.actual = Some(q("-0.3"));
        assert_eq!(
            flag_sentence(&d, &f, &words(&c, "kWh", None)),
            "negative usage on 4 Oct, impossible on a delivered channel: lowest -0.3 kWh at 13:00, 2 negative \
             intervals (intervals 53–54, 13:00–13:30)"
        );
        let mut f = flag(IntervalRule::NotEstimable, (41..=64).collect());
        f.detail = Some("1 like day(s) without gaps, estimates or outages within 4 weeks; 3 needed".into());
        assert_eq!(
            flag_sentence(&d, &f, &words(&c, "kWh", None)),
            "no estimate for 6 hours on 4 Oct (intervals 41–64, 10:00–16:00): 1 like day(s) without gaps, \
             estimates or outages within 4 weeks; 3 needed"
        );
    }

    #[test]
    fn sums_highs_lows_counts_and_duplicates() {
        let c = utc();
        let d = day(date(2026, 10, 6), 30, 48);
        let mut f = flag(IntervalRule::SumCheck, (1..=48).collect());
        f.expected = Some(q("45"));
        f.limit = Some(q("0.9"));
        f.actual = Some(q("41.2"));
        assert_eq!(
            flag_sentence(&d, &f, &words(&c, "kWh", None)),
            "the intervals up to 6 Oct add up to 41.2 kWh but the meter's register moved 45 kWh: 3.8 kWh apart, \
             0.9 kWh allowed"
        );
        let mut f = flag(IntervalRule::SumCheck, (21..=30).collect());
        f.expected = Some(q("3"));
        f.actual = Some(q("4.5"));
        assert_eq!(
            flag_sentence(&d, &f, &words(&c, "kWh", None)),
            "the meter's register moved 3 kWh around the estimated 5 hours on 6 Oct (intervals 21–30, \
             10:00–15:00), less than the intervals add up to (4.5 kWh): the estimates were not scaled to it"
        );
        let mut f = flag(IntervalRule::High, vec![]);
        f.expected = Some(q("21.333333"));
        f.limit = Some(q("38.4"));
        f.actual = Some(q("54.2"));
        assert_eq!(
            flag_sentence(&d, &f, &words(&c, "kWh", None)),
            "high usage on 6 Oct: 54.2 kWh for the day, above the limit of 38.4 kWh (like-day average 21.333 kWh)"
        );
        f.rule = IntervalRule::Low;
        f.actual = Some(q("2"));
        f.limit = Some(q("8.533333"));
        assert_eq!(
            flag_sentence(&d, &f, &words(&c, "kWh", None)),
            "low usage on 6 Oct: 2 kWh for the day, below the limit of 8.533 kWh (like-day average 21.333 kWh)"
        );
        let mut f = flag(IntervalRule::Count, vec![]);
        f.expected = Quantity::from_units(48);
        f.actual = Quantity::from_units(46);
        assert_eq!(
            flag_sentence(&d, &f, &words(&c, "kWh", None)),
            "46 values on 6 Oct, but the 24-hour local day has 48 intervals of 30 minutes"
        );
        let mut f = flag(IntervalRule::Duplicate, vec![17]);
        f.expected = Some(q("1.2"));
        f.actual = Some(q("1.5"));
        assert_eq!(
            flag_sentence(&d, &f, &words(&c, "kWh", None)),
            "a different value arrived for 6 Oct at 08:00 (interval 17): 1.5 kWh where 1.2 kWh is stored; the \
             stored value stands until a clerk decides"
        );
        f.intervals = vec![17, 18, 30];
        assert_eq!(
            flag_sentence(&d, &f, &words(&c, "kWh", None)),
            "different values arrived for 3 intervals of 6 Oct (intervals 17–18, 08:00–09:00; 30, 14:30–15:00), \
             e.g. 1.5 kWh where 1.2 kWh is stored; the stored values stand until a clerk decides"
        );
    }

    #[test]
    fn every_rule_has_words_and_a_flag_without_numbers_falls_back() {
        let c = utc();
        let d = day(date(2026, 3, 1), 30, 48);
        for rule in IntervalRule::ALL {
            let s = flag_sentence(&d, &flag(rule, vec![]), &words(&c, "kWh", None));
            assert!(!s.is_empty() && s.contains("1 Mar"), "{rule}: {s}");
        }
        let mut f = flag(IntervalRule::High, vec![]);
        f.detail = Some("day total 9".into());
        assert_eq!(
            flag_sentence(&d, &f, &words(&c, "kWh", None)),
            "interval_high on 1 Mar: day total 9"
        );
        // Interval numbers beyond the day and u16::MAX never panic.
        let f = flag(IntervalRule::Gap, vec![u16::MAX, 0, 500]);
        let _ = flag_sentence(&d, &f, &words(&c, "kWh", None));
        let mut f = flag(IntervalRule::Negative, vec![0, u16::MAX]);
        f.actual = Some(q("-1"));
        let _ = flag_sentence(&d, &f, &words(&c, "kWh", None));
    }

    #[test]
    fn fall_back_day_labels_the_repeated_hour_twice() {
        let c = DayClock::new(TimeZone::get("America/Los_Angeles").unwrap());
        let d = day(date(2026, 11, 1), 60, 25);
        let hours = hourly(&d, &c);
        assert_eq!(hours.len(), 25);
        assert_eq!(
            hours.iter().take(4).map(|h| h.start.as_str()).collect::<Vec<_>>(),
            ["00:00", "01:00", "01:00", "02:00"]
        );
        let lines = profile_text(&d, &c, "kWh", 80, 8);
        assert!(lines.iter().all(|l| l.chars().count() <= 80), "{lines:#?}");
        assert_eq!(
            lines[5],
            "00 01 01 02 03 04 05 06 07 08 09 10 11 12 13 14 15 16 17 18 19 20 21 22 23"
        );
    }

    #[test]
    fn profile_chart_draws_estimates_missing_and_flags() {
        let c = utc();
        // Half-hour intervals: hour h is intervals 2h+1 and 2h+2.
        let mut d = day(date(2026, 3, 1), 30, 48);
        d.values[36] = Some(q("1.9")); // 18:00: the peak, 2 kWh in the hour
        d.quality[4] = Quality::Estimated; // 02:00
        d.methods[4] = Some(Method::Linear);
        d.values[10] = None; // 05:00
        d.quality[10] = Quality::Missing;
        d.flags.push(flag(IntervalRule::Spike, vec![37]));
        d.flags.push(flag(IntervalRule::Gap, vec![11]));
        let hours = hourly(&d, &c);
        assert_eq!(hours[18].total, Some(q("2")));
        assert!(hours[18].flagged && !hours[5].flagged && hours[5].missing && hours[2].estimated);
        assert_eq!(hours[5].total, Some(q("0.1")));
        let lines = profile_text(&d, &c, "kWh", 80, 8);
        assert_eq!(
            lines,
            [
                "kWh per hour on 1 Mar 2026: highest 2 at 18:00",
                "                                                      ██",
                "                                                      ██",
                "                                                      ██",
                "▃▃ ▃▃ ░░ ▃▃ ▃▃ ▂▂ ▃▃ ▃▃ ▃▃ ▃▃ ▃▃ ▃▃ ▃▃ ▃▃ ▃▃ ▃▃ ▃▃ ▃▃ ██ ▃▃ ▃▃ ▃▃ ▃▃ ▃▃",
                "00 01 02 03 04 05 06 07 08 09 10 11 12 13 14 15 16 17 18 19 20 21 22 23",
                "               ?                                      !",
                "█ actual  ░ estimated  ! flagged  ? no data",
            ]
        );
        // Narrow: every other label, one-column bars.
        let narrow = profile_text(&d, &c, "kWh", 40, 6);
        assert_eq!(narrow[3], "00 03 06 09 12 15 18 21");
        assert_eq!(profile_text(&d, &c, "kWh", 10, 8), ["(no profile to chart)"]);
    }

    #[test]
    fn sentences_wrap_at_spaces_with_a_hanging_indent() {
        assert_eq!(
            wrap("- no data for 1 hour on 1 Mar (intervals 9–10, 04:00–05:00)", 24, "  "),
            ["- no data for 1 hour on", "  1 Mar (intervals 9–10,", "  04:00–05:00)"]
        );
        assert_eq!(
            wrap("averyveryverylongword x", 5, "  "),
            ["averyveryverylongword", "  x"]
        );
        assert!(wrap("", 10, "  ").is_empty());
    }

    #[test]
    fn amounts_round_to_three_decimals_but_never_to_zero() {
        assert_eq!(amount(q("21.3335")), "21.334");
        assert_eq!(amount(q("0.0004")), "0.0004");
        assert_eq!(amount(q("-0.3")), "-0.3");
        assert_eq!(amount(Quantity::ZERO), "0");
        assert_eq!(with_unit(q("1.5"), ""), "1.5");
        assert_eq!(duration_words(135), "2 hours 15 minutes");
        assert_eq!(duration_words(60), "1 hour");
        assert_eq!(short_date(date(2026, 10, 3)), "3 Oct");
    }
}
