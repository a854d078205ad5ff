//! Estimation of missing intervals (`interval-data.md` §3; the methods are in the module
//! above). Every value made here has quality `Estimated`, method `Linear` or `LikeDay`, and
//! the source [`ESTIMATE_SOURCE`]; [`clear_estimates`] recognises them by those three marks.

use jiff::civil::Date;
use jiff::{SignedDuration, Zoned};

use super::DayContext;
use super::rules::{day_on, like_day_candidates, number, round_div, span_intervals, value};
use crate::model::Quantity;
use crate::model::interval::{IntervalDay, IntervalFlag, IntervalRule, Method, Quality};

/// The name of meterd's own estimates in [`IntervalDay::sources`].
pub const ESTIMATE_SOURCE: &str = "estimate";

/// Which days are like each other: weekdays, Saturdays, Sundays and holidays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LikeDayKind {
    Weekday,
    Saturday,
    SundayOrHoliday,
}

pub fn like_day_kind(date: Date, holidays: &[Date]) -> LikeDayKind {
    if holidays.contains(&date) {
        return LikeDayKind::SundayOrHoliday;
    }
    match date.weekday() {
        jiff::civil::Weekday::Saturday => LikeDayKind::Saturday,
        jiff::civil::Weekday::Sunday => LikeDayKind::SundayOrHoliday,
        _ => LikeDayKind::Weekday,
    }
}

/// Removes meterd's own earlier estimates from `day` (they are made again): intervals with
/// quality `Estimated`, method `Linear` or `LikeDay` and the source [`ESTIMATE_SOURCE`]. The
/// source test matters: a sender's NEM12 `E17` reads as `Method::Linear` too, and a sender's
/// value is never touched. So are `Actual`, `Substituted` and `Edited` values.
pub fn clear_estimates(day: &mut IntervalDay) {
    let Some(ours) = day.sources.iter().position(|s| s == ESTIMATE_SOURCE) else {
        return;
    };
    for i in 0..day.values.len() {
        let own = matches!(day.methods.get(i), Some(Some(Method::Linear | Method::LikeDay)))
            && day.quality.get(i) == Some(&Quality::Estimated)
            && day.value_source.get(i).copied().flatten().map(usize::from) == Some(ours);
        if own {
            set(day, i, None, Quality::Missing, None, None);
        }
    }
}

/// Fills what the rules allow; adds `not_estimable` for what is left, and `sum_check` when a
/// register difference contradicts the known intervals so that like-day values cannot be
/// scaled to it.
pub fn estimate_day(day: &mut IntervalDay, ctx: &DayContext<'_>, flags: &mut Vec<IntervalFlag>) {
    let gaps = gaps(day);
    if gaps.is_empty() {
        return;
    }
    let minutes = u64::from(day.interval_minutes.max(1));
    let max_minutes = u64::from(ctx.rules.max_interpolation_minutes);
    let mut linear: Vec<(usize, Quantity)> = Vec::new();
    let mut longer: Vec<usize> = Vec::new();
    for (a, g) in gaps {
        let short = g as u64 * minutes <= max_minutes;
        match short.then(|| interpolate(day, a, g)).flatten() {
            Some(values) => linear.extend((a..a + g).zip(values)),
            None => longer.extend(a..a + g),
        }
    }
    if !linear.is_empty() {
        let src = day.source_index(ESTIMATE_SOURCE);
        for (i, v) in linear {
            set(day, i, Some(v), Quality::Estimated, Some(Method::Linear), Some(src));
        }
    }
    if longer.is_empty() {
        return;
    }
    match like_day_average(day, ctx, &longer) {
        Ok(mut estimates) => {
            flags.extend(scale_to_registers(day, ctx, &longer, &mut estimates));
            let src = day.source_index(ESTIMATE_SOURCE);
            for (i, v) in longer.into_iter().zip(estimates) {
                set(day, i, Some(v), Quality::Estimated, Some(Method::LikeDay), Some(src));
            }
        }
        Err(reason) => {
            let mut f = IntervalFlag::new(IntervalRule::NotEstimable, longer.into_iter().map(number).collect());
            f.detail = Some(reason);
            flags.push(f);
        }
    }
}

/// Runs of missing intervals: (first index, length).
fn gaps(day: &IntervalDay) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < day.values.len() {
        if value(day, i).is_some() {
            i += 1;
            continue;
        }
        let a = i;
        while i < day.values.len() && value(day, i).is_none() {
            i += 1;
        }
        out.push((a, i - a));
    }
    out
}

