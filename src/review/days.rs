//! Interval days held for review (status `flagged`), next to register reads: the queue's day
//! entries, what a clerk looks at for one day, and the actions on it (accept, edit intervals,
//! re-estimate, reject).
//!
//! Each action is one write transaction, as for reads: check the day's revision (`rev`) the
//! clerk saw, change the day, bump its revision, append an entry to the same hash-chained
//! audit trail (with [`DayAudit`]: the day, its new revision and every interval value changed).
//!
//! Statuses after an action: accept → `accepted`; reject → `rejected`; edit → `edited`
//! (billable, like an edited read; VEE runs again on the edited day so its flags and the
//! estimates of its other gaps are current, and a flag that still holds is named in a warning
//! but does not hold the day: the clerk has looked at it); re-estimate → whatever VEE makes of
//! the day now (`estimated`, `validated`, or `flagged` again). Interval edits do not go through
//! four-eyes approval, and a day's action has no undo (an edit or re-estimate changes it again).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::ReviewError;
use crate::model::interval::{DayKey, Direction, IntervalDay, IntervalRule, MAX_DAY_VALUES, Quality};
use crate::model::limits::{self, Field};
use crate::model::{
    AuditAction, AuditEntry, DayAudit, HASH_LEN, IntervalChange, Meter, Quantity, ReadStatus, Service,
    to_store_precision,
};
use crate::store::{ReadTxn, Result, Rules, Store, WriteTxn};
use crate::vee::interval::{IntervalConfig, like_day_profile, validate_day};

/// Most held days the queue loads (a day is a few kilobytes; the reply is cut to a frame anyway).
pub const MAX_QUEUE_DAYS: usize = 20_000;

/// How bad an interval flag is, for sorting with the reads' [`super::severity`] (higher first):
/// data in doubt first, then money at stake.
pub fn day_severity(rule: IntervalRule) -> u8 {
    match rule {
        IntervalRule::Duplicate => 90,
        IntervalRule::Negative => 80,
        IntervalRule::Count => 78,
        IntervalRule::SumCheck => 72,
        IntervalRule::ContinuousFlow => 60,
        IntervalRule::High => 55,
        IntervalRule::Spike => 50,
        IntervalRule::NotEstimable => 45,
        IntervalRule::Low => 40,
        IntervalRule::ZeroRun => 35,
        IntervalRule::Gap => 10,
    }
}

/// One interval day in the review queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayQueueItem {
    pub key: DayKey,
    /// The day's revision (actions name it).
    pub rev: u64,
    pub status: ReadStatus,
    /// The rules that flagged the day, worst first.
    pub rules: Vec<IntervalRule>,
    /// How many intervals the flags name.
    pub flagged_intervals: u32,
    pub total: Quantity,
    pub interval_minutes: u16,
    pub route: String,
    pub sequence: u32,
    pub service: Option<Service>,
    pub severity: u8,
}

/// The held days matching `route` / `service` (a register-rule filter hides them all: their
/// rules are interval rules), worst first, and the counts per rule over every held day.
pub(super) fn queue_days(
    txn: &dyn ReadTxn,
    route: Option<&str>,
    service: Option<Service>,
    hide: bool,
) -> Result<(Vec<DayQueueItem>, BTreeMap<IntervalRule, u64>, u64)> {
    let keys = txn.interval_days_with_status(ReadStatus::Flagged, None, MAX_QUEUE_DAYS)?;
    let mut counts: BTreeMap<IntervalRule, u64> = BTreeMap::new();
    let mut items = Vec::new();
    let mut meters: BTreeMap<String, Option<Meter>> = BTreeMap::new();
    let total = keys.len() as u64;
    for key in keys {
        let Some(day) = txn.interval_day(&key)? else { continue };
        for f in &day.flags {
            *counts.entry(f.rule).or_default() += 1;
        }
        if !meters.contains_key(&key.meter_id) {
            meters.insert(key.meter_id.clone(), txn.meter(&key.meter_id)?);
        }
        let meter = meters.get(&key.meter_id).and_then(|m| m.as_ref());
        let shown = !hide
            && route.is_none_or(|r| meter.is_some_and(|m| m.route == r))
            && service.is_none_or(|s| meter.is_some_and(|m| m.service == s));
        if !shown {
            continue;
        }
        items.push(queue_item(&day, meter));
    }
    items.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.route.cmp(&b.route))
            .then(a.sequence.cmp(&b.sequence))
            .then_with(|| a.key.cmp(&b.key))
    });
    Ok((items, counts, total))
}

