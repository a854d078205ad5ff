//! Reports for the office: the meter reading exception report (Caselle's checks), unbilled
//! reconciliation, an account's consumption history, service orders by route.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::detail::{CHART_PERIODS, Period};
use crate::model::{
    Meter, MeterStatus, OrderStatus, Quantity, ReadId, ReadStatus, Rule, ServiceOrder, StoredRead, codes,
};
use crate::store::{Result, Store};

/// The checks of the exception report (Caselle's Meter Reading Exception Report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Active meter without a read in the cycle.
    ActiveNoReading,
    /// Active meter whose reads in the cycle (and the `lookback` periods before) used nothing.
    ActiveNoUsage,
    /// Inactive meter with usage.
    InactiveWithUsage,
    /// Same consumption as the period before.
    ExactSameUsage,
    /// The register rolled over.
    Rollover,
    /// The read carries information (skip, trouble, note) codes.
    InformationCodes,
    /// Usage outside the high/low range.
    OutsideHighLow,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::ActiveNoReading => "active_no_reading",
            Check::ActiveNoUsage => "active_no_usage",
            Check::InactiveWithUsage => "inactive_with_usage",
            Check::ExactSameUsage => "exact_same_usage",
            Check::Rollover => "rollover",
            Check::InformationCodes => "information_codes",
            Check::OutsideHighLow => "outside_high_low",
        }
    }
}

/// One exception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exception {
    pub route: String,
    pub sequence: u32,
    pub meter_id: String,
    pub account: String,
    pub check: Check,
    pub read_id: Option<ReadId>,
    pub detail: String,
}

/// The cycle a report covers: reads with `from <= read_at < to`, on one route or all.
#[derive(Debug, Clone)]
pub struct Cycle<'a> {
    pub route: Option<&'a str>,
    pub from: Timestamp,
    pub to: Timestamp,
}

fn route_meters(store: &dyn Store, route: Option<&str>) -> Result<Vec<Meter>> {
    let mut meters = store.begin_read()?.meters()?;
    meters.retain(|m| route.is_none_or(|r| m.route == r));
    meters.sort_by(|a, b| {
        a.route
            .cmp(&b.route)
            .then(a.sequence.cmp(&b.sequence))
            .then(a.meter_id.cmp(&b.meter_id))
    });
    Ok(meters)
}

/// Whether a code is an information code (not an endpoint flag or a serial).
fn is_information_code(c: &str) -> bool {
    ![codes::TAMPER, codes::LEAK, codes::REVERSE_FLOW]
        .iter()
        .any(|f| f.eq_ignore_ascii_case(c))
        && !c.to_ascii_lowercase().starts_with(crate::vee::SERIAL_CODE_PREFIX)
}

/// Whether a code is a skip code (`SC-04`, `SC04`): the reader could not read the meter.
pub fn is_skip_code(c: &str) -> bool {
    let c = c.to_ascii_uppercase();
    c.starts_with("SC")
        && c[2..]
            .trim_start_matches('-')
            .chars()
            .next()
            .is_some_and(|d| d.is_ascii_digit())
}

