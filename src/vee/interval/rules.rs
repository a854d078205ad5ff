//! The interval rules (each rule's formula is in the module above). [`check_day`] runs before
//! estimation, on the values the senders gave; [`check_usage`] runs after it, on the repaired
//! day.

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp, ToSpan};

use super::{DayContext, like_day_kind};
use crate::model::interval::{Direction, IntervalDay, IntervalFlag, IntervalRule, Quality};
use crate::model::{Quantity, ReadStatus};

/// Fewer like days than this make no average for `interval_high` / `interval_low` (one day is
/// an anecdote; the register rules likewise need 2 earlier reads).
pub const MIN_LIKE_DAYS_FOR_USAGE: usize = 2;

/// How many duplicates a flag's detail names before "and N more".
const DUPLICATES_NAMED: usize = 3;

/// The flags the rules raise on `day` before estimation fills anything: `interval_count`,
/// `interval_gap`, `interval_negative`, `interval_spike`, `interval_zero_run`,
/// `continuous_flow`, `sum_check`, `interval_duplicate`.
pub fn check_day(day: &IntervalDay, ctx: &DayContext<'_>) -> Vec<IntervalFlag> {
    let mut flags = Vec::new();
    flags.extend(count(day, ctx));
    flags.extend(gap(day));
    flags.extend(negative(day, ctx));
    flags.extend(spike(day, ctx));
    flags.extend(zero_run(day, ctx));
    flags.extend(continuous_flow(day, ctx));
    flags.extend(sum_check(day, ctx));
    flags.extend(duplicate(ctx));
    flags
}

/// The flags that look at the repaired day: `interval_high` and `interval_low`. Only a day
/// with a value in every interval has a total to compare (a day estimation could not complete
/// is held by `not_estimable` anyway).
pub fn check_usage(day: &IntervalDay, ctx: &DayContext<'_>) -> Vec<IntervalFlag> {
    if (0..day.values.len()).any(|i| value(day, i).is_none()) {
        return Vec::new();
    }
    let like = like_day_candidates(day, ctx);
    if like.len() < MIN_LIKE_DAYS_FOR_USAGE {
        return Vec::new();
    }
    let sum: i128 = like.iter().map(|d| i128::from(d.total().micros())).sum();
    let Some(avg) = round_div(sum, like.len() as i128) else {
        return Vec::new();
    };
    let total = day.total();
    let r = ctx.rules;
    let detail = |what: &str| {
        format!(
            "day total {total} {what} the average {avg} of {} like days ({})",
            like.len(),
            like.iter().map(|d| d.date.to_string()).collect::<Vec<_>>().join(", ")
        )
    };
    let mut flags = Vec::new();
    let high = avg
        .mul_factor(r.high_factor)
        .zip(avg.checked_add(r.min_high_delta))
        .map(|(a, b)| a.max(b));
    if let Some(high) = high
        && total > high
    {
        let mut f = IntervalFlag::new(IntervalRule::High, Vec::new());
        f.expected = Some(avg);
        f.limit = Some(high);
        f.actual = Some(total);
        f.detail = Some(detail("is above"));
        flags.push(f);
    }
    if let Some(low) = avg.mul_factor(r.low_factor)
        && total.is_positive()
        && total < low
    {
        let mut f = IntervalFlag::new(IntervalRule::Low, Vec::new());
        f.expected = Some(avg);
        f.limit = Some(low);
        f.actual = Some(total);
        f.detail = Some(detail("is below"));
        flags.push(f);
    }
    flags
}

fn count(day: &IntervalDay, ctx: &DayContext<'_>) -> Option<IntervalFlag> {
    let expected = ctx.clock.intervals_in_day(day.date, day.interval_minutes);
    if expected == Some(day.values.len()) {
        return None;
    }
    let mut f = IntervalFlag::new(IntervalRule::Count, Vec::new());
    f.expected = expected.and_then(count_quantity);
    f.actual = count_quantity(day.values.len());
    let hours = ctx
        .clock
        .day_length(day.date)
        .map_or_else(|| "?".to_owned(), |l| (l.as_secs() / 3600).to_string());
    f.detail = Some(match expected {
        Some(n) => format!(
            "{} values for a {hours}-hour local day of {n} intervals of {} minutes",
            day.values.len(),
            day.interval_minutes
        ),
        None => format!(
            "{} values; a {hours}-hour local day is no whole number of {}-minute intervals",
            day.values.len(),
            day.interval_minutes
        ),
    });
    Some(f)
}

