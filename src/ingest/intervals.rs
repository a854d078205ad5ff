//! Interval days into the store: merge what arrived into what is stored, run interval VEE
//! with the meter's like days and register reads, store the outcome; one transaction per
//! chunk, nothing acknowledged before it is durable.
//!
//! Every source (NEM12 and CMEP files, IDM/NetIDM over MQTT, M-Bus history) turns its input
//! into [`IncomingDay`]s: the values it has for one meter, channel and local day, by interval
//! number. Merging keeps the store idempotent: the same value again changes nothing; a value
//! for an interval that had none fills it; another value for an interval that had one is an
//! `interval_duplicate` (the stored value stays, the day waits for a clerk, who decides).

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;
use jiff::{Span, Timestamp};

use crate::model::interval::{Channel, DayClock, DayKey, Direction, IntervalDay, Method, Quality};
use crate::model::{Quantity, ReadStatus, to_store_precision};
use crate::store::prelude::*;
use crate::store::{DayWindow, HistoryQuery, Result};
use crate::vee::interval::{DayContext, DuplicateValue, IntervalConfig, IntervalRules, RegisterPoint, validate_day};

/// The values one source has for one meter-channel-day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingDay {
    pub channel: Channel,
    pub date: Date,
    pub interval_minutes: u16,
    /// (1-based interval number, value): only the intervals the source has a value for.
    pub values: Vec<IncomingValue>,
    /// 1-based intervals the source marked as a power outage.
    pub outages: Vec<u16>,
    /// Where the values came from (`nem12 day.csv line 3`).
    pub source: String,
}

/// One interval's value as a source sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncomingValue {
    pub interval: u16,
    pub value: Quantity,
    /// `Actual`, or the sender's `Estimated` / `Substituted` / `Edited` with its method.
    pub quality: Quality,
    pub method: Option<Method>,
}

/// What an interval import or ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IntervalReport {
    /// Days that arrived.
    pub days: u64,
    /// Values that arrived.
    pub values: u64,
    /// Days stored new or changed.
    pub stored: u64,
    /// Days that arrived with nothing new (re-imports).
    pub unchanged: u64,
    /// Of the stored days: validated, estimated, held for review.
    pub validated: u64,
    pub estimated: u64,
    pub flagged: u64,
    /// Flags raised, by rule id.
    pub by_rule: BTreeMap<String, u64>,
}

impl IntervalReport {
    pub fn add(&mut self, other: &IntervalReport) {
        self.days += other.days;
        self.values += other.values;
        self.stored += other.stored;
        self.unchanged += other.unchanged;
        self.validated += other.validated;
        self.estimated += other.estimated;
        self.flagged += other.flagged;
        for (k, v) in &other.by_rule {
            *self.by_rule.entry(k.clone()).or_default() += v;
        }
    }
}

/// Stores `days` in one durable transaction (run again from the start when a server engine
/// aborts it) and returns what was done.
pub fn accept_interval_days(
    store: &dyn Store,
    config: &IntervalConfig,
    clock: &DayClock,
    days: &[IncomingDay],
) -> Result<IntervalReport> {
    let now = to_store_precision(Timestamp::now());
    crate::store::write(store, |txn| accept_in(txn, config, clock, days, now))
}

/// Days of history VEE looks at before a day: the like-day window plus one day.
fn history_days(config: &IntervalConfig) -> i64 {
    let weeks = [&config.water, &config.gas, &config.electric]
        .iter()
        .map(|r| r.like_day_weeks)
        .max()
        .unwrap_or(4);
    i64::from(weeks) * 7 + 1
}

