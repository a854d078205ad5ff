//! Validated reads handed to billing in batches, each read billed exactly once.
//!
//! A billing client asks for the next batch: while it has an open (un-acked) batch it gets
//! that same batch again; otherwise billable reads not in any batch are taken into a new one
//! (status `batched`). Ack marks the batch and its reads `exported`; acking again is
//! harmless. Both changes are durable before they are answered.
//!
//! A batch is frozen when it is created ([`BatchContents`]: each read as it went out, and the
//! corrections it carries), so every format is rendered from the same stored data and asking
//! again gives the same bytes even if a read changes meanwhile. A read changed after it was
//! billed (edited, re-timed or rejected by a clerk) is never changed silently: the store notes
//! it ([`BilledReadChange`]) and the next batch of the client that billed it carries a
//! correction (old value, new value, reason); the record stays, no longer due.

pub mod http;
pub mod interval_render;
pub mod intervals;
pub mod layouts;
pub mod render;
pub mod tokens;
pub mod tou;

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::model::billing::{BatchContents, BatchLine, Billed, BilledReadChange, Correction};
use crate::model::{Batch, BatchId, BatchStatus, Meter, ReadStatus, StoredRead, to_store_precision};
use crate::store::{Result, Rules, Store, StoreError, WriteTxn};

/// The client name the CLI uses.
pub const DEFAULT_CLIENT: &str = "default";

/// How many billed-then-edited reads a batch scan looks past per status.
const REBILLED_SLACK: usize = 1024;

/// Default most reads per batch.
pub const DEFAULT_MAX_READS: usize = 10_000;

/// A batch with its reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchWithReads {
    pub batch: Batch,
    pub reads: Vec<StoredRead>,
}

/// A batch as handed out: the batch record and what it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchDoc {
    pub batch: Batch,
    pub contents: BatchContents,
}

/// The client's open batch, or a new one of up to `max` billable reads (oldest read ids
/// first). `None` when there is no open batch and nothing to bill.
pub fn next_batch(store: &dyn Store, client: &str, max: usize, now: Timestamp) -> Result<Option<BatchWithReads>> {
    match pull(store, client, max, now)? {
        Some(doc) => {
            let txn = store.begin_read()?;
            Ok(Some(BatchWithReads {
                reads: batch_reads(txn.as_ref(), &doc.batch)?,
                batch: doc.batch,
            }))
        }
        None => Ok(None),
    }
}

/// The client's open batch with its frozen contents, or a new one: corrections due to this
/// client first, then up to `max` billable reads not in any batch (oldest read ids first).
/// Committed before it returns. `None` when there is nothing to bill.
pub fn pull(store: &dyn Store, client: &str, max: usize, now: Timestamp) -> Result<Option<BatchDoc>> {
    let now = to_store_precision(now);
    crate::store::write_within(store, crate::store::INTERACTIVE_DEADLINE, |txn| {
        if let Some(batch) = txn.open_batch(client)? {
            let contents = contents_of(&*txn, &batch)?;
            return Ok(Some(BatchDoc { batch, contents }));
        }
        let max = max.max(1);
        // Billable reads that went out before (edited after export) are corrections, not new reads.
        let mut fresh = Vec::new();
        let mut rebilled = Vec::new();
        for status in ReadStatus::BILLABLE {
            if fresh.len() >= max {
                break;
            }
            // Some room for billed-then-edited reads, which the scan meets but does not take.
            for r in txn.reads_with_status(status, (max - fresh.len()).saturating_add(REBILLED_SLACK))? {
                if r.batch.is_some() {
                    rebilled.push(r.id);
                } else if fresh.len() < max {
                    fresh.push(r);
                }
            }
        }
        let mut changed: BTreeMap<u64, Option<BilledReadChange>> = txn
            .billed_read_changes()?
            .into_iter()
            .filter(|c| c.correction_due)
            .map(|c| (c.read_id, Some(c)))
            .collect();
        for id in rebilled {
            changed.entry(id).or_insert(None);
        }
        let (corrections, mut touched) = corrections_due(txn, client, changed, now)?;
        if fresh.is_empty() && corrections.is_empty() {
            // Statuses restored on reads whose change turned out not to matter.
            return Ok(None);
        }
        fresh.sort_by_key(|r| r.id);
        let mut read_ids: Vec<u64> = fresh.iter().map(|r| r.id).collect();
        read_ids.extend(
            corrections
                .iter()
                .filter(|c| c.new_value.is_some())
                .map(|c| c.line.read_id),
        );
        let batch = txn.create_batch(client, read_ids, now)?;
        let meters = meters_of(&*txn, &fresh)?;
        // What billing has of a fresh read is the read itself until it changes (the change note
        // captures it then); only corrections need a record of what was billed.
        let mut billed = Vec::with_capacity(corrections.len());
        let mut lines = Vec::with_capacity(fresh.len());
        for r in &fresh {
            lines.push(line_of(
                r,
                meters.get(r.read.meter_id.as_str()).and_then(Option::as_ref),
            ));
        }
        txn.set_billing_state(&mut fresh, ReadStatus::Batched, batch.id)?;
        for c in &corrections {
            billed.push((
                c.line.read_id,
                Billed {
                    batch: batch.id,
                    value: c.new_value.unwrap_or(c.old_value),
                    read_at: c.line.read_at,
                    withdrawn: c.new_value.is_none(),
                },
            ));
            settle(txn, c.line.read_id)?;
        }
        touched.retain(|r| r.status != ReadStatus::Rejected);
        for r in &mut touched {
            r.status = ReadStatus::Batched;
            r.batch = Some(batch.id);
        }
        txn.update_reads(&touched, now)?;
        txn.put_billed(&billed)?;
        let contents = BatchContents { lines, corrections };
        txn.put_batch_contents(batch.id, &contents)?;
        Ok(Some(BatchDoc { batch, contents }))
    })
}