fn queue_item(day: &IntervalDay, meter: Option<&Meter>) -> DayQueueItem {
    let mut rules: Vec<IntervalRule> = day.flags.iter().map(|f| f.rule).collect();
    rules.sort_by_key(|r| (std::cmp::Reverse(day_severity(*r)), *r));
    rules.dedup();
    let mut named: Vec<u16> = day.flags.iter().flat_map(|f| f.intervals.iter().copied()).collect();
    named.sort_unstable();
    named.dedup();
    DayQueueItem {
        key: day.key(),
        rev: day.rev,
        status: day.status,
        severity: rules.first().map_or(0, |r| day_severity(*r)),
        rules,
        flagged_intervals: named.len() as u32,
        total: day.total(),
        interval_minutes: day.interval_minutes,
        route: meter.map(|m| m.route.clone()).unwrap_or_default(),
        sequence: meter.map_or(u32::MAX, |m| m.sequence),
        service: meter.map(|m| m.service),
    }
}

/// Everything a clerk looks at for one day (`review day METER CHANNEL DATE --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayDetail {
    /// The day; its `rev` is what an action names as seen.
    pub day: IntervalDay,
    pub unit: String,
    pub direction: Direction,
    pub meter: Option<Meter>,
    /// The like-day average of each interval (the chart's marker line); empty when there is
    /// none, and `like_day_note` says why.
    pub like_day: Vec<Quantity>,
    pub like_day_note: Option<String>,
    /// The clerks' entries about this day, oldest first.
    pub audit: Vec<AuditEntry>,
    /// The meter's usage as `report usage` shows it to a customer (35 days' totals, the day's
    /// profile, the flags in plain words), for the review screen's `U`.
    #[serde(default)]
    pub usage: Vec<String>,
}

pub fn day_detail(store: &dyn Store, config: &IntervalConfig, key: &DayKey) -> Result<DayDetail, ReviewError> {
    let txn = store.begin_read()?;
    let day = txn
        .interval_day(key)?
        .ok_or_else(|| ReviewError::Refused(format!("no interval day {key} in the store")))?;
    let channel = txn.channel(&key.meter_id, &key.channel)?;
    let inputs = crate::ingest::intervals::day_inputs(txn.as_ref(), config, key)?;
    let (like_day, like_day_note) = match like_day_profile(&day, &inputs.context()) {
        Ok(v) => (v, None),
        Err(why) => (Vec::new(), Some(why)),
    };
    let meter = txn.meter(&key.meter_id)?;
    let usage = match &meter {
        Some(m) => {
            let report = super::usage::meter_usage(store, &inputs.clock, m, key.date)?;
            super::usage::usage_lines(&report, &inputs.clock, USAGE_WIDTH, USAGE_HEIGHT)
        }
        None => vec![format!(
            "meter {} is not in the meter list: no account to report on",
            key.meter_id
        )],
    };
    Ok(DayDetail {
        audit: day_audit(txn.as_ref(), key)?,
        meter,
        usage,
        unit: channel.as_ref().map(|c| c.unit.clone()).unwrap_or_default(),
        direction: channel.map_or(Direction::Delivered, |c| c.direction),
        day,
        like_day,
        like_day_note,
    })
}

/// Interval days whose edit awaits a supervisor, with the edit's audit entry (its author,
/// reason and the intervals it changed), oldest key first.
pub fn days_awaiting_approval(store: &dyn Store) -> Result<Vec<(IntervalDay, Option<AuditEntry>)>> {
    let txn = store.begin_read()?;
    let mut out = Vec::new();
    for key in txn.interval_days_with_status(ReadStatus::PendingApproval, None, 10_000)? {
        let Some(day) = txn.interval_day(&key)? else { continue };
        let entry = day_audit(txn.as_ref(), &key)?
            .into_iter()
            .rev()
            .find(|e| e.new_status == ReadStatus::PendingApproval);
        out.push((day, entry));
    }
    Ok(out)
}

/// The usage view's size in the review screen's overlay.
const USAGE_WIDTH: u16 = 74;
const USAGE_HEIGHT: u16 = 8;

/// The audit entries about day `key`, oldest first (found through the meter's entries).
fn day_audit(txn: &dyn ReadTxn, key: &DayKey) -> Result<Vec<AuditEntry>> {
    Ok(txn
        .meter_audit(&key.meter_id)?
        .into_iter()
        .filter(|e| {
            e.day
                .as_ref()
                .is_some_and(|d| d.channel == key.channel && d.date == key.date)
        })
        .collect())
}

/// A value a clerk sets for one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalValue {
    /// 1-based interval number.
    pub interval: u16,
    pub value: Quantity,
}