/// Linear interpolation of the gap of `g` intervals at index `a`: the k-th missing value is
/// v_left + (v_right − v_left) × k / (g + 1), rounded half away from zero to a micro-unit.
/// Values are usage per interval, so this is the straight line between the two neighbours'
/// usage. End points are this day's neighbouring intervals with a value that are no outage
/// intervals (CPUC rules: a power failure is never an end point); the next day is not in the
/// context, so a gap at either end of the day goes to the like days instead.
fn interpolate(day: &IntervalDay, a: usize, g: usize) -> Option<Vec<Quantity>> {
    let end_point = |i: usize| value(day, i).filter(|_| !day.is_outage(number(i)));
    let left = i128::from(end_point(a.checked_sub(1)?)?.micros());
    let right = i128::from(end_point(a + g)?.micros());
    let steps = g as i128 + 1;
    (1..=g as i128)
        .map(|k| round_div(left * steps + (right - left) * k, steps))
        .collect()
}

/// The average of the same intervals on `like_days` like days (CPUC reference days; Itron:
/// the three nearest like days, excluding days with outages, estimates or missing intervals):
/// the most recent candidates of [`like_day_candidates`] that have no outage and no
/// `Estimated` or `Substituted` value (a substitute is an estimate, the sender's). Intervals are
/// matched by local time of day, so a DST day borrows from ordinary days: on the spring day
/// 03:00 takes the like day's 03:00, on the fall day both 01:00 hours take its 01:00. Each
/// average is rounded half away from zero to a micro-unit. `Err` names why not.
fn like_day_average(day: &IntervalDay, ctx: &DayContext<'_>, idxs: &[usize]) -> Result<Vec<Quantity>, String> {
    let need = ctx.rules.like_days as usize;
    if day_on(day, ctx, day.date).is_none() {
        return Err(format!(
            "{} values do not fit the local day, so its intervals' times are in doubt",
            day.values.len()
        ));
    }
    let mut used: Vec<(&IntervalDay, Vec<usize>)> = Vec::new();
    for like in like_day_candidates(day, ctx) {
        if used.len() >= need {
            break;
        }
        let measured = like.outages.is_empty()
            && !like
                .quality
                .iter()
                .any(|q| matches!(q, Quality::Estimated | Quality::Substituted));
        let whole = ctx.clock.intervals_in_day(like.date, like.interval_minutes) == Some(like.values.len());
        if !measured || !whole {
            continue;
        }
        let map: Option<Vec<usize>> = idxs.iter().map(|&i| same_time_index(day, ctx, like, i)).collect();
        if let Some(map) = map {
            used.push((like, map));
        }
    }
    if need == 0 || used.len() < need {
        return Err(format!(
            "{} like day(s) without gaps, estimates or outages within {} weeks; {need} needed",
            used.len(),
            ctx.rules.like_day_weeks
        ));
    }
    (0..idxs.len())
        .map(|k| {
            let sum = used
                .iter()
                .map(|(d, map)| value(d, map[k]).map(|v| i128::from(v.micros())))
                .sum::<Option<i128>>()?;
            round_div(sum, used.len() as i128)
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| "the like-day average does not fit a quantity".to_owned())
}

/// The like-day average of every interval of `day` (the review chart's marker line): what a
/// like-day estimate of the whole day would start from, unscaled. `Err` names why there is none.
pub fn like_day_profile(day: &IntervalDay, ctx: &DayContext<'_>) -> Result<Vec<Quantity>, String> {
    let all: Vec<usize> = (0..day.values.len()).collect();
    like_day_average(day, ctx, &all)
}

/// The index on `like` of the interval starting at the same local time as `day`'s interval
/// `i`; `None` when that time does not exist there (a spring-forward like day).
fn same_time_index(day: &IntervalDay, ctx: &DayContext<'_>, like: &IntervalDay, i: usize) -> Option<usize> {
    let start = ctx.clock.interval_start(day.date, day.interval_minutes, number(i))?;
    let time = Zoned::new(start, ctx.clock.tz.clone()).time();
    let there = like.date.to_datetime(time).to_zoned(ctx.clock.tz.clone()).ok()?;
    if there.time() != time {
        return None;
    }
    let (date, n) = ctx.clock.locate(there.timestamp(), like.interval_minutes)?;
    let n = usize::from(n);
    (date == like.date && n <= like.values.len()).then(|| n - 1)
}

/// Scales the like-day values `estimates` of the intervals `idxs` to a register difference
/// (Itron: averages are scaled so the intervals sum to the register channel). The reads are
/// the tightest pair around the estimated intervals: r1 the last read at or before the first
/// one's start, r2 the first read at or after the last one's end. Every other interval
/// wholly inside r1..r2 (this day's, linear estimates included, and history days') must have
/// a value; then the estimates must sum to T = (r2 − r1) − those known intervals, and each
/// becomes T × its share of the like-day sum. The shares are rounded on the running sum
/// (value_k = round(T × S_k / S) − round(T × S_(k−1) / S), S_k the like-day sum of the first
/// k), so every value is within a micro-unit of its exact share and they add up to T exactly.
/// No pair, or an interval without a value: no scaling. T < 0 (the known intervals alone
/// exceed the register difference), or a like-day sum of zero with T ≠ 0: the averages stay
/// unscaled and a `sum_check` flag holds the day, since the register and the intervals
/// disagree.
fn scale_to_registers(
    day: &IntervalDay,
    ctx: &DayContext<'_>,
    idxs: &[usize],
    estimates: &mut [Quantity],
) -> Option<IntervalFlag> {
    let step = SignedDuration::from_mins(i64::from(day.interval_minutes));
    let first = ctx
        .clock
        .interval_start(day.date, day.interval_minutes, number(*idxs.first()?))?;
    let last = ctx
        .clock
        .interval_start(day.date, day.interval_minutes, number(*idxs.last()?))?;
    let end = last.checked_add(step).ok()?;
    let r1 = ctx.registers.iter().rev().find(|r| r.at <= first)?;
    let r2 = ctx.registers.iter().find(|r| r.at >= end)?;
    let mut known: i128 = 0;
    for (date, n) in span_intervals(day, ctx, r1.at, r2.at)? {
        let i = usize::from(n) - 1;
        if date == day.date && idxs.binary_search(&i).is_ok() {
            continue;
        }
        known += i128::from(value(day_on(day, ctx, date)?, i)?.micros());
    }
    let diff = r2.value.checked_sub(r1.value)?;
    let target = i128::from(diff.micros()) - known;
    let like_sum: i128 = estimates.iter().map(|v| i128::from(v.micros())).sum();
    if target >= 0 && like_sum > 0 {
        let mut scaled = Vec::with_capacity(estimates.len());
        let (mut running, mut before) = (0i128, 0i128);
        for v in estimates.iter() {
            running += i128::from(v.micros());
            let upto = i128::from(round_div(running.checked_mul(target)?, like_sum)?.micros());
            scaled.push(Quantity::from_micros(i64::try_from(upto - before).ok()?));
            before = upto;
        }
        estimates.copy_from_slice(&scaled);
        return None;
    }
    if target == 0 && like_sum == 0 {
        return None;
    }
    let mut f = IntervalFlag::new(IntervalRule::SumCheck, idxs.iter().copied().map(number).collect());
    f.expected = Some(diff);
    f.actual = i64::try_from(known + like_sum).ok().map(Quantity::from_micros);
    f.detail = Some(format!(
        "like-day estimates not scaled: the register moved {diff} from {} to {}, the known intervals \
         sum to {}, leaving {} for {} estimated intervals whose like-day sum is {}",
        r1.at,
        r2.at,
        Quantity::from_micros(i64::try_from(known).unwrap_or(i64::MAX)),
        Quantity::from_micros(i64::try_from(target).unwrap_or(i64::MIN)),
        idxs.len(),
        Quantity::from_micros(i64::try_from(like_sum).unwrap_or(i64::MAX)),
    ));
    Some(f)
}

fn set(day: &mut IntervalDay, i: usize, v: Option<Quantity>, q: Quality, m: Option<Method>, src: Option<u8>) {
    if let Some(x) = day.values.get_mut(i) {
        *x = v;
    }
    if let Some(x) = day.quality.get_mut(i) {
        *x = q;
    }
    if let Some(x) = day.methods.get_mut(i) {
        *x = m;
    }
    if let Some(x) = day.value_source.get_mut(i) {
        *x = src;
    }
}