/// A batch's frozen contents. Batches created before contents were kept (an older meterd)
/// are rebuilt from their reads, as they are now.
fn contents_of(txn: &dyn crate::store::ReadTxn, batch: &Batch) -> Result<BatchContents> {
    if let Some(c) = txn.batch_contents(batch.id)? {
        return Ok(c);
    }
    let reads = batch_reads(txn, batch)?;
    let meters = meters_of(txn, &reads)?;
    let lines = reads
        .iter()
        .map(|r| line_of(r, meters.get(r.read.meter_id.as_str()).and_then(Option::as_ref)))
        .collect();
    Ok(BatchContents {
        lines,
        corrections: Vec::new(),
    })
}

fn meters_of(txn: &dyn crate::store::ReadTxn, reads: &[StoredRead]) -> Result<BTreeMap<String, Option<Meter>>> {
    let mut ids: Vec<&str> = reads.iter().map(|r| r.read.meter_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let found = txn.meters_by_id(&ids)?;
    Ok(ids.into_iter().map(str::to_owned).zip(found).collect())
}

fn line_of(r: &StoredRead, meter: Option<&Meter>) -> BatchLine {
    BatchLine {
        read_id: r.id,
        meter_id: r.read.meter_id.clone(),
        account: meter.map(|m| m.account.clone()).unwrap_or_default(),
        route: meter.map(|m| m.route.clone()).unwrap_or_default(),
        service: meter.map(|m| m.service),
        unit: meter.map(|m| m.unit.clone()).unwrap_or_default(),
        multiplier: meter
            .map(|m| m.multiplier)
            .unwrap_or(crate::model::Quantity::from_micros(crate::model::SCALE)),
        read_at: r.read.read_at,
        value: r.read.value,
        consumption: r.consumption,
        status: r.status,
        read_type: r.read.read_type,
        codes: r.read.codes.clone(),
    }
}

/// The corrections this client is due for changed billed reads, and the reads that need their
/// status set (corrected ones; ones whose change did not matter go back to `exported`, which
/// is written here). Changes of reads billed to another client, of reads a clerk still holds
/// (`flagged`) or a supervisor has yet to approve (`pending_approval`), or of reads whose batch
/// is still open, wait.
fn corrections_due(
    txn: &mut dyn WriteTxn,
    client: &str,
    changed: BTreeMap<u64, Option<BilledReadChange>>,
    now: Timestamp,
) -> Result<(Vec<Correction>, Vec<StoredRead>)> {
    let mut corrections = Vec::new();
    let mut touched = Vec::new();
    for (id, change) in changed {
        let Some(mut read) = txn.read(id)? else {
            txn.remove_billed_read_change(id)?;
            continue;
        };
        let reason = change.as_ref().and_then(|c| c.reason.clone());
        let billed = match change.and_then(|c| c.billed) {
            Some(b) => Some(b),
            None => txn.billed(id)?,
        };
        let Some(billed) = billed else {
            settle(txn, id)?;
            // No change was recorded: the value is what went out; only the status moved.
            if let Some(batch) = read.batch.filter(|_| ReadStatus::BILLABLE.contains(&read.status)) {
                read.status = if txn.batch(batch)?.is_some_and(|b| b.status == BatchStatus::Acked) {
                    ReadStatus::Exported
                } else {
                    ReadStatus::Batched
                };
                txn.update_read(&read, now)?;
            }
            continue;
        };
        let Some(batch) = txn.batch(billed.batch)? else {
            return Err(StoreError::NotFound {
                what: "batch",
                id: billed.batch.to_string(),
            });
        };
        if batch.client != client
            || batch.status == BatchStatus::Open
            || matches!(read.status, ReadStatus::Flagged | ReadStatus::PendingApproval)
        {
            continue;
        }
        let withdrawn = read.status == ReadStatus::Rejected;
        if withdrawn == billed.withdrawn
            && (withdrawn || (read.read.value == billed.value && read.read.read_at == billed.read_at))
        {
            // Back to what billing has: nothing to tell it.
            settle(txn, id)?;
            if ReadStatus::BILLABLE.contains(&read.status) {
                read.status = if txn.batch(billed.batch)?.is_some_and(|b| b.status == BatchStatus::Acked) {
                    ReadStatus::Exported
                } else {
                    ReadStatus::Batched
                };
                read.batch = Some(billed.batch);
                txn.update_read(&read, now)?;
            }
            continue;
        }
        let meter = txn.meter(&read.read.meter_id)?;
        let line = line_of(&read, meter.as_ref());
        let reason = reason.unwrap_or_else(|| {
            if withdrawn {
                "read rejected after billing".to_owned()
            } else {
                "read changed after billing".to_owned()
            }
        });
        corrections.push(Correction {
            line,
            original_batch: billed.batch,
            old_value: billed.value,
            old_read_at: billed.read_at,
            new_value: if withdrawn { None } else { Some(read.read.value) },
            reason,
            corrected_at: now,
        });
        touched.push(read);
    }
    Ok((corrections, touched))
}

/// A batch with its frozen contents.
pub fn get_doc(store: &dyn Store, id: BatchId) -> Result<Option<BatchDoc>> {
    let txn = store.begin_read()?;
    match txn.batch(id)? {
        Some(batch) => Ok(Some(BatchDoc {
            contents: contents_of(txn.as_ref(), &batch)?,
            batch,
        })),
        None => Ok(None),
    }
}

/// Billing has heard of the read's change (its correction went out), or needs not (the read is
/// back to what billing has): the record stays, no longer due.
fn settle(txn: &mut dyn WriteTxn, read: u64) -> Result<()> {
    match txn.billed_read_change(read)? {
        Some(mut c) if c.correction_due => {
            c.correction_due = false;
            txn.put_billed_read_change(&c)
        }
        _ => Ok(()),
    }
}

/// Tell billing why a billed read changed: the reason and who changed it go into its
/// correction. Call it in the transaction that changes the read.
pub fn note_change(txn: &mut dyn WriteTxn, read: u64, reason: &str, by: Option<&str>, now: Timestamp) -> Result<()> {
    let now = to_store_precision(now);
    let mut change = match txn.billed_read_change(read)? {
        // Billing has not heard of the earlier change yet: keep what it captured.
        Some(c) if c.correction_due => c,
        // Else capture it now (called before the update, the stored read is still what
        // billing has). A read that is not stored has nothing to tell.
        earlier => match txn.read(read)? {
            Some(stored) => BilledReadChange::opened(&stored, earlier.as_ref(), now),
            None => return Ok(()),
        },
    };
    change.reason = Some(reason.to_owned());
    change.by = by.map(str::to_owned);
    change.at = now;
    txn.put_billed_read_change(&change)
}

fn batch_reads(txn: &dyn crate::store::ReadTxn, batch: &Batch) -> Result<Vec<StoredRead>> {
    batch
        .read_ids
        .iter()
        .map(|&id| {
            txn.read(id)?.ok_or_else(|| StoreError::NotFound {
                what: "read",
                id: id.to_string(),
            })
        })
        .collect()
}

/// The batch with its reads, if it exists.
pub fn get_batch(store: &dyn Store, id: BatchId) -> Result<Option<BatchWithReads>> {
    let txn = store.begin_read()?;
    match txn.batch(id)? {
        Some(batch) => Ok(Some(BatchWithReads {
            reads: batch_reads(txn.as_ref(), &batch)?,
            batch,
        })),
        None => Ok(None),
    }
}

/// What an ack did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// The batch was open and is now acked; its reads are exported.
    Acked { reads: usize },
    /// It had been acked before; nothing changed.
    AlreadyAcked,
}

/// Acknowledge a batch: billing has it. Idempotent. Unknown ids are an error.
pub fn ack_batch(store: &dyn Store, id: BatchId, now: Timestamp) -> Result<AckOutcome> {
    let now = to_store_precision(now);
    crate::store::write_within(store, crate::store::INTERACTIVE_DEADLINE, |txn| {
        let mut batch = txn.batch(id)?.ok_or_else(|| StoreError::NotFound {
            what: "batch",
            id: id.to_string(),
        })?;
        if batch.status == BatchStatus::Acked {
            return Ok(AckOutcome::AlreadyAcked);
        }
        // Reads a clerk changed while the batch was open (edited, held, rejected) keep that status:
        // their change becomes a correction in the next batch now that billing has the original.
        let mut reads = batch_reads(&*txn, &batch)?;
        reads.retain(|r| r.status == ReadStatus::Batched);
        txn.set_billing_state(&mut reads, ReadStatus::Exported, batch.id)?;
        batch.status = BatchStatus::Acked;
        batch.acked_at = Some(now);
        txn.update_batch(&batch)?;
        Ok(AckOutcome::Acked {
            reads: batch.read_ids.len(),
        })
    })
}
