//! `[intervals]` of `meterd.toml`: the utility's time zone, holidays, and the interval VEE
//! thresholds and estimation limits per service (`[intervals.water]`, `[intervals.gas]`,
//! `[intervals.electric]`; a table left out keeps every default).

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::model::interval::DayClock;
use crate::model::{Quantity, Service};

/// Thresholds of the interval rules and the estimation limits; every field may be set per
/// service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntervalRules {
    /// `interval_spike`: the day's highest interval > this × the third-highest (Oracle MDM
    /// Interval Spike Check). Default 3.
    pub spike_factor: Quantity,
    /// `interval_zero_run`: this many consecutive zero intervals on an active meter.
    /// Default: 8 hours' worth of the day's interval length.
    pub zero_run_intervals: Option<u32>,
    /// `sum_check`: tolerance of the intervals' sum against the register difference, in
    /// percent. Default 2.
    pub sum_tolerance_percent: Quantity,
    /// `interval_high`: day total > this × the like-day average. Default 1.8 (as the
    /// register rules).
    pub high_factor: Quantity,
    /// `interval_low`: 0 < day total < this × the like-day average. Default 0.4.
    pub low_factor: Quantity,
    /// Smallest margin above the like-day average before a day is high, in the channel's
    /// units (a tiny average does not flag every day). Default 1.
    pub min_high_delta: Quantity,
    /// Gaps up to this many minutes are filled by linear interpolation (CPUC: 2 hours).
    pub max_interpolation_minutes: u32,
    /// Like days averaged for a longer gap (CPUC, Itron: 3).
    pub like_days: u32,
    /// How far back like days are looked for, in weeks (the issue: 4).
    pub like_day_weeks: u32,
    /// `continuous_flow` is checked on water and gas channels only, unless set here.
    pub continuous_flow: Option<bool>,
}

impl Default for IntervalRules {
    fn default() -> Self {
        IntervalRules {
            spike_factor: Quantity::from_micros(3_000_000),
            zero_run_intervals: None,
            sum_tolerance_percent: Quantity::from_micros(2_000_000),
            high_factor: Quantity::from_micros(1_800_000),
            low_factor: Quantity::from_micros(400_000),
            min_high_delta: Quantity::from_micros(1_000_000),
            max_interpolation_minutes: 120,
            like_days: 3,
            like_day_weeks: 4,
            continuous_flow: None,
        }
    }
}

impl IntervalRules {
    /// Consecutive zero intervals that make a zero run, for a day of `minutes` intervals.
    pub fn zero_run_for(&self, minutes: u16) -> u32 {
        self.zero_run_intervals
            .unwrap_or_else(|| (8 * 60 / u32::from(minutes.max(1))).max(1))
    }

    /// Whether `continuous_flow` applies to channels of `service`.
    pub fn checks_continuous_flow(&self, service: Option<Service>) -> bool {
        self.continuous_flow
            .unwrap_or(matches!(service, Some(Service::Water | Service::Gas)))
    }
}

/// The `[intervals]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntervalConfig {
    /// IANA time zone of the utility's days (`America/Los_Angeles`); default the system's.
    pub time_zone: Option<String>,
    /// Holidays (`YYYY-MM-DD`): like days of a holiday are Sundays, and a holiday is no like
    /// day of a weekday (CPUC reference days).
    pub holidays: Vec<Date>,
    pub water: IntervalRules,
    pub gas: IntervalRules,
    pub electric: IntervalRules,
}

impl IntervalConfig {
    /// The rules for channels of meters of `service` (a meter not in the meter list: the
    /// electric ones, since AMI interval data is mostly electric).
    pub fn rules(&self, service: Option<Service>) -> &IntervalRules {
        match service {
            Some(Service::Water) => &self.water,
            Some(Service::Gas) => &self.gas,
            Some(Service::Electric) | None => &self.electric,
        }
    }

    /// The configured time zone, or the system's. An unknown name is an error naming it.
    pub fn time_zone(&self) -> Result<TimeZone, String> {
        match &self.time_zone {
            Some(name) => TimeZone::get(name).map_err(|e| format!("[intervals] time_zone {name:?}: {e}")),
            None => Ok(TimeZone::try_system().unwrap_or(TimeZone::UTC)),
        }
    }

    /// The calendar of local days (the system's zone when the configured one is unknown;
    /// `check-config` and the daemon's start refuse that case first).
    pub fn clock(&self) -> DayClock {
        DayClock::new(
            self.time_zone()
                .unwrap_or_else(|_| TimeZone::try_system().unwrap_or(TimeZone::UTC)),
        )
    }

    pub fn is_holiday(&self, date: Date) -> bool {
        self.holidays.contains(&date)
    }
}
