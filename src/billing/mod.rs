//! Validated reads handed to billing in batches, each read billed exactly once.
//!
//! A billing client asks for the next batch: while it has an open (un-acked) batch it gets
//! that same batch again; otherwise billable reads not in any batch are taken into a new one
//! (status `batched`). Ack marks the batch and its reads `exported`; acking again is
//! harmless. Both changes are durable before they are answered.

use jiff::Timestamp;

use crate::model::{Batch, BatchId, BatchStatus, ReadStatus, StoredRead, to_store_precision};
use crate::store::{Result, Store, StoreError};

/// The client name the CLI uses.
pub const DEFAULT_CLIENT: &str = "default";

/// Default most reads per batch.
pub const DEFAULT_MAX_READS: usize = 10_000;

/// A batch with its reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchWithReads {
    pub batch: Batch,
    pub reads: Vec<StoredRead>,
}

/// The client's open batch, or a new one of up to `max` billable reads (oldest read ids
/// first). `None` when there is no open batch and nothing to bill.
pub fn next_batch(store: &dyn Store, client: &str, max: usize, now: Timestamp) -> Result<Option<BatchWithReads>> {
    let now = to_store_precision(now);
    let mut txn = store.begin_write()?;
    if let Some(batch) = txn.open_batch(client)? {
        let reads = batch_reads(txn.as_ref(), &batch)?;
        return Ok(Some(BatchWithReads { batch, reads }));
    }
    let mut reads = Vec::new();
    for status in ReadStatus::BILLABLE {
        if reads.len() >= max {
            break;
        }
        reads.extend(txn.reads_with_status(status, max - reads.len())?);
    }
    if reads.is_empty() {
        return Ok(None);
    }
    reads.sort_by_key(|r| r.id);
    let batch = txn.create_batch(client, reads.iter().map(|r| r.id).collect(), now)?;
    for r in &mut reads {
        r.status = ReadStatus::Batched;
        r.batch = Some(batch.id);
        txn.update_read(r)?;
    }
    txn.commit()?;
    Ok(Some(BatchWithReads { batch, reads }))
}

fn batch_reads(txn: &dyn crate::store::ReadTxn, batch: &Batch) -> Result<Vec<StoredRead>> {
    batch
        .read_ids
        .iter()
        .map(|&id| txn.read(id)?.ok_or_else(|| StoreError::NotFound { what: "read", id: id.to_string() }))
        .collect()
}

/// The batch with its reads, if it exists.
pub fn get_batch(store: &dyn Store, id: BatchId) -> Result<Option<BatchWithReads>> {
    let txn = store.begin_read()?;
    match txn.batch(id)? {
        Some(batch) => Ok(Some(BatchWithReads { reads: batch_reads(txn.as_ref(), &batch)?, batch })),
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
    let mut txn = store.begin_write()?;
    let mut batch = txn.batch(id)?.ok_or_else(|| StoreError::NotFound { what: "batch", id: id.to_string() })?;
    if batch.status == BatchStatus::Acked {
        return Ok(AckOutcome::AlreadyAcked);
    }
    for &rid in &batch.read_ids {
        let mut r = txn.read(rid)?.ok_or_else(|| StoreError::NotFound { what: "read", id: rid.to_string() })?;
        r.status = ReadStatus::Exported;
        txn.update_read(&r)?;
    }
    batch.status = BatchStatus::Acked;
    batch.acked_at = Some(now);
    txn.update_batch(&batch)?;
    txn.commit()?;
    Ok(AckOutcome::Acked { reads: batch.read_ids.len() })
}