/// The exception report. `lookback` ≥ 1: "no usage" needs that many consecutive periods
/// without usage, ending in the cycle.
pub fn exceptions(store: &dyn Store, cycle: &Cycle<'_>, lookback: usize) -> Result<Vec<Exception>> {
    let lookback = lookback.max(1);
    let meters = route_meters(store, cycle.route)?;
    let txn = store.begin_read()?;
    let mut out = Vec::new();
    for m in &meters {
        let ex = |check: Check, read_id: Option<ReadId>, detail: String| Exception {
            route: m.route.clone(),
            sequence: m.sequence,
            meter_id: m.meter_id.clone(),
            account: m.account.clone(),
            check,
            read_id,
            detail,
        };
        let mut reads = txn.meter_reads(&m.meter_id, cycle.from, cycle.to)?;
        reads.retain(|r| r.summary().is_history());
        if reads.is_empty() {
            if m.status == MeterStatus::Active {
                out.push(ex(
                    Check::ActiveNoReading,
                    None,
                    format!("no read between {} and {}", cycle.from, cycle.to),
                ));
            }
            continue;
        }
        let used: Quantity = reads
            .iter()
            .filter_map(|r| r.consumption)
            .fold(Quantity::ZERO, |a, c| a.checked_add(c).unwrap_or(a));
        match m.status {
            MeterStatus::Active => {
                let last = reads.last().expect("not empty");
                let mut recent: Vec<StoredRead> =
                    txn.meter_reads_before(&m.meter_id, last.read.read_at, 4 * lookback)?;
                recent.retain(|r| r.summary().is_history());
                let periods: Vec<Option<Quantity>> = std::iter::once(last.consumption)
                    .chain(recent.iter().map(|r| r.consumption))
                    .take(lookback)
                    .collect();
                if periods.len() == lookback && periods.iter().all(|c| *c == Some(Quantity::ZERO)) {
                    out.push(ex(
                        Check::ActiveNoUsage,
                        Some(last.id),
                        format!("no usage for {lookback} period(s) up to {}", last.read.read_at),
                    ));
                }
            }
            MeterStatus::Inactive if used.is_positive() => {
                out.push(ex(
                    Check::InactiveWithUsage,
                    reads.last().map(|r| r.id),
                    format!("{used} {} used while inactive", m.unit),
                ));
            }
            MeterStatus::Inactive => {}
        }
        for r in &reads {
            for f in &r.flags {
                let nums = |f: &crate::model::Flag| {
                    f.numbers()
                        .map(|(n, v)| format!("{n} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                match f.rule {
                    Rule::ExactSameUsage => out.push(ex(Check::ExactSameUsage, Some(r.id), nums(f))),
                    Rule::Rollover => out.push(ex(Check::Rollover, Some(r.id), nums(f))),
                    Rule::HighUsage | Rule::LowUsage => out.push(ex(
                        Check::OutsideHighLow,
                        Some(r.id),
                        format!("{}: {}", f.rule, nums(f)),
                    )),
                    _ => {}
                }
            }
            let info: Vec<&str> = r
                .read
                .codes
                .iter()
                .map(String::as_str)
                .filter(|c| is_information_code(c))
                .collect();
            if !info.is_empty() {
                out.push(ex(Check::InformationCodes, Some(r.id), info.join(" ")));
            }
        }
    }
    Ok(out)
}

/// Why a meter has no billable read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnbilledReason {
    Unread,
    SkipCode,
    HeldForReview,
    Rejected,
    /// A clerk's adjustment awaits a supervisor's approval.
    PendingApproval,
}

impl UnbilledReason {
    pub fn as_str(self) -> &'static str {
        match self {
            UnbilledReason::Unread => "unread",
            UnbilledReason::SkipCode => "skip code",
            UnbilledReason::HeldForReview => "held for review",
            UnbilledReason::Rejected => "rejected",
            UnbilledReason::PendingApproval => "pending approval",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unbilled {
    pub route: String,
    pub sequence: u32,
    pub meter_id: String,
    pub account: String,
    pub address: String,
    pub reason: UnbilledReason,
    pub read_id: Option<ReadId>,
    pub detail: String,
}

/// Active meters of the cycle without a billable read (validated, accepted, edited,
/// estimated, batched or exported), with the reason: the latest read in the cycle is held,
/// awaits approval, is rejected or carries a skip code, or there is none.
pub fn unbilled(store: &dyn Store, cycle: &Cycle<'_>) -> Result<Vec<Unbilled>> {
    let meters = route_meters(store, cycle.route)?;
    let txn = store.begin_read()?;
    let mut out = Vec::new();
    for m in meters.into_iter().filter(|m| m.status == MeterStatus::Active) {
        let reads = txn.meter_reads(&m.meter_id, cycle.from, cycle.to)?;
        let billable = |r: &StoredRead| {
            !matches!(
                r.status,
                ReadStatus::Flagged | ReadStatus::Rejected | ReadStatus::PendingApproval
            ) && !r.has_flag(Rule::Duplicate)
        };
        if reads.iter().any(billable) {
            continue;
        }
        let last = reads.last();
        let skip = last.and_then(|r| r.read.codes.iter().find(|c| is_skip_code(c)).cloned());
        let (reason, detail) = match (last, skip) {
            (None, _) => (UnbilledReason::Unread, "no read in the cycle".to_owned()),
            (Some(_), Some(code)) => (UnbilledReason::SkipCode, format!("code {code}")),
            (Some(r), None) if r.status == ReadStatus::Rejected => {
                (UnbilledReason::Rejected, "rejected; re-read ordered".to_owned())
            }
            (Some(r), None) if r.status == ReadStatus::PendingApproval => (
                UnbilledReason::PendingApproval,
                "an adjustment awaits a supervisor's approval".to_owned(),
            ),
            (Some(r), None) => (
                UnbilledReason::HeldForReview,
                r.flags.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>().join(", "),
            ),
        };
        out.push(Unbilled {
            route: m.route,
            sequence: m.sequence,
            meter_id: m.meter_id,
            account: m.account,
            address: m.address,
            reason,
            read_id: last.map(|r| r.id),
            detail,
        });
    }
    Ok(out)
}

/// One meter of an account with its last periods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterHistory {
    pub meter: Meter,
    /// The last 13 periods, oldest first; the latest is marked current.
    pub periods: Vec<Period>,
    pub reads: Vec<StoredRead>,
}

/// An account's meters and their last 13 periods (for answering a customer on the phone).
pub fn account_history(store: &dyn Store, account: &str) -> Result<Vec<MeterHistory>> {
    let txn = store.begin_read()?;
    let mut out = Vec::new();
    for meter in txn.meters()?.into_iter().filter(|m| m.account == account) {
        let mut reads = txn.meter_reads_before(&meter.meter_id, Timestamp::MAX, 4 * CHART_PERIODS)?;
        reads.retain(|r| r.summary().is_history());
        reads.truncate(CHART_PERIODS);
        reads.reverse();
        let n = reads.len();
        let periods = reads
            .iter()
            .enumerate()
            .map(|(i, r)| Period {
                read_id: r.id,
                read_at: r.read.read_at,
                consumption: r.consumption,
                status: r.status,
                estimated: r.is_estimate(),
                current: i + 1 == n,
            })
            .collect();
        out.push(MeterHistory { meter, periods, reads });
    }
    Ok(out)
}

/// Service orders of a route (or all) in walk order; `status` None = all.
pub fn service_orders(
    store: &dyn Store,
    route: Option<&str>,
    status: Option<OrderStatus>,
) -> Result<Vec<ServiceOrder>> {
    let mut orders = store.begin_read()?.service_orders()?;
    orders.retain(|o| route.is_none_or(|r| o.route == r) && status.is_none_or(|s| o.status == s));
    orders.sort_by(|a, b| {
        a.route
            .cmp(&b.route)
            .then(a.sequence.cmp(&b.sequence))
            .then(a.id.cmp(&b.id))
    });
    Ok(orders)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_and_information_codes() {
        assert!(is_skip_code("SC-04") && is_skip_code("sc04") && !is_skip_code("SCX") && !is_skip_code("TC-12"));
        assert!(is_information_code("TC-12") && !is_information_code("tamper") && !is_information_code("serial:1"));
    }
}
