//! The review queue: held reads with their meters, filtered and sorted the way clerks work.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::days::DayQueueItem;
use crate::model::interval::IntervalRule;
use crate::model::{Meter, ReadStatus, Rule, Service, StoredRead};
use crate::store::{Result, Store};

/// How bad a rule's flag is, for sorting (higher first): impossible or foreign data first,
/// then money at stake, then the doubtful-but-likely-fine.
pub fn severity(rule: Rule) -> u8 {
    match rule {
        Rule::UnknownMeter => 100,
        Rule::DialOverflow => 95,
        Rule::Duplicate => 90,
        Rule::Tamper => 85,
        Rule::NegativeUsage => 80,
        Rule::MeterChange => 75,
        Rule::UsageOnInactive => 70,
        Rule::ReverseFlow => 65,
        Rule::Leak => 60,
        Rule::HighUsage => 55,
        Rule::Spike => 50,
        Rule::EstimateLimit => 45,
        Rule::LowUsage => 40,
        Rule::ZeroUsage => 35,
        Rule::ExactSameUsage => 30,
        _ => 10,
    }
}

/// Which held reads to show. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueFilter {
    pub route: Option<String>,
    pub rule: Option<Rule>,
    pub service: Option<Service>,
}

impl QueueFilter {
    fn matches(&self, read: &StoredRead, meter: Option<&Meter>) -> bool {
        self.route.as_ref().is_none_or(|r| meter.is_some_and(|m| &m.route == r))
            && self.rule.is_none_or(|rule| read.has_flag(rule))
            && self.service.is_none_or(|s| meter.is_some_and(|m| m.service == s))
    }
}

/// One line of the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueItem {
    pub read: StoredRead,
    pub route: String,
    pub sequence: u32,
    pub service: Option<Service>,
    pub severity: u8,
}

/// The filtered queue, sorted by severity (worst first), route, walk sequence, time; and
/// the counts per rule over the whole queue (so a clerk sees what the filter hides).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueView {
    pub items: Vec<QueueItem>,
    pub counts: BTreeMap<Rule, u64>,
    /// Held reads in all (unfiltered).
    pub total: u64,
    /// Interval days held for review that the filter shows, worst first (a rule filter names a
    /// register rule, so it hides them all). Appended: older clients ignore them.
    #[serde(default)]
    pub days: Vec<DayQueueItem>,
    /// Flags of every held day, per rule.
    #[serde(default)]
    pub day_counts: BTreeMap<IntervalRule, u64>,
    /// Held days in all (unfiltered).
    #[serde(default)]
    pub days_total: u64,
}

pub fn queue_view(store: &dyn Store, filter: &QueueFilter) -> Result<QueueView> {
    let txn = store.begin_read()?;
    let reads = txn.reads_with_status(ReadStatus::Flagged, usize::MAX)?;
    let ids: Vec<&str> = reads.iter().map(|r| r.read.meter_id.as_str()).collect();
    let meters = txn.meters_by_id(&ids)?;
    let mut view = QueueView {
        total: reads.len() as u64,
        ..QueueView::default()
    };
    for (read, meter) in reads.into_iter().zip(meters) {
        for f in &read.flags {
            *view.counts.entry(f.rule).or_default() += 1;
        }
        if !filter.matches(&read, meter.as_ref()) {
            continue;
        }
        let severity = read.flags.iter().map(|f| severity(f.rule)).max().unwrap_or(0);
        view.items.push(QueueItem {
            route: meter.as_ref().map(|m| m.route.clone()).unwrap_or_default(),
            sequence: meter.as_ref().map(|m| m.sequence).unwrap_or(u32::MAX),
            service: meter.as_ref().map(|m| m.service),
            severity,
            read,
        });
    }
    view.items.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.route.cmp(&b.route))
            .then(a.sequence.cmp(&b.sequence))
            .then(a.read.read.read_at.cmp(&b.read.read.read_at))
            .then(a.read.id.cmp(&b.read.id))
    });
    let (days, day_counts, days_total) = super::days::queue_days(
        txn.as_ref(),
        filter.route.as_deref(),
        filter.service,
        filter.rule.is_some(),
    )?;
    view.days = days;
    view.day_counts = day_counts;
    view.days_total = days_total;
    Ok(view)
}