/// [`accept_interval_days`] inside a caller's transaction (MQTT stores its de-duplication
/// keys with the days). The caller commits.
pub fn accept_in(
    txn: &mut dyn WriteTxn,
    config: &IntervalConfig,
    clock: &DayClock,
    days: &[IncomingDay],
    now: Timestamp,
) -> Result<IntervalReport> {
    let mut report = IntervalReport {
        days: days.len() as u64,
        values: days.iter().map(|d| d.values.len() as u64).sum(),
        ..IntervalReport::default()
    };
    // Per meter and channel, in date order: a day's like days may arrive in the same chunk.
    let mut groups: BTreeMap<(&str, &str), Vec<&IncomingDay>> = BTreeMap::new();
    for d in days {
        groups
            .entry((d.channel.meter_id.as_str(), d.channel.channel.as_str()))
            .or_default()
            .push(d);
    }
    let mut meters: Vec<&str> = groups.keys().map(|(m, _)| *m).collect();
    meters.dedup();
    // VEE of one meter is serialised across instances (the meters' rows, in id order).
    txn.lock_meters(&meters)?;
    let back = history_days(config);
    // Everything VEE reads, in a few bulk look-ups for the whole chunk (a server engine
    // answers each in one statement): meters, channels, each channel's stored days in its
    // window, each meter's register reads.
    let windows: Vec<DayWindow<'_>> = groups
        .iter()
        .map(|((m, c), incoming)| {
            let first = incoming.iter().map(|d| d.date).min().unwrap_or(Date::MIN);
            let last = incoming.iter().map(|d| d.date).max().unwrap_or(Date::MAX);
            DayWindow {
                meter_id: m,
                channel: c,
                from: first.checked_sub(Span::new().days(back)).unwrap_or(Date::MIN),
                to: last.tomorrow().unwrap_or(Date::MAX),
            }
        })
        .collect();
    let meter_rows: HashMap<&str, Option<crate::model::Meter>> =
        meters.iter().copied().zip(txn.meters_by_id(&meters)?).collect();
    let keys: Vec<(&str, &str)> = groups.keys().copied().collect();
    let mut channels = txn.channels_by_key(&keys)?;
    let new_channels: Vec<Channel> = channels
        .iter_mut()
        .zip(groups.values())
        .filter(|(c, _)| c.is_none())
        .filter_map(|(c, incoming)| {
            let first = incoming.first()?;
            *c = Some(first.channel.clone());
            Some(first.channel.clone())
        })
        .collect();
    txn.put_channels(&new_channels)?;
    let mut stored_windows = txn.day_windows(&windows)?.into_iter();
    let mut registers_of: HashMap<&str, Vec<RegisterPoint>> = HashMap::new();
    {
        let mut spans: BTreeMap<&str, (Date, Date)> = BTreeMap::new();
        for w in &windows {
            let e = spans.entry(w.meter_id).or_insert((w.from, w.to));
            e.0 = e.0.min(w.from);
            e.1 = e.1.max(w.to);
        }
        let queries: Vec<HistoryQuery<'_>> = spans
            .iter()
            .map(|(m, (from, to))| HistoryQuery {
                meter_id: m,
                from: clock.day_start(*from).unwrap_or(Timestamp::MIN),
                to: to
                    .tomorrow()
                    .ok()
                    .and_then(|d| clock.day_start(d))
                    .unwrap_or(Timestamp::MAX),
            })
            .collect();
        for (q, history) in queries.iter().zip(txn.meter_histories(&queries)?) {
            let multiplier = meter_rows
                .get(q.meter_id)
                .and_then(|m| m.as_ref())
                .map_or(Quantity::from_micros(1_000_000), |m| m.multiplier);
            registers_of.insert(
                q.meter_id,
                points_of(history.iter().map(|r| (r.status, r.read_at, r.value)), multiplier),
            );
        }
    }
    let mut changed: Vec<IntervalDay> = Vec::new();
    for (((meter_id, channel_name), mut incoming), channel) in groups.into_iter().zip(channels) {
        incoming.sort_by_key(|d| d.date);
        // The channel's stored days in the window (one per group, in the groups' order),
        // updated as this group's days are merged.
        let mut stored: BTreeMap<Date, IntervalDay> = stored_windows
            .next()
            .unwrap_or_default()
            .into_iter()
            .map(|d| (d.date, d))
            .collect();
        let Some(channel) = channel else { continue };
        let meter = meter_rows.get(meter_id).cloned().flatten();
        let registers = registers_of.get(meter_id).cloned().unwrap_or_default();
        let service = meter.as_ref().map(|m| m.service);
        let rules = config.rules(service);
        for inc in incoming {
            let count = clock.intervals_in_day(inc.date, inc.interval_minutes).unwrap_or(0);
            let (mut day, duplicates, new) = match stored.get(&inc.date) {
                Some(old) => merge(old.clone(), inc),
                None => {
                    let key = DayKey {
                        meter_id: meter_id.to_owned(),
                        channel: channel_name.to_owned(),
                        date: inc.date,
                    };
                    let len = count.max(inc.values.iter().map(|v| usize::from(v.interval)).max().unwrap_or(0));
                    let (day, dups, _) = merge(IntervalDay::empty(key, inc.interval_minutes, len, now), inc);
                    (day, dups, true)
                }
            };
            if !new && duplicates.is_empty() {
                report.unchanged += 1;
                continue;
            }
            // A day in a batch billing has not acked keeps its batch: the batch carries what it
            // carried, and the changed day goes out as a correction once it is billable again.
            let history: Vec<IntervalDay> = stored.range(..inc.date).map(|(_, d)| d.clone()).collect();
            let ctx = DayContext {
                clock,
                rules,
                service,
                direction: channel.direction,
                active: active(meter.as_ref()),
                holidays: &config.holidays,
                history: &history,
                registers: &registers,
                duplicates: &duplicates,
            };
            validate_day(&mut day, &ctx);
            if !is_over(clock, day.date, now) {
                judge_later(&mut day);
            }
            day.updated_at = now;
            day.rev += 1;
            match day.status {
                ReadStatus::Flagged => report.flagged += 1,
                ReadStatus::Estimated => report.estimated += 1,
                _ => report.validated += 1,
            }
            for f in &day.flags {
                *report.by_rule.entry(f.rule.as_str().to_owned()).or_default() += 1;
            }
            report.stored += 1;
            stored.insert(day.date, day.clone());
            changed.push(day);
        }
    }
    txn.put_interval_days(&changed)?;
    Ok(report)
}

