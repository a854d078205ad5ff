//! Estimation of a monthly register read with the CPUC VEE working group's rounding steps:
//! 1. ADU = usage ÷ days, ROUNDed to 2 decimals;
//! 2. usage = ADU × days, ROUNDed (to whole billing units);
//! 3. ÷ the meter constant (multiplier);
//! 4. truncated to the register's resolution (an integer on a register without decimals);
//! 5. added to the last read (wrapping at the register's modulus).
//!
//! ADU comes from the trusted periods (not held, not rejected, no negative consumption) of
//! the year before the read, in billing units (consumption × multiplier) over whole days.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::ReviewError;
use super::vee_inputs::VeeInputs;
use crate::model::{Meter, Quantity, ReadId, SCALE, StoredRead};
use crate::store::Store;
use crate::vee::ADU_WINDOW;

/// What an estimate would set, with every intermediate number (the clerk's confirm dialog
/// and `review estimate --dry-run` show them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EstimatePreview {
    pub read_id: ReadId,
    /// Usage (billing units) and whole days of the history periods used.
    pub history_usage: Quantity,
    pub history_days: i64,
    /// Step 1.
    pub adu: Quantity,
    /// Days from the previous read to the read being estimated.
    pub days: i64,
    /// Step 2.
    pub usage: Quantity,
    /// Steps 3 and 4: register units.
    pub register_units: Quantity,
    pub previous_value: Quantity,
    /// Step 5: the estimated read.
    pub value: Quantity,
    /// Estimates of this meter right before the read; with `estimate_limit` or more the
    /// estimate is flagged `estimate_limit`.
    pub prior_estimates: u32,
}

/// Round micro-units half away from zero to `decimals` decimals.
fn round_to(q: Quantity, decimals: u32) -> Quantity {
    let step = i128::from(SCALE) / 10i128.pow(decimals);
    Quantity::from_micros(
        q.mul_div(1, step)
            .map(|x| x.micros() as i128 * step)
            .unwrap_or(q.micros() as i128) as i64,
    )
}

/// Truncate towards zero to `decimals` decimals.
fn truncate_to(q: Quantity, decimals: u32) -> Quantity {
    let step = SCALE / 10i64.pow(decimals);
    Quantity::from_micros(q.micros() / step * step)
}

/// Whole UTC calendar days between two times.
fn days_between(a: Timestamp, b: Timestamp) -> i64 {
    let d = |t: Timestamp| t.to_zoned(jiff::tz::TimeZone::UTC).date();
    (d(b) - d(a)).get_days() as i64
}

/// The CPUC estimate of `read` from its inputs; `None` without a previous read or any usable
/// history period.
pub fn cpuc_estimate(meter: &Meter, inputs: &VeeInputs, read: &StoredRead) -> Option<EstimatePreview> {
    let previous = inputs.history.last()?;
    let window_start = read.read.read_at.checked_sub(ADU_WINDOW).unwrap_or(Timestamp::MIN);
    let (mut usage, mut days) = (Quantity::ZERO, 0i64);
    for pair in inputs.history.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let Some(c) = b.consumption else { continue };
        if b.read_at < window_start || !b.status.is_trusted() || c.is_negative() {
            continue;
        }
        usage = usage.checked_add(c.mul_factor(meter.multiplier)?)?;
        days += days_between(a.read_at, b.read_at);
    }
    if days <= 0 {
        return None;
    }
    let adu = round_to(usage.mul_div(1, i128::from(days))?, 2);
    let elapsed = days_between(previous.read_at, read.read.read_at).max(0);
    let est_usage = round_to(adu.mul_div(i128::from(elapsed), 1)?, 0);
    let per_register = est_usage.mul_div(i128::from(SCALE), i128::from(meter.multiplier.micros()))?;
    let register_units = truncate_to(per_register, u32::from(meter.decimals));
    let value = previous.value.checked_add(register_units)?.rem_euclid(meter.modulus());
    Some(EstimatePreview {
        read_id: read.id,
        history_usage: usage,
        history_days: days,
        adu,
        days: elapsed,
        usage: est_usage,
        register_units,
        previous_value: previous.value,
        value,
        prior_estimates: inputs.prior_estimates,
    })
}

/// The estimate an `estimate` action would set, without changing anything.
pub fn preview_estimate(
    store: &dyn Store,
    read_id: ReadId,
    estimate_limit: u32,
) -> Result<EstimatePreview, ReviewError> {
    let txn = store.begin_read()?;
    let read = txn.read(read_id)?.ok_or(ReviewError::NotFound(read_id))?;
    let inputs = super::vee_inputs::vee_inputs(txn.as_ref(), &read, estimate_limit)?;
    estimate_from(&read, &inputs)
}

