//! VEE: validation, estimation, editing.
//!
//! Pure functions: [`validate`] looks at one new read against the meter, its earlier history
//! and the configuration, and says which status the read gets, its consumption and which
//! flags (with the numbers behind them) it raises. It never touches the store; the ingest
//! pipeline gathers the history and stores the outcome.
//!
//! # Rules (ids are part of the interface, see [`Rule`])
//! With C = value − previous value and M = 10^(dials − decimals):
//! - `dial_overflow`: value ≥ M (usage rules are skipped: the value itself is impossible).
//! - `rollover`: value < previous and W = (value − previous) mod M ≤ H (or ≤ M/10 without
//!   enough history for H): consumption = W; does not hold the read. A radio read's
//!   `register_modulus=N` code makes M = min(N, 10^(dials − decimals)).
//! - `negative_usage`: value < previous and not a plausible rollover.
//! - E = ADU × days since the previous read, ADU over the trusted history of the last 365
//!   days; needs ≥ 2 earlier reads. H = max(high_factor × E, E + min_high_delta).
//! - `high_usage`: C > H. `low_usage`: 0 < C < low_factor × E.
//! - `zero_usage`: C = 0 on an active meter. `usage_on_inactive`: C > 0 on an inactive meter.
//! - `exact_same_usage`: C > 0 and C equals the previous period's consumption.
//! - `duplicate`: another value is already stored for the same meter and read_at.
//! - `tamper`, `leak`, `reverse_flow`: from the read's codes.
//! - `unknown_meter`: the meter is not in the store.
//! - `meter_change`: a recorded exchange since the previous read (consumption = old meter's
//!   removal read − previous + value − install read, never value − the old meter's read); a
//!   read whose `serial:` code differs from the installed serial; or a value below the previous
//!   one that is no plausible rollover but looks like a new meter starting near zero (value
//!   ≤ H (M/10 without history), value ≤ previous/10 and W > M/2: consumption counted from 0).
//! - `estimate_limit`: an estimate after more than `estimate_limit` consecutive estimates.
//! - `spike` (interval data: ≥ 3 earlier reads within `spike_window_hours`): the read's
//!   interval is the highest of the window and > `spike_factor` × the third-highest.
//! - High/low factors come from the service, overridden per read type.
//!
//! Every flag except `rollover` holds the read for review (status `flagged`).

mod config;
pub mod interval;
#[cfg(test)]
mod tests;

use jiff::{SignedDuration, Timestamp};

pub use config::{ReadTypeFactors, ServiceFactors, VeeConfig};

use crate::model::{
    Flag, Meter, MeterChange, MeterStatus, Quantity, Read, ReadStatus, ReadSummary, ReadType, Rule, codes,
};

/// Read code prefix carrying the serial number the reader saw (`serial:88123456`).
pub const SERIAL_CODE_PREFIX: &str = "serial:";

/// How far back average daily usage looks.
pub const ADU_WINDOW: SignedDuration = SignedDuration::from_hours(365 * 24);

/// What VEE needs of an earlier read of the same meter.
pub type HistoryRead = ReadSummary;

/// Everything [`validate`] looks at besides the read and the configuration: the meter and
/// what is known of its past.
#[derive(Debug, Clone, Copy, Default)]
pub struct MeterHistory<'a> {
    /// The meter, `None` when it is not in the store.
    pub meter: Option<&'a Meter>,
    /// Earlier reads of the meter (read_at < the new read's), oldest first, that count as
    /// history ([`ReadSummary::is_history`]: not rejected, not `duplicate`, not
    /// `dial_overflow`). At least the previous read and those of the last 365 days.
    pub history: &'a [HistoryRead],
    /// Values already stored for the same meter at the same read_at (all different from the
    /// new value: an equal value is an idempotent re-import the caller skips before VEE).
    pub same_time: &'a [Quantity],
    /// The meter's recorded exchanges, oldest first.
    pub changes: &'a [MeterChange],
    /// How many estimates of the meter come right before the read, in a row.
    pub prior_estimates: u32,
    /// Running totals of `history`'s periods, one per history read ([`PeriodTotal::running`]),
    /// when the caller keeps them: ADU over the year is then two look-ups instead of a walk
    /// over every read of the year (an hourly AMI register has 8,760).
    pub totals: Option<&'a [PeriodTotal]>,
}

/// Trusted usage and its seconds, summed over a history's periods up to and including the
/// period that ends at one read (a period: from the read before to this one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeriodTotal {
    pub used_micros: i128,
    pub seconds: i128,
}