fn gap(day: &IntervalDay) -> Option<IntervalFlag> {
    let missing: Vec<u16> = (0..day.values.len())
        .filter(|&i| value(day, i).is_none())
        .map(number)
        .collect();
    if missing.is_empty() {
        return None;
    }
    let mut f = IntervalFlag::new(IntervalRule::Gap, missing);
    f.actual = count_quantity(f.intervals.len());
    f.detail = Some(format!(
        "{} of {} intervals have no value",
        f.intervals.len(),
        day.values.len()
    ));
    Some(f)
}

fn negative(day: &IntervalDay, ctx: &DayContext<'_>) -> Option<IntervalFlag> {
    if ctx.direction != Direction::Delivered {
        return None;
    }
    let negative: Vec<(u16, Quantity)> = values(day).filter(|(_, v)| v.is_negative()).collect();
    let lowest = negative.iter().map(|&(_, v)| v).min()?;
    let mut f = IntervalFlag::new(IntervalRule::Negative, negative.iter().map(|&(n, _)| n).collect());
    f.limit = Some(Quantity::ZERO);
    f.actual = Some(lowest);
    f.detail = Some(format!(
        "{} negative value(s) on a delivered channel, lowest {lowest}",
        negative.len()
    ));
    Some(f)
}

fn spike(day: &IntervalDay, ctx: &DayContext<'_>) -> Option<IntervalFlag> {
    // Measured values only: a spike is a question about the meter, not about a substitute.
    let mut actual: Vec<(u16, Quantity)> = values(day)
        .filter(|&(n, _)| day.quality.get(usize::from(n) - 1) == Some(&Quality::Actual))
        .collect();
    if actual.len() < 3 {
        return None;
    }
    actual.sort_by_key(|&(_, v)| std::cmp::Reverse(v));
    let (highest, third) = (actual[0].1, actual[2].1);
    let limit = third.mul_factor(ctx.rules.spike_factor)?;
    // As the register spike rule: a third-highest of zero is no baseline (a mostly idle meter).
    if !third.is_positive() || highest <= limit {
        return None;
    }
    let mut at: Vec<u16> = actual
        .iter()
        .take_while(|(_, v)| *v == highest)
        .map(|&(n, _)| n)
        .collect();
    at.sort_unstable();
    let mut f = IntervalFlag::new(IntervalRule::Spike, at);
    f.expected = Some(third);
    f.limit = Some(limit);
    f.actual = Some(highest);
    f.detail = Some(format!(
        "highest interval {highest} > {} × third-highest {third}",
        ctx.rules.spike_factor
    ));
    Some(f)
}