/// `19=1.2, 20-22=0.5` (or the same separated by spaces; `--set` takes one each) → the values
/// of those intervals. The numbers are checked against the day by the action; at most
/// [`MAX_DAY_VALUES`] values.
pub fn parse_interval_values(text: &str) -> Result<Vec<IntervalValue>, String> {
    let mut out = Vec::new();
    for part in text.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()) {
        let q = limits::quote(part);
        let bad = || format!("{q}: expected N=VALUE or FIRST-LAST=VALUE");
        let (nums, value) = part.split_once('=').ok_or_else(bad)?;
        let value = Quantity::parse(value.trim()).map_err(|e| format!("{q}: {e}"))?;
        let (a, b) = nums.split_once('-').unwrap_or((nums, nums));
        let a: u16 = a.trim().parse().map_err(|_| bad())?;
        let b: u16 = b.trim().parse().map_err(|_| bad())?;
        if a == 0 || b < a || usize::from(b - a) >= MAX_DAY_VALUES {
            return Err(bad());
        }
        out.extend((a..=b).map(|interval| IntervalValue { interval, value }));
        if out.len() > MAX_DAY_VALUES {
            return Err(format!("more than {MAX_DAY_VALUES} interval values given"));
        }
    }
    if out.is_empty() {
        return Err("no interval values given (N=VALUE, e.g. 19=1.2)".into());
    }
    Ok(out)
}

/// What a clerk does to an interval day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum DayAction {
    /// Accept the held day as it is (the reason is optional).
    Accept { reason: String },
    /// Set the values of some intervals (quality `F`, edited; the source `clerk NAME`); a
    /// reason is required. The day becomes `edited`.
    Edit { values: Vec<IntervalValue>, reason: String },
    /// Run VEE and estimation on the day again (like days or register reads may have come
    /// since); the day takes the status VEE gives it.
    Estimate { reason: String },
    /// Reject the day: it is not billed (a reason is required).
    Reject { reason: String },
    /// A supervisor approves an edit that awaited approval (not its author): the day
    /// becomes `edited`, billable.
    Approve { reason: String },
    /// A supervisor declines it: the edited intervals go back to what they were, VEE runs
    /// again, and the day is held (`flagged`).
    Decline { reason: String },
}

impl DayAction {
    pub fn audit_action(&self) -> AuditAction {
        match self {
            DayAction::Accept { .. } => AuditAction::Accept,
            DayAction::Edit { .. } => AuditAction::Edit,
            DayAction::Estimate { .. } => AuditAction::Estimate,
            DayAction::Reject { .. } => AuditAction::Reject,
            DayAction::Approve { .. } => AuditAction::Approve,
            DayAction::Decline { .. } => AuditAction::Decline,
        }
    }

    /// Approving and declining an edit are a supervisor's (four eyes).
    pub fn needs_supervisor(&self) -> bool {
        matches!(self, DayAction::Approve { .. } | DayAction::Decline { .. })
    }

    fn reason(&self) -> &str {
        match self {
            DayAction::Accept { reason }
            | DayAction::Edit { reason, .. }
            | DayAction::Estimate { reason }
            | DayAction::Reject { reason }
            | DayAction::Approve { reason }
            | DayAction::Decline { reason } => reason,
        }
    }
}

/// An action on one day by one clerk, with the day's revision the clerk saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayActionRequest {
    pub key: DayKey,
    /// `DayDetail::day.rev` when the clerk looked; `None` skips the check (a script on purpose).
    pub seen_rev: Option<u64>,
    pub clerk: String,
    pub action: DayAction,
}

/// What a day action did (all of it committed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayOutcome {
    pub day: IntervalDay,
    pub entry: AuditEntry,
    pub warnings: Vec<String>,
}

impl DayOutcome {
    /// One line for the clerk.
    pub fn summary(&self) -> String {
        let e = &self.entry;
        let key = self.day.key();
        let changed = e.day.as_ref().map_or(0, |d| d.changes.len());
        let mut s = format!(
            "day {key}: {} ({} → {}), total {} → {}",
            e.action.as_str(),
            e.old_status,
            e.new_status,
            e.old_value,
            e.new_value
        );
        if changed > 0 {
            s.push_str(&format!(", {changed} interval(s) changed"));
        }
        s
    }
}

/// Run one clerk action on an interval day in one durable transaction.
/// `approval` gives the four-eyes thresholds (`[vee.<service>] approval_threshold`,
/// `approval_threshold_percent`): an edit that changes the day's total by more waits for a
/// supervisor other than its author (`pending_approval`), as a register read's adjustment does.
pub fn act_on_day(
    store: &dyn Store,
    config: &IntervalConfig,
    approval: &crate::vee::VeeConfig,
    req: &DayActionRequest,
    now: Timestamp,
) -> Result<DayOutcome, ReviewError> {
    let now = to_store_precision(now);
    crate::store::write_within(store, crate::store::INTERACTIVE_DEADLINE, |txn| {
        act_in(txn, config, approval, req, now)
    })
}