impl PeriodTotal {
    /// What the period from `before` to `period` adds to ADU: its consumption and length when
    /// the read is trusted and its consumption known and not negative, else nothing.
    pub fn of(before: &HistoryRead, period: &HistoryRead) -> PeriodTotal {
        match period.consumption {
            Some(c) if period.status.is_trusted() && !c.is_negative() => PeriodTotal {
                used_micros: i128::from(c.micros()),
                seconds: i128::from(period.read_at.as_second() - before.read_at.as_second()),
            },
            _ => PeriodTotal::default(),
        }
    }

    /// The running totals of a whole history (oldest first), one per read.
    pub fn running(history: &[HistoryRead]) -> Vec<PeriodTotal> {
        let mut out = Vec::with_capacity(history.len());
        let mut acc = PeriodTotal::default();
        for (i, h) in history.iter().enumerate() {
            if i > 0 {
                acc = acc.plus(PeriodTotal::of(&history[i - 1], h));
            }
            out.push(acc);
        }
        out
    }

    pub fn plus(self, other: PeriodTotal) -> PeriodTotal {
        PeriodTotal {
            used_micros: self.used_micros + other.used_micros,
            seconds: self.seconds + other.seconds,
        }
    }
}

/// VEE's decision on one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: ReadStatus,
    pub consumption: Option<Quantity>,
    pub flags: Vec<Flag>,
}

/// Expected consumption E and the high and low limits for a read, when history allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expectation {
    pub expected: Quantity,
    pub high: Quantity,
    pub low: Quantity,
}

/// E = ADU × elapsed time since the previous read, ADU over trusted periods ending in the
/// last 365 days. `None` with fewer than 2 earlier reads or no usable period.
pub fn expectation(history: &[HistoryRead], read_at: Timestamp, factors: &ServiceFactors) -> Option<Expectation> {
    expectation_with(history, None, read_at, factors)
}

/// [`expectation`], with the running totals of `history` when the caller keeps them.
pub fn expectation_with(
    history: &[HistoryRead],
    totals: Option<&[PeriodTotal]>,
    read_at: Timestamp,
    factors: &ServiceFactors,
) -> Option<Expectation> {
    if history.len() < 2 {
        return None;
    }
    let previous = history.last()?;
    let window_start = read_at.checked_sub(ADU_WINDOW).unwrap_or(Timestamp::MIN);
    // The periods ending in the window: those ending at index `first` onwards (index 0 ends a
    // period that begins before the slice, which is not counted).
    let first = history.partition_point(|h| h.read_at < window_start).max(1);
    let sum = match totals.filter(|t| t.len() == history.len()) {
        Some(t) if first < history.len() => {
            let (end, begin) = (t[history.len() - 1], t[first - 1]);
            PeriodTotal {
                used_micros: end.used_micros - begin.used_micros,
                seconds: end.seconds - begin.seconds,
            }
        }
        Some(_) => PeriodTotal::default(),
        None => (first..history.len())
            .map(|i| PeriodTotal::of(&history[i - 1], &history[i]))
            .fold(PeriodTotal::default(), PeriodTotal::plus),
    };
    // Every period adds a non-negative amount: a sum that fits is what adding up in
    // Quantity would have given, one that does not has no expectation.
    let used = Quantity::from_micros(i64::try_from(sum.used_micros).ok()?);
    let seconds = sum.seconds;
    if seconds <= 0 {
        return None;
    }
    let elapsed = i128::from(read_at.as_second() - previous.read_at.as_second()).max(0);
    // ADU × days = used / seconds × elapsed, computed as one exact ratio.
    let expected = used.mul_div(elapsed, seconds)?;
    let high = expected
        .mul_factor(factors.high_factor)?
        .max(expected.checked_add(factors.min_high_delta)?);
    let low = expected.mul_factor(factors.low_factor)?;
    Some(Expectation { expected, high, low })
}

