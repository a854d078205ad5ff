//! The one way reads enter the store: [`accept_reads`].
//!
//! Files, handheld cradles, MQTT gateways and probes all decode their input into
//! [`Read`]s and call [`accept_reads`]. It runs VEE and stores the reads in one durable
//! transaction, so every source gets the same validation, the same idempotency and the same
//! "acknowledge only after commit" guarantee.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::model::{
    Meter, MeterChange, Quantity, Read, ReadId, ReadStatus, ReadSummary, ReadType, Rule, StoredRead, to_store_precision,
};
use crate::store::{HistoryQuery, Result, Store, WriteTxn};
use crate::vee::{self, ADU_WINDOW, MeterHistory, PeriodTotal, VeeConfig};

/// What [`accept_reads`] did. Everything counted here is committed durably.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AcceptReport {
    /// Reads handed in.
    pub received: u64,
    /// Reads stored (validated + flagged).
    pub imported: u64,
    /// Reads skipped because the same meter, read_at and value were already stored (or came
    /// twice in the input): re-importing is idempotent.
    pub duplicates_skipped: u64,
    /// Stored reads that passed VEE (including plausible rollovers).
    pub validated: u64,
    /// Stored reads held for review.
    pub flagged: u64,
    /// Flags raised, per rule id (a read may raise several).
    pub by_rule: BTreeMap<Rule, u64>,
    /// Ids of the stored reads, in the order they were stored (per meter, chronological).
    #[serde(skip)]
    pub read_ids: Vec<ReadId>,
}

impl AcceptReport {
    /// What became of the reads handed in, for `meterd_frames_total{outcome}`: `read`
    /// (validated), `held` (flagged for review), `duplicate` (already stored).
    pub fn outcomes(&self) -> [(&'static str, u64); 3] {
        [
            ("read", self.validated),
            ("held", self.flagged),
            ("duplicate", self.duplicates_skipped),
        ]
    }

    /// Add another report's counts (for imports committed in several transactions).
    pub fn absorb(&mut self, other: AcceptReport) {
        self.received += other.received;
        self.imported += other.imported;
        self.duplicates_skipped += other.duplicates_skipped;
        self.validated += other.validated;
        self.flagged += other.flagged;
        for (rule, n) in other.by_rule {
            *self.by_rule.entry(rule).or_default() += n;
        }
        self.read_ids.extend(other.read_ids);
    }
}

/// Validate and durably store a group of reads, in ONE write transaction.
///
/// For each meter, the reads are taken in chronological order (input order breaks ties), and
/// each one is:
/// 1. skipped if a read of the same meter, read_at and value is already stored or came
///    earlier in `reads` (idempotent re-import: a handheld that unloads twice, a gateway that
///    redelivers, a file imported again);
/// 2. validated by [`vee::validate`] against the meter's history: the reads already stored
///    *and* the earlier reads of this same call;
/// 3. stored with its status, consumption and flags. A read for a meter that is not in the
///    store is stored too, flagged `unknown_meter`: nothing is lost.
///
/// The function returns only after the transaction committed durably; only then may the
/// caller acknowledge upstream (clear the recorder, ack the MQTT message, report the file
/// imported). On error nothing of this call is stored.
///
/// Group many reads per call (thousands): the cost of a durable commit is paid once per call.
/// Reads that arrive later than stored reads of the same meter are validated against the
/// reads before them only; later reads are not re-validated.
pub fn accept_reads(store: &dyn Store, config: &VeeConfig, reads: Vec<Read>) -> Result<AcceptReport> {
    // Each attempt validates a fresh copy against the history as it is then.
    let received_at = to_store_precision(Timestamp::now());
    let report = crate::store::write(store, |txn| accept_in(txn, config, reads.clone(), received_at))?;
    crate::metrics::counter_add(crate::metrics::READS_INGESTED, &[], report.imported);
    Ok(report)
}

/// [`accept_reads`] plus the caller's own writes (`extra`, run again with the reads when the
/// engine aborts the transaction: it must be repeatable), in the same ONE transaction and
/// durable commit: a cradle stores its committed-sequence watermark and skipped meters with the
/// reads they cover, so the watermark can never run ahead of the reads.
pub fn accept_reads_with(
    store: &dyn Store,
    config: &VeeConfig,
    reads: Vec<Read>,
    mut extra: impl FnMut(&mut dyn WriteTxn) -> Result<()>,
) -> Result<AcceptReport> {
    let received_at = to_store_precision(Timestamp::now());
    crate::store::write(store, |txn| {
        let report = accept_in(txn, config, reads.clone(), received_at)?;
        extra(txn)?;
        Ok(report)
    })
}

/// [`accept_reads`] inside a caller's transaction (for sources that must store something
/// else atomically with the reads, e.g. a de-duplication key or a cradle session record).
/// The caller commits.
pub fn accept_in(
    txn: &mut dyn WriteTxn,
    config: &VeeConfig,
    reads: Vec<Read>,
    received_at: Timestamp,
) -> Result<AcceptReport> {
    let mut report = AcceptReport {
        received: reads.len() as u64,
        ..AcceptReport::default()
    };
    let mut reads = reads;
    for read in &mut reads {
        read.read_at = to_store_precision(read.read_at);
    }
    // Per meter, chronological; the sort is stable, so input order breaks ties.
    reads.sort_by(|a, b| a.meter_id.cmp(&b.meter_id).then(a.read_at.cmp(&b.read_at)));
    let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, r) in reads.iter().enumerate() {
        match groups.last_mut() {
            Some(g) if reads[g.start].meter_id == r.meter_id => g.end = i + 1,
            _ => groups.push(i..i + 1),
        }
    }
    // One bulk lookup of the meters and of their history windows: a year before each meter's
    // first new read (the ADU window) up to its last new read (same-time duplicates).
    let ids: Vec<&str> = groups.iter().map(|g| reads[g.start].meter_id.as_str()).collect();
    // The meters validated here are locked before any history is read, so an engine shared by
    // instances serialises VEE per meter (ids are sorted and distinct: one group per meter).
    txn.lock_meters(&ids)?;
    let meters = txn.meters_by_id(&ids)?;
    let queries: Vec<HistoryQuery<'_>> = groups
        .iter()
        .map(|g| HistoryQuery {
            meter_id: &reads[g.start].meter_id,
            from: reads[g.start].read_at.checked_sub(ADU_WINDOW).unwrap_or(Timestamp::MIN),
            to: reads[g.end - 1]
                .read_at
                .checked_add(SignedDuration::from_micros(1))
                .unwrap_or(Timestamp::MAX),
        })
        .collect();
    let histories = txn.meter_histories(&queries)?;
    drop(queries);
    drop(ids);