fn act_in(
    txn: &mut dyn WriteTxn,
    config: &IntervalConfig,
    approval: &crate::vee::VeeConfig,
    req: &DayActionRequest,
    now: Timestamp,
) -> Result<DayOutcome, ReviewError> {
    let key = &req.key;
    let clerk = req.clerk.trim().to_owned();
    if clerk.is_empty() {
        return Err(ReviewError::Refused("the clerk's name is empty".into()));
    }
    // The control socket checks texts already; a local store reaches here directly.
    limits::check(Field::Note, "the reason", req.action.reason())
        .and_then(|()| limits::check(Field::Name, "the clerk's name", &clerk))
        .map_err(|e| ReviewError::Refused(e.to_string()))?;
    let old = txn
        .interval_day(key)?
        .ok_or_else(|| ReviewError::Refused(format!("no interval day {key} in the store")))?;
    if let Some(seen) = req.seen_rev
        && seen != old.rev
    {
        let what = day_audit(&*txn, key)?
            .last()
            .filter(|e| e.day.as_ref().is_some_and(|d| d.rev == old.rev))
            .map(|e| {
                format!(
                    "{} by {} at {}",
                    e.action.as_str(),
                    e.clerk,
                    e.at.strftime("%Y-%m-%d %H:%M:%S")
                )
            })
            .unwrap_or_else(|| "new data arrived or VEE ran again".into());
        return Err(ReviewError::Conflict(format!(
            "day {key} changed since you loaded it (revision {seen}, now {}): {what}; nothing done, look again",
            old.rev
        )));
    }
    let refuse = |allowed: &str| ReviewError::Refused(format!("day {key} is {}, {allowed}", old.status));
    let reason_given = req.action.reason().trim().to_owned();
    let mut day = old.clone();
    let mut warnings = Vec::new();
    let reason;
    match &req.action {
        DayAction::Accept { .. } => {
            if old.status != ReadStatus::Flagged {
                return Err(refuse("not held for review"));
            }
            day.status = ReadStatus::Accepted;
            reason = if reason_given.is_empty() {
                "accepted as measured".to_owned()
            } else {
                reason_given
            };
        }
        DayAction::Reject { .. } => {
            if reason_given.is_empty() {
                return Err(ReviewError::Refused("a reason is required to reject a day".into()));
            }
            if !matches!(
                old.status,
                ReadStatus::Flagged | ReadStatus::Validated | ReadStatus::Estimated
            ) {
                return Err(refuse("only held, validated or estimated days can be rejected"));
            }
            day.status = ReadStatus::Rejected;
            reason = reason_given;
        }
        DayAction::Estimate { .. } => {
            if !matches!(
                old.status,
                ReadStatus::Flagged | ReadStatus::Validated | ReadStatus::Estimated
            ) {
                return Err(refuse("only held, validated or estimated days are estimated again"));
            }
            let inputs = crate::ingest::intervals::day_inputs(&*txn, config, key)?;
            validate_day(&mut day, &inputs.context());
            if day.status == ReadStatus::Flagged {
                warnings.push(format!("still held for review: {}", rule_list(&day)));
            }
            let base = "VEE and estimation run again";
            reason = if reason_given.is_empty() {
                base.to_owned()
            } else {
                format!("{reason_given}; {base}")
            };
        }
        DayAction::Edit { values, .. } => {
            if reason_given.is_empty() {
                return Err(ReviewError::Refused("a reason is required to edit a day".into()));
            }
            match old.status {
                ReadStatus::Batched => {
                    return Err(refuse(
                        "in a billing batch billing has not acknowledged yet; edit it after the ack",
                    ));
                }
                ReadStatus::PendingApproval => return Err(refuse("awaiting a supervisor's approval")),
                _ => {}
            }
            if values.is_empty() {
                return Err(ReviewError::Refused("no interval values to set".into()));
            }
            if values.len() > MAX_DAY_VALUES {
                return Err(ReviewError::Refused(format!(
                    "{} values given; a day has at most {MAX_DAY_VALUES}",
                    values.len()
                )));
            }
            let direction = txn
                .channel(&key.meter_id, &key.channel)?
                .map_or(Direction::Delivered, |c| c.direction);
            let mut seen = vec![false; old.values.len()];
            for v in values {
                let n = usize::from(v.interval);
                if n == 0 || n > old.values.len() {
                    return Err(ReviewError::Refused(format!(
                        "day {key} has intervals 1 to {}; there is no interval {}",
                        old.values.len(),
                        v.interval
                    )));
                }
                if std::mem::replace(&mut seen[n - 1], true) {
                    return Err(ReviewError::Refused(format!("interval {} is given twice", v.interval)));
                }
                if direction == Direction::Delivered && v.value.is_negative() {
                    return Err(ReviewError::Refused(format!(
                        "interval {}: {} is negative; channel {} is delivered",
                        v.interval, v.value, key.channel
                    )));
                }
            }
            let source = day.source_index(&format!("clerk {clerk}"));
            for v in values {
                let i = usize::from(v.interval) - 1;
                day.values[i] = Some(v.value);
                day.quality[i] = Quality::Edited;
                day.methods[i] = None;
                day.value_source[i] = Some(source);
            }
            if day.values == old.values && day.quality == old.quality {
                return Err(ReviewError::Refused(format!(
                    "day {key} already has these values; accept it instead"
                )));
            }
            // VEE again: the flags describe the edited day, other gaps are estimated anew.
            let inputs = crate::ingest::intervals::day_inputs(&*txn, config, key)?;
            validate_day(&mut day, &inputs.context());
            if day.flags.iter().any(|f| f.rule.holds_day()) {
                warnings.push(format!("VEE still flags the edited day: {}", rule_list(&day)));
            }
            let missing = day.values.iter().filter(|v| v.is_none()).count();
            if missing > 0 {
                warnings.push(format!("{missing} interval(s) still have no value"));
            }
            day.status = ReadStatus::Edited;
            let service = txn.meter(&key.meter_id)?.map(|m| m.service);
            if let Some(service) = service {
                let change = Quantity::from_micros(day.total().micros().saturating_sub(old.total().micros()));
                if let Some(why) = approval.factors(service).approval_needed(change, old.total()) {
                    day.status = ReadStatus::PendingApproval;
                    warnings.push(format!("awaits a supervisor's approval: {why}"));
                }
            }
            reason = reason_given;
        }
        DayAction::Approve { .. } | DayAction::Decline { .. } => {
            if old.status != ReadStatus::PendingApproval {
                return Err(refuse("not awaiting approval"));
            }
            let pending = day_audit(&*txn, key)?
                .into_iter()
                .rev()
                .find(|e| e.new_status == ReadStatus::PendingApproval)
                .ok_or_else(|| ReviewError::Refused(format!("day {key} has no edit awaiting approval")))?;
            if pending.clerk == clerk {
                return Err(ReviewError::Refused(format!(
                    "you made this edit of day {key}; a supervisor other than its author approves or declines it"
                )));
            }
            let approved = matches!(req.action, DayAction::Approve { .. });
            if approved {
                day.status = ReadStatus::Edited;
            } else {
                // The edited intervals go back as they were; VEE describes the day again.
                for c in pending.day.iter().flat_map(|d| &d.changes) {
                    let Some(i) = usize::from(c.interval).checked_sub(1).filter(|i| *i < day.values.len()) else {
                        continue;
                    };
                    day.values[i] = c.old;
                    day.quality[i] = c.old_quality.unwrap_or(if c.old.is_some() {
                        Quality::Actual
                    } else {
                        Quality::Missing
                    });
                    day.methods[i] = c.old_method;
                    day.value_source[i] = c.old_source;
                }
                let inputs = crate::ingest::intervals::day_inputs(&*txn, config, key)?;
                validate_day(&mut day, &inputs.context());
                day.status = ReadStatus::Flagged;
            }
            let what = if approved { "approved" } else { "declined" };
            let base = format!(
                "{what} the edit of {} at {}",
                pending.clerk,
                pending.at.strftime("%Y-%m-%d %H:%M")
            );
            reason = if reason_given.is_empty() {
                base
            } else {
                format!("{reason_given}; {base}")
            };
        }
    }
    day.rev += 1;
    day.updated_at = now;
    txn.put_interval_days(std::slice::from_ref(&day))?;
    let changes: Vec<IntervalChange> = (0..day.values.len().max(old.values.len()))
        .filter_map(|i| {
            let (a, b) = (
                old.values.get(i).copied().flatten(),
                day.values.get(i).copied().flatten(),
            );
            let quality = (old.quality.get(i), day.quality.get(i));
            (a != b || quality.0 != quality.1).then(|| IntervalChange {
                interval: u16::try_from(i + 1).unwrap_or(u16::MAX),
                old: a,
                new: b,
                old_quality: old.quality.get(i).copied(),
                old_method: old.methods.get(i).copied().flatten(),
                old_source: old.value_source.get(i).copied().flatten(),
            })
        })
        .collect();
    let draft = AuditEntry {
        seq: 0,
        at: now,
        clerk,
        action: req.action.audit_action(),
        read_id: 0,
        meter_id: key.meter_id.clone(),
        old_value: old.total(),
        new_value: day.total(),
        old_status: old.status,
        new_status: day.status,
        reason,
        prev_hash: [0; HASH_LEN],
        hash: [0; HASH_LEN],
        day: Some(DayAudit {
            channel: key.channel.clone(),
            date: key.date,
            rev: day.rev,
            changes,
        }),
    };
    let entry = txn.append_audit(draft, None)?;
    Ok(DayOutcome { day, entry, warnings })
}