/// Whether the local day has ended by `now`.
fn is_over(clock: &DayClock, date: Date, now: Timestamp) -> bool {
    date.tomorrow()
        .ok()
        .and_then(|next| clock.day_start(next))
        .is_none_or(|end| end <= now)
}

/// A day still going on (IDM intervals arrive through the day) is not judged on what has not
/// happened yet: the rules that need the whole day (missing intervals, what could not be
/// estimated, the count, the day's total against like days) wait; the others hold it at once.
/// Its next values run VEE again, and billing takes no day with missing values
/// ([`crate::billing::intervals`]), so a day whose meter fell silent is never billed as whole.
fn judge_later(day: &mut IntervalDay) {
    use crate::model::interval::IntervalRule as R;
    day.flags
        .retain(|f| !matches!(f.rule, R::Gap | R::NotEstimable | R::Count | R::High | R::Low));
    if day.status == ReadStatus::Flagged && !day.flags.iter().any(|f| f.rule.holds_day()) {
        day.status = if day
            .methods
            .iter()
            .any(|m| matches!(m, Some(Method::Linear | Method::LikeDay)))
        {
            ReadStatus::Estimated
        } else {
            ReadStatus::Validated
        };
    }
}

/// What VEE looks at for one stored day besides the day itself (see [`DayContext`]), loaded
/// as the ingest loads it: for a clerk's re-estimate or edit of a day held for review.
#[derive(Debug, Clone)]
pub struct DayInputs {
    pub clock: DayClock,
    pub rules: IntervalRules,
    pub service: Option<crate::model::Service>,
    pub direction: Direction,
    pub active: bool,
    pub holidays: Vec<Date>,
    /// The channel's stored days before the day, within the like-day window.
    pub history: Vec<IntervalDay>,
    pub registers: Vec<RegisterPoint>,
}

impl DayInputs {
    /// The context [`validate_day`] takes (no duplicates: nothing arrived).
    pub fn context(&self) -> DayContext<'_> {
        DayContext {
            clock: &self.clock,
            rules: &self.rules,
            service: self.service,
            direction: self.direction,
            active: self.active,
            holidays: &self.holidays,
            history: &self.history,
            registers: &self.registers,
            duplicates: &[],
        }
    }
}

/// Loads the [`DayInputs`] of the day `key` in `txn` (the same history window and register
/// reads as the ingest; a channel not in the store counts as `delivered`).
pub fn day_inputs(txn: &dyn ReadTxn, config: &IntervalConfig, key: &DayKey) -> Result<DayInputs> {
    let clock = config.clock();
    let meter = txn.meter(&key.meter_id)?;
    let direction = txn
        .channel(&key.meter_id, &key.channel)?
        .map_or(Direction::Delivered, |c| c.direction);
    let from = key
        .date
        .checked_sub(Span::new().days(history_days(config)))
        .unwrap_or(Date::MIN);
    let history: Vec<IntervalDay> = txn
        .interval_days(&key.meter_id, from, key.date)?
        .into_iter()
        .filter(|d| d.channel == key.channel)
        .collect();
    // As the ingest: reads through the next day, so a read at the day's end counts.
    let to = key.date.tomorrow().unwrap_or(Date::MAX);
    let registers = register_points(txn, meter.as_ref(), &key.meter_id, &clock, from, to)?;
    let service = meter.as_ref().map(|m| m.service);
    Ok(DayInputs {
        rules: config.rules(service).clone(),
        service,
        direction,
        active: active(meter.as_ref()),
        holidays: config.holidays.clone(),
        history,
        registers,
        clock,
    })
}

/// Whether a zero run is unexpected: the meter is active, or not in the meter list.
fn active(meter: Option<&crate::model::Meter>) -> bool {
    meter.is_none_or(|m| m.status == crate::model::MeterStatus::Active)
}