    // Per meter: its recorded exchanges, and the estimates in a row right before its first
    // new read (looked up only when the group has an estimate).
    let mut extras: Vec<(Vec<MeterChange>, u32)> = Vec::with_capacity(groups.len());
    for g in &groups {
        let first = &reads[g.start];
        let changes = txn.meter_changes(&first.meter_id)?;
        let prior = if reads[g.clone()].iter().any(|r| r.read_type == ReadType::Estimate) {
            let before = txn.meter_reads_before(&first.meter_id, first.read_at, config.estimate_limit as usize + 1)?;
            before
                .iter()
                .filter(|r| r.summary().is_history())
                .take_while(|r| r.is_estimate())
                .count() as u32
        } else {
            0
        };
        extras.push((changes, prior));
    }
    let mut to_store = Vec::with_capacity(reads.len());
    let mut reads = reads.into_iter();
    for (((g, meter), known), (changes, prior)) in groups.into_iter().zip(meters).zip(histories).zip(extras) {
        let group = reads.by_ref().take(g.len());
        let extra = MeterGroup {
            meter: meter.as_ref(),
            changes: &changes,
            prior_estimates: prior,
        };
        accept_meter(config, extra, known, group, received_at, &mut report, &mut to_store);
    }
    report.read_ids = txn.insert_reads(&mut to_store)?;
    report.imported = to_store.len() as u64;
    Ok(report)
}

/// What VEE needs of one meter besides its history.
struct MeterGroup<'a> {
    meter: Option<&'a Meter>,
    changes: &'a [MeterChange],
    prior_estimates: u32,
}

/// VEE for one meter's new reads (chronological), against `known` (its stored history window,
/// oldest first), which grows with each accepted read.
fn accept_meter(
    config: &VeeConfig,
    group: MeterGroup<'_>,
    mut known: Vec<ReadSummary>,
    reads: impl Iterator<Item = Read>,
    received_at: Timestamp,
    report: &mut AcceptReport,
    to_store: &mut Vec<StoredRead>,
) {
    let meter = group.meter;
    let mut prior_estimates = group.prior_estimates;
    let mut same: Vec<Quantity> = Vec::new();
    // The reads that count as history, kept sorted as reads are accepted; each read is
    // validated against the part VEE looks at (the previous read and the rules' windows), a
    // slice found by binary search, so a read costs the same however many reads the meter
    // already has (copying the whole history per read made one meter's import quadratic).
    let mut history: Vec<ReadSummary> = known.iter().filter(|k| k.is_history()).copied().collect();
    let mut totals = PeriodTotal::running(&history);
    let look_back = ADU_WINDOW.max(SignedDuration::from_hours(i64::from(config.spike_window_hours)));
    for read in reads {
        let lo = known.partition_point(|k| k.read_at < read.read_at);
        let hi = known.partition_point(|k| k.read_at <= read.read_at);
        same.clear();
        same.extend(known[lo..hi].iter().map(|k| k.value));
        if same.contains(&read.value) {
            report.duplicates_skipped += 1;
            continue;
        }
        let before = history.partition_point(|k| k.read_at < read.read_at);
        let from = read.read_at.checked_sub(look_back).unwrap_or(Timestamp::MIN);
        // From the last read before the window (the start of the window's first period).
        let start = history[..before]
            .partition_point(|k| k.read_at < from)
            .saturating_sub(1);
        let past = MeterHistory {
            meter,
            history: &history[start..before],
            totals: Some(&totals[start..before]),
            same_time: &same,
            changes: group.changes,
            prior_estimates,
        };
        let outcome = vee::validate(&past, &read, config);

        for f in &outcome.flags {
            *report.by_rule.entry(f.rule).or_default() += 1;
        }
        match outcome.status {
            ReadStatus::Flagged => report.flagged += 1,
            _ => report.validated += 1,
        }
        if read.read_type == ReadType::Estimate {
            prior_estimates += 1;
        } else if !outcome.flags.iter().any(|f| f.rule == Rule::Duplicate) {
            prior_estimates = 0;
        }
        let stored = StoredRead {
            id: 0,
            read,
            status: outcome.status,
            flags: outcome.flags,
            consumption: outcome.consumption,
            received_at,
            batch: None,
        };
        let summary = stored.summary();
        known.insert(hi, summary);
        if summary.is_history() {
            let at = history.partition_point(|k| k.read_at <= summary.read_at);
            history.insert(at, summary);
            // Appending (reads newer than the meter's history) touches one total; a read
            // filled in between older ones moves the totals after it.
            totals.insert(at, PeriodTotal::default());
            for i in at..history.len() {
                totals[i] = match i {
                    0 => PeriodTotal::default(),
                    _ => totals[i - 1].plus(PeriodTotal::of(&history[i - 1], &history[i])),
                };
            }
        }
        to_store.push(stored);
    }
}