/// "interval_spike, sum_check".
fn rule_list(day: &IntervalDay) -> String {
    let mut rules: Vec<&str> = day
        .flags
        .iter()
        .filter(|f| f.rule.holds_day())
        .map(|f| f.rule.as_str())
        .collect();
    rules.dedup();
    rules.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::intervals::{IncomingDay, IncomingValue, accept_interval_days};
    use crate::model::interval::Channel;
    use crate::store::RedbStore;

    fn config() -> IntervalConfig {
        IntervalConfig {
            time_zone: Some("UTC".into()),
            ..IntervalConfig::default()
        }
    }

    fn key() -> DayKey {
        DayKey {
            meter_id: "E-1".into(),
            channel: "E1".into(),
            date: jiff::civil::date(2025, 3, 4),
        }
    }

    /// A store with one hourly day held for a spike at 18:00 (interval 19).
    fn store_with_spike() -> (tempfile::TempDir, RedbStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open_dir(dir.path()).unwrap();
        let values = (1..=24u16)
            .map(|n| IncomingValue {
                interval: n,
                value: Quantity::from_units(if n == 19 { 20 } else { 1 }).unwrap(),
                quality: Quality::Actual,
                method: None,
            })
            .collect();
        let day = IncomingDay {
            channel: Channel {
                meter_id: "E-1".into(),
                channel: "E1".into(),
                unit: "kWh".into(),
                direction: Direction::Delivered,
            },
            date: key().date,
            interval_minutes: 60,
            values,
            outages: vec![],
            source: "nem12 day.csv line 3".into(),
        };
        let c = config();
        let report = accept_interval_days(&store, &c, &c.clock(), &[day]).unwrap();
        assert_eq!(report.flagged, 1, "{report:?}");
        (dir, store)
    }

    fn ask(rev: Option<u64>, action: DayAction) -> DayActionRequest {
        DayActionRequest {
            key: key(),
            seen_rev: rev,
            clerk: "ann".into(),
            action,
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_741_200_000).unwrap()
    }

    #[test]
    fn a_held_day_is_queued_next_to_reads_and_accepted_with_the_revision_seen() {
        let (_dir, store) = store_with_spike();
        let view = super::super::queue_view(&store, &super::super::QueueFilter::default()).unwrap();
        assert_eq!((view.items.len(), view.days.len(), view.days_total), (0, 1, 1));
        let item = &view.days[0];
        assert_eq!(item.key, key());
        assert_eq!(item.rules, [IntervalRule::Spike]);
        assert_eq!(item.flagged_intervals, 1);
        assert_eq!(item.total, Quantity::from_units(43).unwrap());
        assert_eq!(view.day_counts.get(&IntervalRule::Spike), Some(&1));
        // A register-rule filter hides days; the counts still show them.
        let filtered = super::super::queue_view(
            &store,
            &super::super::QueueFilter {
                rule: Some(crate::model::Rule::HighUsage),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((filtered.days.len(), filtered.days_total), (0, 1));

        let rev = item.rev;
        let accept = DayAction::Accept { reason: String::new() };
        match act_on_day(
            &store,
            &config(),
            &crate::vee::VeeConfig::default(),
            &ask(Some(rev + 1), accept.clone()),
            now(),
        ) {
            Err(ReviewError::Conflict(m)) => assert!(m.contains("changed since you loaded it"), "{m}"),
            other => panic!("{other:?}"),
        }
        let done = act_on_day(
            &store,
            &config(),
            &crate::vee::VeeConfig::default(),
            &ask(Some(rev), accept.clone()),
            now(),
        )
        .unwrap();
        assert_eq!(done.day.status, ReadStatus::Accepted);
        assert_eq!(done.day.rev, rev + 1);
        let e = &done.entry;
        assert_eq!(
            (e.action, e.read_id, e.meter_id.as_str()),
            (AuditAction::Accept, 0, "E-1")
        );
        let d = e.day.as_ref().unwrap();
        assert_eq!((d.channel.as_str(), d.date, d.rev), ("E1", key().date, rev + 1));
        assert!(d.changes.is_empty());
        assert_eq!(
            done.summary(),
            "day E-1 E1 2025-03-04: accept (flagged → accepted), total 43 → 43"
        );
        // The same revision again is stale, and names who acted.
        match act_on_day(
            &store,
            &config(),
            &crate::vee::VeeConfig::default(),
            &ask(Some(rev), accept),
            now(),
        ) {
            Err(ReviewError::Conflict(m)) => assert!(m.contains("accept by ann"), "{m}"),
            other => panic!("{other:?}"),
        }
        let view = super::super::queue_view(&store, &super::super::QueueFilter::default()).unwrap();
        assert!(view.days.is_empty());
        let detail = day_detail(&store, &config(), &key()).unwrap();
        assert_eq!(detail.audit.len(), 1);
        assert_eq!(detail.unit, "kWh");
        let report = super::super::verify(&store).unwrap();
        assert!(report.ok(), "{report:?}");
    }

    #[test]
    fn an_edit_sets_intervals_as_a_clerks_and_the_audit_keeps_the_old_values() {
        let (_dir, store) = store_with_spike();
        let edit = |values: Vec<(u16, i64)>, reason: &str| DayAction::Edit {
            values: values
                .into_iter()
                .map(|(interval, v)| IntervalValue {
                    interval,
                    value: Quantity::from_units(v).unwrap(),
                })
                .collect(),
            reason: reason.into(),
        };
        for (action, needle) in [
            (edit(vec![(19, 1)], ""), "a reason is required"),
            (edit(vec![(0, 1)], "r"), "there is no interval 0"),
            (edit(vec![(25, 1)], "r"), "there is no interval 25"),
            (edit(vec![(3, 1), (3, 2)], "r"), "interval 3 is given twice"),
            (edit(vec![(3, -1)], "r"), "is negative"),
            (edit(vec![], "r"), "no interval values"),
            (
                DayAction::Reject { reason: " ".into() },
                "a reason is required to reject",
            ),
        ] {
            match act_on_day(
                &store,
                &config(),
                &crate::vee::VeeConfig::default(),
                &ask(None, action),
                now(),
            ) {
                Err(ReviewError::Refused(m)) => assert!(m.contains(needle), "{m} / {needle}"),
                other => panic!("{other:?}"),
            }
        }
        let done = act_on_day(
            &store,
            &config(),
            &crate::vee::VeeConfig::default(),
            &ask(Some(1), edit(vec![(19, 1)], "spike was a test load")),
            now(),
        )
        .unwrap();
        let day = &done.day;
        assert_eq!(day.status, ReadStatus::Edited);
        assert_eq!(day.values[18], Some(Quantity::from_units(1).unwrap()));
        assert_eq!(day.quality[18], Quality::Edited);
        assert_eq!(day.sources[usize::from(day.value_source[18].unwrap())], "clerk ann");
        assert!(day.flags.is_empty(), "VEE ran again: {:?}", day.flags);
        let d = done.entry.day.as_ref().unwrap();
        assert_eq!(
            d.changes,
            [IntervalChange {
                interval: 19,
                old: Some(Quantity::from_units(20).unwrap()),
                new: Some(Quantity::from_units(1).unwrap()),
                old_quality: Some(Quality::Actual),
                old_method: None,
                old_source: Some(0),
            }]
        );
        assert_eq!(
            (done.entry.old_value, done.entry.new_value),
            (Quantity::from_units(43).unwrap(), Quantity::from_units(24).unwrap())
        );
        // Stored as returned.
        let txn = store.begin_read().unwrap();
        assert_eq!(txn.interval_day(&key()).unwrap().as_ref(), Some(day));
        drop(txn);
        // Re-estimating an edited day is refused; rejecting too (it is billable now).
        for action in [
            DayAction::Estimate { reason: String::new() },
            DayAction::Reject { reason: "r".into() },
        ] {
            assert!(matches!(
                act_on_day(
                    &store,
                    &config(),
                    &crate::vee::VeeConfig::default(),
                    &ask(None, action),
                    now()
                ),
                Err(ReviewError::Refused(_))
            ));
        }
        let report = super::super::verify(&store).unwrap();
        assert!(report.ok(), "{report:?}");
    }

    #[test]
    fn a_re_estimate_keeps_what_vee_says_and_a_reject_takes_the_day_out() {
        let (_dir, store) = store_with_spike();
        let done = act_on_day(
            &store,
            &config(),
            &crate::vee::VeeConfig::default(),
            &ask(Some(1), DayAction::Estimate { reason: String::new() }),
            now(),
        )
        .unwrap();
        assert_eq!(done.day.status, ReadStatus::Flagged, "the spike is still there");
        assert_eq!(done.warnings, ["still held for review: interval_spike"]);
        assert_eq!(done.entry.action, AuditAction::Estimate);
        let done = act_on_day(
            &store,
            &config(),
            &crate::vee::VeeConfig::default(),
            &ask(
                Some(2),
                DayAction::Reject {
                    reason: "meter fault".into(),
                },
            ),
            now(),
        )
        .unwrap();
        assert_eq!(done.day.status, ReadStatus::Rejected);
        assert_eq!(done.entry.reason, "meter fault");
        assert_eq!(day_detail(&store, &config(), &key()).unwrap().audit.len(), 2);
        // Unknown days are refused, not panicked on.
        let mut other = ask(None, DayAction::Accept { reason: String::new() });
        other.key.channel = "B1".into();
        assert!(matches!(
            act_on_day(&store, &config(), &crate::vee::VeeConfig::default(), &other, now()),
            Err(ReviewError::Refused(_))
        ));
        assert!(super::super::verify(&store).unwrap().ok());
    }

    /// Four eyes: an edit that changes the day's total by more than the service's approval
    /// threshold waits for a supervisor other than its author; declined, the edited intervals
    /// go back exactly as they were (value, quality, source) and the day is held again.
    #[test]
    fn a_large_edit_waits_for_another_supervisor_who_approves_or_declines_it() {
        let (_dir, store) = store_with_spike();
        let mut txn = store.begin_write().unwrap();
        txn.put_meter(&crate::model::Meter {
            meter_id: "E-1".into(),
            account: "A-1".into(),
            route: "R".into(),
            sequence: 1,
            service: crate::model::Service::Electric,
            unit: "kWh".into(),
            dials: 6,
            decimals: 0,
            multiplier: Quantity::from_units(1).unwrap(),
            status: crate::model::MeterStatus::Active,
            address: String::new(),
            notes: String::new(),
        })
        .unwrap();
        txn.commit().unwrap();
        let mut vee = crate::vee::VeeConfig::default();
        vee.electric.approval_threshold = Some(Quantity::from_units(5).unwrap());
        let before = store.begin_read().unwrap().interval_day(&key()).unwrap().unwrap();
        let edit = |store: &RedbStore, rev, value: i64| {
            act_on_day(
                store,
                &config(),
                &vee,
                &ask(
                    Some(rev),
                    DayAction::Edit {
                        values: vec![IntervalValue {
                            interval: 19,
                            value: Quantity::from_units(value).unwrap(),
                        }],
                        reason: "register check".into(),
                    },
                ),
                now(),
            )
        };
        // 20 → 16: the total changes by 4, within the threshold: billable at once.
        let small = edit(&store, 1, 16).unwrap();
        assert_eq!(small.day.status, ReadStatus::Edited);
        // 16 → 1: by 15, over 5: pending, not billable.
        let big = edit(&store, 2, 1).unwrap();
        assert_eq!(big.day.status, ReadStatus::PendingApproval);
        assert!(big.warnings[0].contains("approval"), "{:?}", big.warnings);
        let as_who = |clerk: &str, rev, action| {
            let mut r = ask(Some(rev), action);
            r.clerk = clerk.into();
            act_on_day(&store, &config(), &vee, &r, now())
        };
        let approve = || DayAction::Approve { reason: String::new() };
        let decline = || DayAction::Decline { reason: String::new() };
        // Its author may not approve it, nor decline it.
        for a in [approve(), decline()] {
            match as_who("ann", 3, a) {
                Err(ReviewError::Refused(m)) => assert!(m.contains("other than its author"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        // Another supervisor declines: interval 19 is back at 16, edited (F), as before the
        // big edit; the day is held again.
        let declined = as_who("sue", 3, decline()).unwrap();
        assert_eq!(declined.day.status, ReadStatus::Flagged);
        assert_eq!(declined.day.values[18], Some(Quantity::from_units(16).unwrap()));
        assert_eq!(declined.day.quality[18], Quality::Edited);
        assert_eq!(declined.day.value_source[18], small.day.value_source[18]);
        assert_eq!(declined.entry.action, AuditAction::Decline);
        // Approve or decline what is not pending: refused.
        assert!(matches!(as_who("sue", 4, approve()), Err(ReviewError::Refused(_))));
        // Once more, approved this time: edited, billable.
        let big = edit(&store, 4, 1).unwrap();
        assert_eq!(big.day.status, ReadStatus::PendingApproval);
        let approved = as_who("sue", 5, approve()).unwrap();
        assert_eq!(approved.day.status, ReadStatus::Edited);
        assert_eq!(approved.day.values[18], Some(Quantity::from_units(1).unwrap()));
        assert_ne!(approved.day.values, before.values);
        assert!(super::super::verify(&store).unwrap().ok());
    }

    #[test]
    fn interval_values_parse_from_a_clerks_line() {
        let v = parse_interval_values("19=1.2, 20-21=0.5").unwrap();
        let pairs: Vec<(u16, String)> = v.iter().map(|x| (x.interval, x.value.to_string())).collect();
        assert_eq!(pairs, [(19, "1.2".into()), (20, "0.5".into()), (21, "0.5".into())]);
        for bad in ["", "19", "0=1", "5-3=1", "x=1", "1=abc", "1-65535=1", "1-300=1 301=1"] {
            assert!(parse_interval_values(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_interval_values("1-300=1").unwrap().len(), 300);
    }

    #[test]
    fn tampering_with_a_day_entry_breaks_the_chain() {
        let (_dir, store) = store_with_spike();
        let done = act_on_day(
            &store,
            &config(),
            &crate::vee::VeeConfig::default(),
            &ask(Some(1), DayAction::Accept { reason: String::new() }),
            now(),
        )
        .unwrap();
        let mut forged = done.entry.clone();
        forged.day.as_mut().unwrap().rev += 7;
        assert_ne!(forged.compute_hash(), done.entry.hash);
    }
}