pub(super) fn estimate_from(read: &StoredRead, inputs: &VeeInputs) -> Result<EstimatePreview, ReviewError> {
    let meter = inputs.meter.as_ref().ok_or_else(|| {
        ReviewError::Refused(format!(
            "meter {} is not in the store: nothing to estimate from",
            read.read.meter_id
        ))
    })?;
    cpuc_estimate(meter, inputs, read).ok_or_else(|| {
        ReviewError::Refused(format!(
            "meter {} has no trusted history period before {}: cannot estimate; edit or reject the read",
            read.read.meter_id, read.read.read_at
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MeterStatus, Origin, Read, ReadStatus, ReadSummary, ReadType, Service};

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    fn at(d: &str) -> Timestamp {
        format!("{d}T12:00:00Z").parse().unwrap()
    }

    fn meter(multiplier: &str, decimals: u8) -> Meter {
        Meter {
            meter_id: "E1".into(),
            account: "A".into(),
            route: "R".into(),
            sequence: 1,
            service: Service::Electric,
            unit: "kWh".into(),
            dials: 6,
            decimals,
            multiplier: q(multiplier),
            status: MeterStatus::Active,
            address: String::new(),
            notes: String::new(),
        }
    }

    fn summary(d: &str, value: &str, consumption: Option<&str>) -> ReadSummary {
        ReadSummary {
            id: 0,
            read_at: at(d),
            value: q(value),
            consumption: consumption.map(q),
            status: ReadStatus::Validated,
            excluded: false,
        }
    }

    fn held(d: &str) -> StoredRead {
        StoredRead {
            id: 9,
            read: Read {
                meter_id: "E1".into(),
                read_at: at(d),
                value: q("0"),
                raw: "0".into(),
                read_type: ReadType::Manual,
                codes: vec![],
                reader: None,
                origin: Origin::file_line("t", 1),
            },
            status: ReadStatus::Flagged,
            flags: vec![],
            consumption: None,
            received_at: at(d),
            batch: None,
        }
    }

    #[test]
    fn cpuc_rounding_steps_with_a_meter_constant() {
        // Two periods: 31 days using 1000 register units and 30 days using 1003, constant 10:
        // 20030 kWh over 61 days. ADU = 328.360655… → ROUND 2 = 328.36.
        // 29 days: 328.36 × 29 = 9522.44 → ROUND = 9522 kWh; ÷ 10 = 952.2 → TRUNC = 952.
        // Estimated read = 5003 + 952 = 5955.
        let inputs = VeeInputs {
            history: vec![
                summary("2025-01-01", "3000", None),
                summary("2025-02-01", "4000", Some("1000")),
                summary("2025-03-03", "5003", Some("1003")),
            ],
            ..VeeInputs::default()
        };
        let e = cpuc_estimate(&meter("10", 0), &inputs, &held("2025-04-01")).unwrap();
        assert_eq!((e.history_usage, e.history_days), (q("20030"), 61));
        assert_eq!(e.adu, q("328.36"));
        assert_eq!((e.days, e.usage), (29, q("9522")));
        assert_eq!(e.register_units, q("952"));
        assert_eq!(e.value, q("5955"));
    }

    #[test]
    fn adu_rounds_half_up_and_register_decimals_truncate() {
        // 9.96 units over 8 days: ADU 1.245 → ROUND 2 = 1.25 (half away from zero);
        // 3 days: 3.75 → ROUND = 4; constant 1, two register decimals: 4.00.
        let inputs = VeeInputs {
            history: vec![
                summary("2025-01-01", "100", None),
                summary("2025-01-09", "109.96", Some("9.96")),
            ],
            ..VeeInputs::default()
        };
        let e = cpuc_estimate(&meter("1", 2), &inputs, &held("2025-01-12")).unwrap();
        assert_eq!(e.adu, q("1.25"));
        assert_eq!(e.usage, q("4"));
        assert_eq!(e.value, q("113.96"));
        // Constant 3: 29.88 kWh / 8 = 3.735 → 3.74; × 3 = 11.22 → 11; ÷ 3 = 3.6666… → 3.66.
        let e = cpuc_estimate(&meter("3", 2), &inputs, &held("2025-01-12")).unwrap();
        assert_eq!((e.adu, e.usage, e.register_units), (q("3.74"), q("11"), q("3.66")));
    }

    #[test]
    fn estimate_wraps_at_the_register_modulus_and_needs_history() {
        let inputs = VeeInputs {
            history: vec![
                summary("2025-01-01", "998000", None),
                summary("2025-01-31", "999500", Some("1500")),
            ],
            ..VeeInputs::default()
        };
        // ADU 50, 30 days: 1500 → 999500 + 1500 = 1001000 mod 10^6 = 1000.
        assert_eq!(
            cpuc_estimate(&meter("1", 0), &inputs, &held("2025-03-02"))
                .unwrap()
                .value,
            q("1000")
        );
        let only_one = VeeInputs {
            history: vec![summary("2025-01-01", "5", None)],
            ..VeeInputs::default()
        };
        assert!(cpuc_estimate(&meter("1", 0), &only_one, &held("2025-02-01")).is_none());
    }
}
