//! `report usage`: an account's interval data as a customer asks about it ("why is my bill so
//! high?"): the daily totals of the last 35 local days per channel, the chosen day's profile,
//! and every flag of those days in plain words ([`super::interval_words`]).

use jiff::Span;
use jiff::civil::Date;
use serde::Serialize;

use super::interval_words::{HourBar, Words, flag_sentence, hourly, long_date, profile_text, with_unit, wrap};
use crate::model::interval::{DayClock, Direction, IntervalDay, IntervalFlag};
use crate::model::{Quantity, Service};
use crate::store::{Result, Store};

/// Local days the daily totals cover, ending at the chosen day (a billing cycle and a few
/// days, as the register reports' default cycle).
pub const USAGE_DAYS: i64 = 35;

/// An account's usage report.
#[derive(Debug, Clone, Serialize)]
pub struct UsageReport {
    pub account: String,
    /// The chosen day (the profile's).
    pub day: Date,
    /// The first day of the daily totals.
    pub from: Date,
    /// The time zone of the local days.
    pub time_zone: String,
    pub meters: Vec<MeterUsage>,
}

/// One meter of the account.
#[derive(Debug, Clone, Serialize)]
pub struct MeterUsage {
    pub meter_id: String,
    pub service: Service,
    pub address: String,
    pub channels: Vec<ChannelUsage>,
}

/// One channel of the meter: its days and the chosen day's profile.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelUsage {
    pub channel: String,
    pub unit: String,
    pub direction: Direction,
    /// Every day from `from` to `day`, oldest first (days without data too).
    pub days: Vec<UsageDay>,
    /// The chosen day's values; `None` when it has no data.
    pub profile: Option<Profile>,
    /// The chosen day itself (for the chart).
    #[serde(skip)]
    pub profile_day: Option<IntervalDay>,
}

/// A day's total and flags.
#[derive(Debug, Clone, Serialize)]
pub struct UsageDay {
    pub date: Date,
    /// Sum of the known values; `None` without data.
    pub total: Option<Quantity>,
    /// The day's status (`validated`, `estimated`, `flagged`, ...), `no_data` without a day.
    pub status: String,
    pub flags: Vec<FlagWords>,
}

/// A flag with its sentence.
#[derive(Debug, Clone, Serialize)]
pub struct FlagWords {
    #[serde(flatten)]
    pub flag: IntervalFlag,
    pub sentence: String,
}

/// The chosen day's values, per interval and per hour.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub date: Date,
    pub interval_minutes: u16,
    pub values: Vec<Option<Quantity>>,
    /// Quality codes (`A`, `E`, `S`, `F`, `N`), one per interval.
    pub quality: Vec<String>,
    pub hours: Vec<HourBar>,
}

/// The status text of a day without data.
pub const NO_DATA: &str = "no_data";

/// The usage of every meter of `account` for the 35 local days ending at `day`. Meters in the
/// meter list's order; a meter without interval data has no channels.
pub fn account_usage(store: &dyn Store, clock: &DayClock, account: &str, day: Date) -> Result<UsageReport> {
    let txn = store.begin_read()?;
    let meters = txn.meters()?.into_iter().filter(|m| m.account == account).collect();
    report_of(txn.as_ref(), clock, account, meters, day)
}

/// The same report for one meter (the review screen's view of the meter under review), without
/// looking at the rest of the meter list.
pub fn meter_usage(store: &dyn Store, clock: &DayClock, meter: &crate::model::Meter, day: Date) -> Result<UsageReport> {
    let txn = store.begin_read()?;
    report_of(txn.as_ref(), clock, &meter.account, vec![meter.clone()], day)
}

