//! Estimation of missing intervals. Implemented by the interval-VEE work.

use jiff::civil::Date;

use super::DayContext;
use crate::model::interval::{IntervalDay, IntervalFlag};

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

/// Removes meterd's own earlier estimates from `day` (they are made again).
pub fn clear_estimates(_day: &mut IntervalDay) {}

/// Fills what the rules allow; adds `not_estimable` for what is left.
pub fn estimate_day(_day: &mut IntervalDay, _ctx: &DayContext<'_>, _flags: &mut Vec<IntervalFlag>) {}