/// Run every rule on one read.
pub fn validate(past: &MeterHistory<'_>, read: &Read, config: &VeeConfig) -> Outcome {
    let mut flags = Vec::new();
    let mut consumption = None;

    match past.meter {
        None => {
            flags.push(Flag::new(Rule::UnknownMeter).detail(format!("meter {} is not in the store", read.meter_id)))
        }
        Some(meter) => consumption = usage_rules(meter, past, read, config, &mut flags),
    }
    if let (Some(c), true) = (consumption, past.meter.is_some()) {
        let window = SignedDuration::from_hours(i64::from(config.spike_window_hours));
        let start = read.read_at.checked_sub(window).unwrap_or(Timestamp::MIN);
        let from = past.history.partition_point(|h| h.read_at <= start);
        let intervals: Vec<Quantity> = past.history[from..]
            .iter()
            .filter(|h| h.read_at > start && h.status.is_trusted() && !h.excluded)
            .filter_map(|h| h.consumption)
            .filter(|c| !c.is_negative())
            .collect();
        if let Some(s) = interval_spike(&intervals, c, config.spike_factor) {
            flags.push(
                Flag::new(Rule::Spike)
                    .expected(s.third)
                    .limit(s.limit)
                    .actual(c)
                    .detail(format!(
                        "highest of {} intervals in {}h; third-highest {}",
                        intervals.len() + 1,
                        config.spike_window_hours,
                        s.third
                    )),
            );
        }
    }
    if read.read_type == ReadType::Estimate && past.prior_estimates >= config.estimate_limit {
        flags.push(
            Flag::new(Rule::EstimateLimit)
                .limit(Quantity::from_units(i64::from(config.estimate_limit)).unwrap_or(Quantity::ZERO))
                .actual(Quantity::from_units(i64::from(past.prior_estimates) + 1).unwrap_or(Quantity::ZERO))
                .detail(format!(
                    "estimate number {} in a row; the limit is {}",
                    past.prior_estimates + 1,
                    config.estimate_limit
                )),
        );
    }

    if let Some(other) = past.same_time.first() {
        flags.push(
            Flag::new(Rule::Duplicate)
                .expected(*other)
                .actual(read.value)
                .detail(format!(
                    "{} other value(s) already stored for {} at {}",
                    past.same_time.len(),
                    read.meter_id,
                    read.read_at
                )),
        );
    }
    for (code, rule) in [
        (codes::TAMPER, Rule::Tamper),
        (codes::LEAK, Rule::Leak),
        (codes::REVERSE_FLOW, Rule::ReverseFlow),
    ] {
        if read.has_code(code) {
            flags.push(Flag::new(rule).detail(format!("code {code}")));
        }
    }

    let status = if flags.iter().any(|f| f.rule.holds_for_review()) {
        ReadStatus::Flagged
    } else {
        ReadStatus::Validated
    };
    Outcome {
        status,
        consumption,
        flags,
    }
}

/// What the spike check found: the interval crossed `limit` = factor × `third`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spike {
    pub third: Quantity,
    pub limit: Quantity,
}

/// Oracle's interval spike check: `new` is a spike when it is the highest of `earlier` plus
/// itself and exceeds `factor` × the third-highest. Needs at least 3 earlier intervals (less
/// is not interval data) and a positive third-highest (a mostly idle meter has no baseline).
pub fn interval_spike(earlier: &[Quantity], new: Quantity, factor: Quantity) -> Option<Spike> {
    if earlier.len() < 3 {
        return None;
    }
    let mut all: Vec<Quantity> = earlier.to_vec();
    all.push(new);
    all.sort_unstable_by(|a, b| b.cmp(a));
    let third = all[2];
    let limit = third.mul_factor(factor)?;
    (new == all[0] && third.is_positive() && new > limit).then_some(Spike { third, limit })
}

/// The serial a read's codes carry (`serial:NNN`), if any.
pub fn read_serial(read: &Read) -> Option<&str> {
    read.codes.iter().find_map(|c| {
        c.get(..SERIAL_CODE_PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(SERIAL_CODE_PREFIX))
            .map(|_| c[SERIAL_CODE_PREFIX.len()..].trim())
    })
}