fn report_of(
    txn: &dyn crate::store::ReadTxn,
    clock: &DayClock,
    account: &str,
    of: Vec<crate::model::Meter>,
    day: Date,
) -> Result<UsageReport> {
    let from = day.checked_sub(Span::new().days(USAGE_DAYS - 1)).unwrap_or(Date::MIN);
    let to = day.tomorrow().unwrap_or(Date::MAX);
    let mut meters = Vec::new();
    for meter in of {
        let days = txn.interval_days(&meter.meter_id, from, to)?;
        let mut channels = txn.channels(&meter.meter_id)?;
        // A day whose channel record is missing still shows (unit unknown).
        for d in &days {
            if !channels.iter().any(|c| c.channel == d.channel) {
                channels.push(crate::model::interval::Channel {
                    meter_id: meter.meter_id.clone(),
                    channel: d.channel.clone(),
                    unit: String::new(),
                    direction: Direction::Delivered,
                });
            }
        }
        let mut out = Vec::new();
        for ch in channels {
            let words = Words {
                clock,
                unit: &ch.unit,
                service: Some(meter.service),
            };
            let mine: Vec<&IntervalDay> = days.iter().filter(|d| d.channel == ch.channel).collect();
            let mut list = Vec::new();
            let mut date = from;
            while date <= day {
                list.push(match mine.iter().find(|d| d.date == date) {
                    Some(d) => UsageDay {
                        date,
                        total: Some(d.total()),
                        status: d.status.as_str().to_owned(),
                        flags: d
                            .flags
                            .iter()
                            .map(|f| FlagWords {
                                flag: f.clone(),
                                sentence: flag_sentence(d, f, &words),
                            })
                            .collect(),
                    },
                    None => UsageDay {
                        date,
                        total: None,
                        status: NO_DATA.to_owned(),
                        flags: Vec::new(),
                    },
                });
                match date.tomorrow() {
                    Ok(next) => date = next,
                    Err(_) => break,
                }
            }
            let profile_day = mine.iter().find(|d| d.date == day).map(|d| (*d).clone());
            let profile = profile_day.as_ref().map(|d| Profile {
                date: d.date,
                interval_minutes: d.interval_minutes,
                values: d.values.clone(),
                quality: d.quality.iter().map(|q| q.code().to_string()).collect(),
                hours: hourly(d, clock),
            });
            out.push(ChannelUsage {
                channel: ch.channel,
                unit: ch.unit,
                direction: ch.direction,
                days: list,
                profile,
                profile_day,
            });
        }
        meters.push(MeterUsage {
            meter_id: meter.meter_id,
            service: meter.service,
            address: meter.address,
            channels: out,
        });
    }
    Ok(UsageReport {
        account: account.to_owned(),
        day,
        from,
        // A zone without an IANA name (a bare system offset) shows its offset now.
        time_zone: clock.tz.iana_name().map_or_else(
            || format!("UTC{}", clock.tz.to_offset(jiff::Timestamp::now())),
            str::to_owned,
        ),
        meters,
    })
}

/// The usage report as text lines of at most `width` columns (what `report usage` prints and
/// the review screen shows for the meter under review); the day's profile `height` lines.
pub fn usage_lines(r: &UsageReport, clock: &DayClock, width: u16, height: u16) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in &r.meters {
        out.push(format!(
            "Account {} · meter {} · {} · {}",
            r.account, m.meter_id, m.service, m.address
        ));
        if m.channels.is_empty() {
            out.push("no interval data".to_owned());
            out.push(String::new());
            continue;
        }
        for c in &m.channels {
            out.push(format!(
                "Channel {} ({}, {}): daily totals {} to {} ({})",
                c.channel,
                if c.unit.is_empty() { "unit unknown" } else { &c.unit },
                c.direction.as_str(),
                long_date(r.from),
                long_date(r.day),
                r.time_zone
            ));
            out.push(format!("{:<10}  {:>14}  {:<10}  flags", "date", "total", "status"));
            for d in &c.days {
                let flags: Vec<&str> = d.flags.iter().map(|f| f.flag.rule.as_str()).collect();
                let line = format!(
                    "{:<10}  {:>14}  {:<10}  {}",
                    d.date.to_string(),
                    d.total.map_or_else(|| "-".to_owned(), |t| with_unit(t, &c.unit)),
                    d.status,
                    flags.join(" ")
                );
                out.push(line.trim_end().to_owned());
            }
            out.push(String::new());
            match &c.profile_day {
                Some(day) => {
                    out.extend(profile_text(day, clock, &c.unit, width, height));
                }
                None => out.push(format!("no data on {}", long_date(r.day))),
            }
            out.push(String::new());
            let sentences: Vec<&str> = c
                .days
                .iter()
                .flat_map(|d| d.flags.iter().map(|f| f.sentence.as_str()))
                .collect();
            if sentences.is_empty() {
                out.push("No flags on these days.".to_owned());
            } else {
                out.push("What the flags say:".to_owned());
                for s in sentences {
                    out.extend(wrap(&format!("- {s}"), usize::from(width), "  "));
                }
            }
            out.push(String::new());
        }
    }
    out
}