/// Merges what arrived into a day: `(day, duplicates, changed)`.
fn merge(mut day: IntervalDay, inc: &IncomingDay) -> (IntervalDay, Vec<DuplicateValue>, bool) {
    let mut duplicates = Vec::new();
    let mut changed = false;
    let source = day.source_index(&inc.source);
    for v in &inc.values {
        let Some(i) = usize::from(v.interval).checked_sub(1) else {
            continue;
        };
        if i >= day.values.len() {
            // More intervals than the day has: kept, and interval_count says so.
            day.values.resize(i + 1, None);
            day.quality.resize(i + 1, Quality::Missing);
            day.methods.resize(i + 1, None);
            day.value_source.resize(i + 1, None);
        }
        let ours = matches!(day.methods[i], Some(Method::Linear | Method::LikeDay));
        match day.values[i] {
            Some(old) if !ours && old == v.value => {}
            Some(old) if !ours && day.quality[i] != Quality::Missing => duplicates.push(DuplicateValue {
                interval: v.interval,
                stored: old,
                arrived: v.value,
            }),
            _ => {
                // Missing, or meterd's own estimate: the source's value replaces it.
                day.values[i] = Some(v.value);
                day.quality[i] = v.quality;
                day.methods[i] = v.method;
                day.value_source[i] = Some(source);
                changed = true;
            }
        }
    }
    for n in &inc.outages {
        if let Err(at) = day.outages.binary_search(n) {
            day.outages.insert(at, *n);
            changed = true;
        }
    }
    // Nothing new and no conflict: the caller drops the day, so a re-import leaves no trace.
    (day, duplicates, changed)
}

/// The meter's register reads from `from` to the end of `to`'s day, as register points in the
/// channel's units (value × multiplier), trusted ones only.
fn register_points(
    txn: &dyn ReadTxn,
    meter: Option<&crate::model::Meter>,
    meter_id: &str,
    clock: &DayClock,
    from: Date,
    to: Date,
) -> Result<Vec<RegisterPoint>> {
    let (Some(start), Some(end)) = (clock.day_start(from), clock.day_start(to.tomorrow().unwrap_or(to))) else {
        return Ok(Vec::new());
    };
    let multiplier = meter.map(|m| m.multiplier).unwrap_or(Quantity::from_micros(1_000_000));
    let reads = txn.meter_reads(meter_id, start, end)?;
    Ok(points_of(
        reads.iter().map(|r| (r.status, r.read.read_at, r.read.value)),
        multiplier,
    ))
}

/// Register points of trusted reads `(status, time, value)`, in the channel's units.
fn points_of(
    reads: impl Iterator<Item = (ReadStatus, Timestamp, Quantity)>,
    multiplier: Quantity,
) -> Vec<RegisterPoint> {
    reads
        .filter(|(status, _, _)| status.is_trusted())
        .filter_map(|(_, at, value)| value.mul_factor(multiplier).map(|value| RegisterPoint { at, value }))
        .collect()
}

/// Groups interval values by where they fall, for sources that send times (CMEP, IDM): each
/// `(interval start, value)` goes to its local day and interval number. A start that is not on
/// an interval boundary is an error naming it.
pub fn place_by_time(
    clock: &DayClock,
    channel: &Channel,
    minutes: u16,
    source: &str,
    values: impl IntoIterator<Item = (Timestamp, IncomingValue)>,
) -> std::result::Result<Vec<IncomingDay>, String> {
    let mut days: HashMap<Date, IncomingDay> = HashMap::new();
    for (start, mut v) in values {
        let (date, n) = clock
            .locate(start, minutes)
            .ok_or_else(|| format!("{start} is not on a {minutes}-minute interval boundary"))?;
        v.interval = n;
        days.entry(date)
            .or_insert_with(|| IncomingDay {
                channel: channel.clone(),
                date,
                interval_minutes: minutes,
                values: Vec::new(),
                outages: Vec::new(),
                source: source.to_owned(),
            })
            .values
            .push(v);
    }
    let mut out: Vec<IncomingDay> = days.into_values().collect();
    out.sort_by_key(|d| d.date);
    Ok(out)
}

/// `config` without the sum check, for sources whose intervals come from the very register
/// the check compares them with, read at times off the days' grid: IDM (the register's time
/// is the end of the meter's own interval) and register differences (DSMR hourly gas, M-Bus
/// history, [`crate::ingest::meterbus::history`]), whose reads are stamped a few seconds past
/// the boundary. Every span between two such reads cuts an interval at each end, so the check
/// would flag correct data. (A tolerance no difference can exceed; see `sum_check` in
/// `vee::interval`.)
pub fn without_sum_check(config: &IntervalConfig) -> IntervalConfig {
    let off = |r: &IntervalRules| IntervalRules {
        sum_tolerance_percent: Quantity::from_units(1_000_000_000).unwrap_or(Quantity::from_micros(i64::MAX)),
        ..r.clone()
    };
    IntervalConfig {
        water: off(&config.water),
        gas: off(&config.gas),
        electric: off(&config.electric),
        ..config.clone()
    }
}
