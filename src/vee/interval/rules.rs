//! The interval rules (see the module above). Implemented by the interval-VEE work.

use super::DayContext;
use crate::model::interval::{IntervalDay, IntervalFlag};

/// The flags the rules raise on `day` (before estimation fills anything).
pub fn check_day(_day: &IntervalDay, _ctx: &DayContext<'_>) -> Vec<IntervalFlag> {
    Vec::new()
}