fn zero_run(day: &IntervalDay, ctx: &DayContext<'_>) -> Option<IntervalFlag> {
    if !ctx.active {
        return None;
    }
    let need = ctx.rules.zero_run_for(day.interval_minutes) as usize;
    // A zero in an outage interval is what the meter should send (ERCOT TDSP AMS matrix: a
    // zero is valid with an outage flag), so it breaks a run rather than extending it.
    let is_zero = |i: usize| {
        day.quality.get(i) == Some(&Quality::Actual)
            && value(day, i) == Some(Quantity::ZERO)
            && !day.is_outage(number(i))
    };
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < day.values.len() {
        if !is_zero(i) {
            i += 1;
            continue;
        }
        let start = i;
        while i < day.values.len() && is_zero(i) {
            i += 1;
        }
        if i - start >= need {
            runs.push((start, i - start));
        }
    }
    let longest = runs.iter().map(|&(_, len)| len).max()?;
    let intervals = runs.iter().flat_map(|&(s, len)| (s..s + len).map(number)).collect();
    let mut f = IntervalFlag::new(IntervalRule::ZeroRun, intervals);
    f.limit = count_quantity(need);
    f.actual = count_quantity(longest);
    f.detail = Some(format!(
        "zero on an active meter for {}; {need} consecutive zero intervals make a run",
        runs.iter()
            .map(|&(s, len)| format!("intervals {}–{} ({len})", s + 1, s + len))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Some(f)
}

fn continuous_flow(day: &IntervalDay, ctx: &DayContext<'_>) -> Option<IntervalFlag> {
    if !ctx.rules.checks_continuous_flow(ctx.service) || day.values.is_empty() {
        return None;
    }
    if (0..day.values.len()).any(|i| value(day, i).is_none_or(|v| !v.is_positive())) {
        return None;
    }
    // The first of the lowest intervals: the quietest moment of the day still used water.
    let (n, lowest) = values(day).min_by_key(|&(n, v)| (v, n))?;
    let mut f = IntervalFlag::new(IntervalRule::ContinuousFlow, vec![n]);
    f.limit = Some(Quantity::ZERO);
    f.actual = Some(lowest);
    f.detail = Some(format!(
        "usage never reached zero: the lowest interval is number {n} with {lowest}"
    ));
    Some(f)
}

fn sum_check(day: &IntervalDay, ctx: &DayContext<'_>) -> Vec<IntervalFlag> {
    let mut flags = Vec::new();
    let (Some(start), Some(end)) = (ctx.clock.day_start(day.date), day_end(ctx, day.date)) else {
        return flags;
    };
    for pair in ctx.registers.windows(2) {
        let (r1, r2) = (pair[0], pair[1]);
        if r1.at >= r2.at || r2.at <= start || r2.at > end {
            continue;
        }
        let Some(positions) = span_intervals(day, ctx, r1.at, r2.at) else {
            continue;
        };
        let mut sum: i128 = 0;
        let mut covered = !positions.is_empty();
        for &(date, n) in &positions {
            match day_on(day, ctx, date).and_then(|d| value(d, usize::from(n) - 1)) {
                Some(v) => sum += i128::from(v.micros()),
                None => covered = false,
            }
        }
        if !covered {
            continue;
        }
        let Some(diff) = r2.value.checked_sub(r1.value) else {
            continue;
        };
        let tolerance = Quantity::from_micros(diff.micros().saturating_abs())
            .mul_div(i128::from(ctx.rules.sum_tolerance_percent.micros()), 100 * 1_000_000);
        let Some(tolerance) = tolerance else { continue };
        if (sum - i128::from(diff.micros())).abs() <= i128::from(tolerance.micros()) {
            continue;
        }
        let here: Vec<u16> = positions
            .iter()
            .filter(|(d, _)| *d == day.date)
            .map(|&(_, n)| n)
            .collect();
        let mut f = IntervalFlag::new(IntervalRule::SumCheck, here);
        f.expected = Some(diff);
        f.limit = Some(tolerance);
        f.actual = i64::try_from(sum).ok().map(Quantity::from_micros);
        f.detail = Some(format!(
            "{} intervals from {} to {} sum to {}; the register moved {} ({} → {}), tolerance {}%",
            positions.len(),
            r1.at,
            r2.at,
            f.actual.map_or_else(|| sum.to_string(), |a| a.to_string()),
            diff,
            r1.value,
            r2.value,
            ctx.rules.sum_tolerance_percent
        ));
        flags.push(f);
    }
    flags
}

fn duplicate(ctx: &DayContext<'_>) -> Option<IntervalFlag> {
    let first = ctx.duplicates.first()?;
    let mut intervals: Vec<u16> = ctx.duplicates.iter().map(|d| d.interval).collect();
    intervals.sort_unstable();
    intervals.dedup();
    let mut f = IntervalFlag::new(IntervalRule::Duplicate, intervals);
    f.expected = Some(first.stored);
    f.actual = Some(first.arrived);
    let mut detail = ctx
        .duplicates
        .iter()
        .take(DUPLICATES_NAMED)
        .map(|d| format!("interval {}: stored {}, arrived {}", d.interval, d.stored, d.arrived))
        .collect::<Vec<_>>()
        .join("; ");
    if ctx.duplicates.len() > DUPLICATES_NAMED {
        detail.push_str(&format!("; and {} more", ctx.duplicates.len() - DUPLICATES_NAMED));
    }
    f.detail = Some(detail);
    Some(f)
}

// ---- shared by the rules and the estimation ----

/// Interval `i`'s (0-based) value, `None` when it has none (no value, or quality `Missing`).
pub(super) fn value(day: &IntervalDay, i: usize) -> Option<Quantity> {
    match day.quality.get(i) {
        Some(Quality::Missing) => None,
        _ => day.values.get(i).copied().flatten(),
    }
}

/// The 1-based number of the interval at index `i`.
pub(super) fn number(i: usize) -> u16 {
    u16::try_from(i + 1).unwrap_or(u16::MAX)
}

/// The day's present values with their 1-based numbers.
fn values(day: &IntervalDay) -> impl Iterator<Item = (u16, Quantity)> + '_ {
    (0..day.values.len()).filter_map(|i| value(day, i).map(|v| (number(i), v)))
}

/// A count in a flag's numbers (whole units).
fn count_quantity(n: usize) -> Option<Quantity> {
    i64::try_from(n).ok().and_then(Quantity::from_units)
}

/// `n / d` in micro-units, rounded half away from zero.
pub(super) fn round_div(n: i128, d: i128) -> Option<Quantity> {
    if d == 0 {
        return None;
    }
    let (q, r) = (n / d, n % d);
    let q = if 2 * r.abs() >= d.abs() {
        q + n.signum() * d.signum()
    } else {
        q
    };
    i64::try_from(q).ok().map(Quantity::from_micros)
}

/// The instant the day after `date` begins.
pub(super) fn day_end(ctx: &DayContext<'_>, date: Date) -> Option<Timestamp> {
    ctx.clock.day_start(date.tomorrow().ok()?)
}

/// The day of `date` the span rules read: `day` itself or a history day, of the same interval
/// length and with as many values as the clock gives the date (else its intervals' times are
/// in doubt, and so is any sum over them).
pub(super) fn day_on<'a>(day: &'a IntervalDay, ctx: &DayContext<'a>, date: Date) -> Option<&'a IntervalDay> {
    let d = if date == day.date {
        day
    } else {
        ctx.history
            .iter()
            .find(|h| h.date == date && h.interval_minutes == day.interval_minutes)?
    };
    (ctx.clock.intervals_in_day(date, d.interval_minutes) == Some(d.values.len())).then_some(d)
}

/// The intervals (date, 1-based number) lying wholly inside `from..=to`: start ≥ `from` and
/// end ≤ `to`. Register reads on interval boundaries (AMI registers are read at midnight) make
/// this exactly the span; a read between boundaries leaves out the interval it cuts. `None`
/// when the span holds an interval of a day after `day` (not in the context).
pub(super) fn span_intervals(
    day: &IntervalDay,
    ctx: &DayContext<'_>,
    from: Timestamp,
    to: Timestamp,
) -> Option<Vec<(Date, u16)>> {
    let step = SignedDuration::from_mins(i64::from(day.interval_minutes));
    let mut out = Vec::new();
    let mut date = ctx.clock.date_of(from);
    loop {
        let mut s = ctx.clock.day_start(date)?;
        if s >= to {
            return Some(out);
        }
        let count = ctx.clock.intervals_in_day(date, day.interval_minutes)?;
        for n in 1..=count {
            let e = s.checked_add(step).ok()?;
            if s >= from && e <= to {
                if date > day.date {
                    return None;
                }
                out.push((date, u16::try_from(n).ok()?));
            }
            s = e;
        }
        date = date.tomorrow().ok()?;
    }
}

/// History days that are like `day`: the same like-day kind (weekday, Saturday, Sunday or
/// holiday), within `like_day_weeks` weeks before it, the same interval length, a value in
/// every interval, not rejected. Most recent first.
pub(super) fn like_day_candidates<'a>(day: &IntervalDay, ctx: &DayContext<'a>) -> Vec<&'a IntervalDay> {
    let kind = like_day_kind(day.date, ctx.holidays);
    let weeks = i64::from(ctx.rules.like_day_weeks);
    let Ok(earliest) = day.date.checked_sub((weeks * 7).days()) else {
        return Vec::new();
    };
    let mut like: Vec<&IntervalDay> = ctx
        .history
        .iter()
        .filter(|h| h.date < day.date && h.date >= earliest)
        .filter(|h| like_day_kind(h.date, ctx.holidays) == kind)
        .filter(|h| h.interval_minutes == day.interval_minutes && h.status != ReadStatus::Rejected)
        .filter(|h| !h.values.is_empty() && (0..h.values.len()).all(|i| value(h, i).is_some()))
        .collect();
    like.sort_by_key(|h| std::cmp::Reverse(h.date));
    like.dedup_by_key(|h| h.date);
    like
}
