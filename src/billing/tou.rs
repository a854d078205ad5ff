//! Time-of-use periods (`[tou]`): which period each interval of a day falls in, so the JSON
//! and CSV exports add the day's totals per period (peak, off-peak, ...).
//!
//! ```toml
//! [tou]
//! default_period = "off_peak"
//! [[tou.period]]
//! name = "peak"
//! days = "weekday"       # weekday, weekend (Saturday, Sunday and [intervals] holidays) or all
//! hours = [16, 21]       # local hours, from (included) to (excluded)
//! months = [6, 7, 8, 9]  # the season; all months when left out
//! ```
//! Periods are tried in order, the first that matches an interval's local start wins; an
//! interval no period matches counts to `default_period`.

use std::collections::BTreeMap;

use jiff::civil::{Date, Weekday};
use serde::{Deserialize, Serialize};

use crate::model::Quantity;
use crate::model::interval::{DayClock, IntervalDay};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayType {
    Weekday,
    Weekend,
    All,
}

/// One time-of-use period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TouPeriod {
    pub name: String,
    #[serde(default = "all_days")]
    pub days: DayType,
    /// `[from, to)` in local hours, 0..=24; `from > to` wraps past midnight (`[22, 6]`).
    pub hours: [u8; 2],
    /// Months 1..=12 of the season; empty: every month.
    #[serde(default)]
    pub months: Vec<u8>,
}

fn all_days() -> DayType {
    DayType::All
}

/// `[tou]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TouConfig {
    #[serde(default = "default_period")]
    pub default_period: String,
    #[serde(default)]
    pub period: Vec<TouPeriod>,
}

fn default_period() -> String {
    "off_peak".into()
}

impl TouConfig {
    /// What is wrong with the schedule, for `check-config` and the daemon's start.
    pub fn check(&self) -> Result<(), String> {
        for p in &self.period {
            if p.name.is_empty() || p.name.len() > 32 {
                return Err("[tou] period names are 1 to 32 characters".into());
            }
            if p.hours[0] > 24 || p.hours[1] > 24 || p.hours[0] == p.hours[1] {
                return Err(format!(
                    "[tou] period {}: hours are two different hours of 0..=24",
                    p.name
                ));
            }
            if p.months.iter().any(|m| !(1..=12).contains(m)) {
                return Err(format!("[tou] period {}: months are 1..=12", p.name));
            }
        }
        Ok(())
    }

    fn period_of(&self, date: Date, hour: u8, weekend: bool) -> &str {
        for p in &self.period {
            let day_ok = match p.days {
                DayType::All => true,
                DayType::Weekday => !weekend,
                DayType::Weekend => weekend,
            };
            let month_ok = p.months.is_empty() || p.months.contains(&(date.month() as u8));
            let [from, to] = p.hours;
            let hour_ok = if from < to {
                hour >= from && hour < to
            } else {
                hour >= from || hour < to
            };
            if day_ok && month_ok && hour_ok {
                return &p.name;
            }
        }
        &self.default_period
    }

    /// The day's totals per period (known values only), every period named in the schedule
    /// present (zero when no interval fell in it).
    pub fn totals(&self, day: &IntervalDay, clock: &DayClock, holidays: &[Date]) -> BTreeMap<String, Quantity> {
        let mut out: BTreeMap<String, Quantity> = self
            .period
            .iter()
            .map(|p| (p.name.clone(), Quantity::ZERO))
            .chain([(self.default_period.clone(), Quantity::ZERO)])
            .collect();
        let weekend = matches!(day.date.weekday(), Weekday::Saturday | Weekday::Sunday) || holidays.contains(&day.date);
        for (i, v) in day.values.iter().enumerate() {
            let (Some(v), Some(start)) = (v, clock.interval_start(day.date, day.interval_minutes, (i + 1) as u16))
            else {
                continue;
            };
            let hour = start.to_zoned(clock.tz.clone()).hour() as u8;
            let name = self.period_of(day.date, hour, weekend).to_owned();
            let total = out.entry(name).or_default();
            *total = total.checked_add(*v).unwrap_or(*total);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::interval::{DayKey, Quality};
    use jiff::tz::TimeZone;

    #[test]
    fn peak_hours_on_weekdays_of_the_season_and_the_rest_off_peak() {
        let tou: TouConfig = toml::from_str(
            "[[period]]\nname = \"peak\"\ndays = \"weekday\"\nhours = [16, 21]\nmonths = [6, 7, 8]\n\
             [[period]]\nname = \"night\"\nhours = [22, 6]\n",
        )
        .unwrap();
        tou.check().unwrap();
        let clock = DayClock::new(TimeZone::UTC);
        let key = |d| DayKey {
            meter_id: "m".into(),
            channel: "E1".into(),
            date: d,
        };
        // Hourly, 1 kWh each hour: a June Monday has 5 peak hours, 8 night hours (22–06), 11 off peak.
        let mut day = IntervalDay::empty(key(jiff::civil::date(2026, 6, 1)), 60, 24, jiff::Timestamp::UNIX_EPOCH);
        day.values = vec![Some(Quantity::from_units(1).unwrap()); 24];
        day.quality = vec![Quality::Actual; 24];
        let t = tou.totals(&day, &clock, &[]);
        assert_eq!(t["peak"], Quantity::from_units(5).unwrap());
        assert_eq!(t["night"], Quantity::from_units(8).unwrap());
        assert_eq!(t["off_peak"], Quantity::from_units(11).unwrap());
        // A holiday counts as a weekend day: no peak.
        let t = tou.totals(&day, &clock, &[jiff::civil::date(2026, 6, 1)]);
        assert_eq!(t["peak"], Quantity::ZERO);
        assert_eq!(t["off_peak"], Quantity::from_units(16).unwrap());
    }
}
