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
//!   enough history for H): consumption = W; does not hold the read.
//! - `negative_usage`: value < previous and not a plausible rollover.
//! - E = ADU × days since the previous read, ADU over the trusted history of the last 365
//!   days; needs ≥ 2 earlier reads. H = max(high_factor × E, E + min_high_delta).
//! - `high_usage`: C > H. `low_usage`: 0 < C < low_factor × E.
//! - `zero_usage`: C = 0 on an active meter. `usage_on_inactive`: C > 0 on an inactive meter.
//! - `exact_same_usage`: C > 0 and C equals the previous period's consumption.
//! - `duplicate`: another value is already stored for the same meter and read_at.
//! - `tamper`, `leak`, `reverse_flow`: from the read's codes.
//! - `unknown_meter`: the meter is not in the store.
//!
//! Every flag except `rollover` holds the read for review (status `flagged`).

mod config;
#[cfg(test)]
mod tests;

use jiff::{SignedDuration, Timestamp};

pub use config::{ServiceFactors, VeeConfig};

use crate::model::{Flag, Meter, MeterStatus, Quantity, Read, ReadStatus, ReadSummary, Rule, codes};

/// How far back average daily usage looks.
pub const ADU_WINDOW: SignedDuration = SignedDuration::from_hours(365 * 24);

/// What VEE needs of an earlier read of the same meter.
pub type HistoryRead = ReadSummary;

/// Everything [`validate`] looks at besides the read and the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The meter, `None` when it is not in the store.
    pub meter: Option<&'a Meter>,
    /// Earlier reads of the meter (read_at < the new read's), oldest first, that count as
    /// history ([`ReadSummary::is_history`]: not rejected, not `duplicate`, not
    /// `dial_overflow`). At least the previous read and those of the last 365 days.
    pub history: &'a [HistoryRead],
    /// Values already stored for the same meter at the same read_at (all different from the
    /// new value: an equal value is an idempotent re-import the caller skips before VEE).
    pub same_time: &'a [Quantity],
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
    if history.len() < 2 {
        return None;
    }
    let previous = history.last()?;
    let window_start = read_at.checked_sub(ADU_WINDOW).unwrap_or(Timestamp::MIN);
    let mut used = Quantity::ZERO;
    let mut seconds: i128 = 0;
    for pair in history.windows(2) {
        let (before, period) = (&pair[0], &pair[1]);
        if period.read_at < window_start || !period.status.is_trusted() {
            continue;
        }
        let Some(c) = period.consumption else { continue };
        if c.is_negative() {
            continue;
        }
        used = used.checked_add(c)?;
        seconds += i128::from(period.read_at.as_second() - before.read_at.as_second());
    }
    if seconds <= 0 {
        return None;
    }
    let elapsed = i128::from(read_at.as_second() - previous.read_at.as_second()).max(0);
    // ADU × days = used / seconds × elapsed, computed as one exact ratio.
    let expected = used.mul_div(elapsed, seconds)?;
    let high = expected.mul_factor(factors.high_factor)?.max(expected.checked_add(factors.min_high_delta)?);
    let low = expected.mul_factor(factors.low_factor)?;
    Some(Expectation { expected, high, low })
}

/// Run every rule on one read.
pub fn validate(ctx: &Context<'_>, read: &Read, config: &VeeConfig) -> Outcome {
    let mut flags = Vec::new();
    let mut consumption = None;

    match ctx.meter {
        None => flags.push(Flag::new(Rule::UnknownMeter).detail(format!("meter {} is not in the store", read.meter_id))),
        Some(meter) => consumption = usage_rules(meter, ctx.history, read, config, &mut flags),
    }

    if let Some(other) = ctx.same_time.first() {
        flags.push(Flag::new(Rule::Duplicate).expected(*other).actual(read.value).detail(format!(
            "{} other value(s) already stored for {} at {}",
            ctx.same_time.len(),
            read.meter_id,
            read.read_at
        )));
    }
    for (code, rule) in [(codes::TAMPER, Rule::Tamper), (codes::LEAK, Rule::Leak), (codes::REVERSE_FLOW, Rule::ReverseFlow)] {
        if read.has_code(code) {
            flags.push(Flag::new(rule).detail(format!("code {code}")));
        }
    }

    let status = if flags.iter().any(|f| f.rule.holds_for_review()) { ReadStatus::Flagged } else { ReadStatus::Validated };
    Outcome { status, consumption, flags }
}

/// The register rules; returns the consumption.
fn usage_rules(
    meter: &Meter,
    history: &[HistoryRead],
    read: &Read,
    config: &VeeConfig,
    flags: &mut Vec<Flag>,
) -> Option<Quantity> {
    let modulus = meter.modulus();
    if read.value >= modulus || read.value.is_negative() {
        let largest = modulus.checked_sub(smallest_step(meter.decimals))?;
        flags.push(Flag::new(Rule::DialOverflow).limit(modulus).actual(read.value).modulus(modulus).detail(format!(
            "{} dials with {} decimals show at most {largest}",
            meter.dials, meter.decimals
        )));
        return None;
    }
    let previous = history.last()?;
    let factors = config.factors(meter.service);
    let expect = expectation(history, read.read_at, factors);
    let raw = read.value.checked_sub(previous.value)?;

    let consumption = if raw.is_negative() {
        let wrapped = raw.rem_euclid(modulus);
        let limit = match expect {
            Some(e) => e.high,
            None => modulus.mul_div(1, 10)?,
        };
        if wrapped <= limit {
            flags.push(Flag::new(Rule::Rollover).limit(limit).actual(wrapped).modulus(modulus).detail(format!(
                "register wrapped from {} to {}",
                previous.value, read.value
            )));
            wrapped
        } else {
            let mut f = Flag::new(Rule::NegativeUsage).actual(raw).modulus(modulus).limit(limit);
            if let Some(e) = expect {
                f = f.expected(e.expected);
            }
            flags.push(f.detail(format!("value {} is below the previous read {}", read.value, previous.value)));
            // Usage rules make no sense on a negative consumption.
            return Some(raw);
        }
    } else {
        raw
    };

    if let Some(e) = expect {
        if consumption > e.high {
            flags.push(Flag::new(Rule::HighUsage).expected(e.expected).limit(e.high).actual(consumption));
        }
        if consumption.is_positive() && consumption < e.low {
            flags.push(Flag::new(Rule::LowUsage).expected(e.expected).limit(e.low).actual(consumption));
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
            flags.push(Flag::new(Rule::UsageOnInactive).limit(Quantity::ZERO).actual(consumption));
        }
        _ => {}
    }
    if consumption.is_positive() && previous.consumption == Some(consumption) {
        flags.push(Flag::new(Rule::ExactSameUsage).expected(consumption).actual(consumption).detail(format!(
            "same consumption as the period ending {}",
            previous.read_at
        )));
    }
    Some(consumption)
}

/// The smallest step of a register with `decimals` decimals (1 / 10^decimals units).
fn smallest_step(decimals: u8) -> Quantity {
    Quantity::from_micros(crate::model::SCALE).mul_div(1, 10i128.pow(u32::from(decimals))).unwrap_or(Quantity::ZERO)
}
