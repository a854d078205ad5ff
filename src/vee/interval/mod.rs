//! Interval VEE: the rules of `[intervals]` on one meter-channel-day, and the estimation of
//! its missing intervals.
//!
//! Pure functions, like the register VEE: [`validate_day`] looks at a day (after the new values
//! were merged into what was stored), the meter's like days and register reads, and sets the
//! day's flags, its estimated values with their methods, and its status. It never touches the
//! store; the ingest gathers the context and stores the outcome.
//!
//! Rule ids are part of the interface ([`IntervalRule`](crate::model::interval::IntervalRule)); each flag carries its numbers and the
//! 1-based intervals it concerns. Sources of the rules and methods: `interval-data.md` §2, §3
//! (Oracle MDM, Itron IEE, CPUC D.98-12-080 "CA Interval Data VEE Rules").
//!
//! # Rules
//! An interval has a value unless its value is `None` or its quality `Missing`. Counts in a
//! flag's numbers are whole units. Before estimation ([`check_day`], on the senders' values;
//! meterd's own earlier estimates are removed first):
//! - `interval_count`: the day has not N = [`DayClock::intervals_in_day`] values (92 / 100
//!   quarter hours on the DST days). expected = N, actual = the values.
//! - `interval_gap`: the intervals without a value; actual = how many. Does not hold the day:
//!   estimation fills it or raises `not_estimable`.
//! - `interval_negative`: a value < 0 on a `delivered` channel; actual = the lowest.
//! - `interval_spike` (Oracle MDM Interval Spike Check): over the `Actual` values (≥ 3),
//!   highest > spike_factor × third-highest, with a third-highest > 0 (as the register rule: a
//!   mostly idle meter has no baseline). Intervals = the highest one(s); expected = third,
//!   limit = factor × third, actual = highest.
//! - `interval_zero_run` (Oracle MDM Consecutive Interval Check): on an active meter, a run of
//!   ≥ Z = [`IntervalRules::zero_run_for`] consecutive `Actual` zeros; a zero in an outage
//!   interval breaks the run (ERCOT: a zero is valid with an outage flag). Intervals = every
//!   run; limit = Z, actual = the longest run.
//! - `continuous_flow` (Oracle MDM water-leak check), where
//!   [`IntervalRules::checks_continuous_flow`]: every interval has a value > 0. Intervals =
//!   the (first) lowest; actual = its value.
//! - `sum_check` (Oracle MDM Sum Check): for consecutive register reads r1 < r2 with r2 in
//!   (day start, next day start], when every interval wholly inside r1..r2 (start ≥ r1, end
//!   ≤ r2; reads on boundaries make that the exact span) has a value on this day or a history
//!   day: |Σ − (r2 − r1)| > (r2 − r1) × sum_tolerance_percent / 100. expected = r2 − r1,
//!   limit = the tolerance, actual = Σ, intervals = this day's in the span.
//! - `interval_duplicate`: the intervals of [`DayContext::duplicates`]; expected / actual =
//!   the first one's stored and arrived values, the detail names the first three.
//!
//! Estimation ([`estimate_day`]): gaps of ≤ `max_interpolation_minutes` between two usable
//! neighbours are interpolated linearly (`Method::Linear`); the others take the average of
//! the same local times on `like_days` like days (`Method::LikeDay`), scaled to a register
//! difference around them when the other intervals of its span are known. It adds
//! - `not_estimable`: the intervals left without a value, and why;
//! - `sum_check` again when a register difference is below the known intervals of its span,
//!   so that the like-day values could not be scaled to it.
//!
//! After estimation ([`check_usage`], on the repaired day; only a day with every value):
//! with A = the rounded average total of the like days ([`IntervalRules::like_day_weeks`]
//! weeks back, same like-day kind, complete, not rejected; at least 2):
//! - `interval_high`: total > max(high_factor × A, A + min_high_delta).
//! - `interval_low`: 0 < total < low_factor × A (a zero day is the zero run's business).
//!
//! Every flag but `interval_gap` holds the day ([`holds_day`](crate::model::interval::IntervalRule::holds_day)).

mod config;
mod estimate;
mod rules;
#[cfg(test)]
mod tests;

use jiff::Timestamp;
use jiff::civil::Date;

pub use config::{IntervalConfig, IntervalRules};
pub use estimate::{ESTIMATE_SOURCE, LikeDayKind, clear_estimates, estimate_day, like_day_kind, like_day_profile};
pub use rules::{MIN_LIKE_DAYS_FOR_USAGE, check_day, check_usage};

use crate::model::interval::{DayClock, Direction, IntervalDay, Method};
use crate::model::{Quantity, Service};

/// A register read of the meter, for the sum check and for scaling like-day estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterPoint {
    pub at: Timestamp,
    /// Register value in the channel's units (multiplier applied).
    pub value: Quantity,
}

/// A value that arrived for an interval already stored with another value (`interval_duplicate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateValue {
    /// 1-based interval number.
    pub interval: u16,
    pub stored: Quantity,
    pub arrived: Quantity,
}

/// Everything [`validate_day`] looks at besides the day.
#[derive(Debug, Clone, Copy)]
pub struct DayContext<'a> {
    pub clock: &'a DayClock,
    pub rules: &'a IntervalRules,
    /// The meter's service; `None` when the meter is not in the meter list.
    pub service: Option<Service>,
    pub direction: Direction,
    /// Whether the meter is active (a zero run on an inactive meter is expected).
    pub active: bool,
    pub holidays: &'a [Date],
    /// Earlier days of the same meter and channel, at least the last `like_day_weeks` weeks
    /// where stored (any order): like days for estimation and for high/low, and the days a
    /// sum-check span reaches back into.
    pub history: &'a [IntervalDay],
    /// The meter's register reads from before the earliest history day to after the day, in
    /// time order.
    pub registers: &'a [RegisterPoint],
    /// Values that arrived for intervals already stored with another value.
    pub duplicates: &'a [DuplicateValue],
}

/// Runs the interval rules on `day`, estimates what the rules allow, and sets the day's flags
/// and status: `estimated` when meterd filled a gap and no holding flag was raised,
/// `validated` with nothing to fill, else `flagged` (held for review). Values with quality
/// `Actual`, `Substituted` or `Edited` are never changed; earlier estimates are made again.
pub fn validate_day(day: &mut IntervalDay, ctx: &DayContext<'_>) {
    clear_estimates(day);
    let mut flags = check_day(day, ctx);
    estimate_day(day, ctx, &mut flags);
    flags.extend(check_usage(day, ctx));
    let holds = flags.iter().any(|f| f.rule.holds_day());
    // meterd's own estimates only: a sender's substitute (`Method::Source`) was not filled here.
    let estimated = day
        .methods
        .iter()
        .any(|m| matches!(m, Some(Method::Linear | Method::LikeDay)));
    day.flags = flags;
    day.status = if holds {
        crate::model::ReadStatus::Flagged
    } else if estimated {
        crate::model::ReadStatus::Estimated
    } else {
        crate::model::ReadStatus::Validated
    };
}