/// The register rules; returns the consumption.
fn usage_rules(
    meter: &Meter,
    past: &MeterHistory<'_>,
    read: &Read,
    config: &VeeConfig,
    flags: &mut Vec<Flag>,
) -> Option<Quantity> {
    let history = past.history;
    let modulus = meter.modulus();
    if read.value >= modulus || read.value.is_negative() {
        let largest = modulus.checked_sub(smallest_step(meter.decimals))?;
        flags.push(
            Flag::new(Rule::DialOverflow)
                .limit(modulus)
                .actual(read.value)
                .modulus(modulus)
                .detail(format!(
                    "{} dials with {} decimals show at most {largest}",
                    meter.dials, meter.decimals
                )),
        );
        return None;
    }
    // The installed serial: a read that shows another one was taken on another meter.
    if let (Some(seen), Some(installed)) = (
        read_serial(read),
        past.changes.iter().rev().find(|c| c.at <= read.read_at),
    ) && !installed.new_serial.is_empty()
        && !seen.eq_ignore_ascii_case(&installed.new_serial)
    {
        flags.push(Flag::new(Rule::MeterChange).detail(format!(
            "the read shows serial {seen}, the meter installed since {} is {}",
            installed.at, installed.new_serial
        )));
    }
    let previous = history.last()?;
    let factors = config.factors(meter.service).for_read_type(read.read_type);
    let expect = expectation_with(history, past.totals, read.read_at, &factors);

    // An exchange between the previous read and this one: the old meter's register says
    // nothing about the new one's.
    if let Some(change) = past
        .changes
        .iter()
        .rev()
        .find(|c| c.at > previous.read_at && c.at <= read.read_at)
    {
        let new_part = read.value.checked_sub(change.install_read)?;
        let old_part = match change.removal_read {
            Some(removal) => {
                let old_modulus = Quantity::pow10(u32::from(
                    change
                        .old_dials
                        .saturating_sub(meter.decimals)
                        .min(crate::model::MAX_DIALS),
                ))?;
                removal.checked_sub(previous.value)?.rem_euclid(old_modulus)
            }
            None => Quantity::ZERO,
        };
        let consumption = old_part.checked_add(new_part)?;
        flags.push(Flag::new(Rule::MeterChange).expected(change.install_read).actual(consumption).detail(format!(
            "meter exchanged at {}: serial {} → {}, {} → {} dials; consumption = {old_part} on the old meter + ({} − install read {})",
            change.at, change.old_serial, change.new_serial, change.old_dials, change.new_dials, read.value, change.install_read
        )));
        return Some(consumption);
    }
    let raw = read.value.checked_sub(previous.value)?;
    // A radio endpoint's register may wrap before the dials do (SCM counts in 24 bits).
    let wrap_at = read
        .register_modulus()
        .filter(|m| m.is_positive())
        .map_or(modulus, |m| m.min(modulus));

    let consumption =
        if raw.is_negative() {
            let wrapped = raw.rem_euclid(wrap_at);
            let limit = match expect {
                Some(e) => e.high,
                None => wrap_at.mul_div(1, 10)?,
            };
            if wrapped <= limit {
                flags.push(
                    Flag::new(Rule::Rollover)
                        .limit(limit)
                        .actual(wrapped)
                        .modulus(wrap_at)
                        .detail(format!("register wrapped from {} to {}", previous.value, read.value)),
                );
                wrapped
            } else if read.value <= limit
                && read.value.mul_div(10, 1)? <= previous.value
                && wrapped > modulus.mul_div(1, 2)?
            {
                // Not a wrap (the old value is far from the top), but a value small enough to be
                // a new register starting near zero, and under a tenth of the old one (a slight
                // step back is a misread, not a new meter).
                flags.push(Flag::new(Rule::MeterChange).limit(limit).actual(read.value).modulus(modulus).detail(format!(
                "value {} after {}: looks like a new meter starting near zero (consumption counted from 0); \
                 record the exchange with `meterd meters change`",
                read.value, previous.value
            )));
                return Some(read.value);
            } else {
                let mut f = Flag::new(Rule::NegativeUsage).actual(raw).modulus(wrap_at).limit(limit);
                if let Some(e) = expect {
                    f = f.expected(e.expected);
                }
                flags.push(f.detail(format!(
                    "value {} is below the previous read {}",
                    read.value, previous.value
                )));
                // Usage rules make no sense on a negative consumption.
                return Some(raw);
            }
        } else {
            raw
        };

    if let Some(e) = expect {
        if consumption > e.high {
            flags.push(
                Flag::new(Rule::HighUsage)
                    .expected(e.expected)
                    .limit(e.high)
                    .actual(consumption),
            );
        }
        if consumption.is_positive() && consumption < e.low {
            flags.push(
                Flag::new(Rule::LowUsage)
                    .expected(e.expected)
                    .limit(e.low)
                    .actual(consumption),
            );
        }
    }
    match meter.status {
        MeterStatus::Active if consumption == Quantity::ZERO => {
            let mut f = Flag::new(Rule::ZeroUsage).actual(consumption);
            if let Some(e) = expect {
                f = f.expected(e.expected);
            }
            flags.push(f);
        }
        MeterStatus::Inactive if consumption.is_positive() => {
            flags.push(
                Flag::new(Rule::UsageOnInactive)
                    .limit(Quantity::ZERO)
                    .actual(consumption),
            );
        }
        _ => {}
    }
    if consumption.is_positive() && previous.consumption == Some(consumption) {
        flags.push(
            Flag::new(Rule::ExactSameUsage)
                .expected(consumption)
                .actual(consumption)
                .detail(format!("same consumption as the period ending {}", previous.read_at)),
        );
    }
    Some(consumption)
}

/// The smallest step of a register with `decimals` decimals (1 / 10^decimals units).
fn smallest_step(decimals: u8) -> Quantity {
    Quantity::from_micros(crate::model::SCALE)
        .mul_div(1, 10i128.pow(u32::from(decimals)))
        .unwrap_or(Quantity::ZERO)
}
