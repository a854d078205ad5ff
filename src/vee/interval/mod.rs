//! Interval VEE: the rules of `[intervals]` on one meter-channel-day, and the estimation of
//! its missing intervals.
//!
//! Pure functions, like the register VEE: [`validate_day`] looks at a day (after the new values
//! were merged into what was stored), the meter's like days and register reads, and sets the
//! day's flags, its estimated values with their methods, and its status. It never touches the
//! store; the ingest gathers the context and stores the outcome.
//!
//! Rule ids are part of the interface ([`IntervalRule`]); each flag carries its numbers and the
//! 1-based intervals it concerns. Sources of the rules and methods: `interval-data.md` §2, §3
//! (Oracle MDM, Itron IEE, CPUC D.98-12-080 "CA Interval Data VEE Rules").

mod config;
mod estimate;
mod rules;

use jiff::Timestamp;
use jiff::civil::Date;

pub use config::{IntervalConfig, IntervalRules};
pub use estimate::{LikeDayKind, estimate_day, like_day_kind};
pub use rules::check_day;

use crate::model::interval::{DayClock, Direction, IntervalDay};
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
/// and status: `estimated` when every gap was filled and no holding flag was raised,
/// `validated` with nothing to fill, else `flagged` (held for review). Values with quality
/// `Actual`, `Substituted` or `Edited` are never changed; earlier estimates are made again.
pub fn validate_day(day: &mut IntervalDay, ctx: &DayContext<'_>) {
    estimate::clear_estimates(day);
    let mut flags = check_day(day, ctx);
    estimate_day(day, ctx, &mut flags);
    let holds = flags.iter().any(|f| f.rule.holds_day());
    let estimated = day.methods.iter().any(Option::is_some);
    day.flags = flags;
    day.status = if holds {
        crate::model::ReadStatus::Flagged
    } else if estimated {
        crate::model::ReadStatus::Estimated
    } else {
        crate::model::ReadStatus::Validated
    };
}
