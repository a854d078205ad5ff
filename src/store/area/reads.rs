//! Reads: the register reads themselves, their history per meter and their status index.

use jiff::Timestamp;

use crate::model::{BatchId, ReadId, ReadStatus, ReadSummary, StoredRead};
use crate::store::Result;

/// One meter's history window for [`ReadQueries::meter_histories`].
#[derive(Debug, Clone, Copy)]
pub struct HistoryQuery<'a> {
    pub meter_id: &'a str,
    pub from: Timestamp,
    pub to: Timestamp,
}

pub trait ReadQueries {
    fn read(&self, id: ReadId) -> Result<Option<StoredRead>>;
    /// History windows of many meters at once, for VEE. For each query: summaries of the
    /// meter's reads with `from <= read_at < to`, preceded by its latest read before `from`
    /// that counts as history ([`ReadSummary::is_history`]) if there is one; oldest first.
    fn meter_histories(&self, queries: &[HistoryQuery<'_>]) -> Result<Vec<Vec<ReadSummary>>>;
    /// Reads of one meter with `from <= read_at < to`, oldest first (ties by id).
    fn meter_reads(&self, meter_id: &str, from: Timestamp, to: Timestamp) -> Result<Vec<StoredRead>>;
    /// Up to `limit` reads of one meter strictly before `before`, newest first.
    fn meter_reads_before(&self, meter_id: &str, before: Timestamp, limit: usize) -> Result<Vec<StoredRead>>;
    /// Every read, by meter id then time.
    fn all_reads(&self) -> Result<Vec<StoredRead>>;
    /// Up to `limit` reads with this status, oldest id first.
    fn reads_with_status(&self, status: ReadStatus, limit: usize) -> Result<Vec<StoredRead>>;
    fn count_reads(&self) -> Result<u64>;
    /// Number of reads per status (an index scan; no read is decoded).
    fn count_reads_by_status(&self) -> Result<Vec<(ReadStatus, u64)>>;
}

pub trait ReadWrites: ReadQueries {
    /// Store many new reads, assigning each a fresh id (never reused; written into `reads` and
    /// returned in order).
    fn insert_reads(&mut self, reads: &mut [StoredRead]) -> Result<Vec<ReadId>>;
    /// Store a new read; its `id` field is ignored and a fresh id is assigned and returned.
    fn insert_read(&mut self, read: &StoredRead) -> Result<ReadId> {
        Ok(self.insert_reads(&mut [read.clone()])?[0])
    }
    /// Replace stored reads (status, flags, value, time, batch), keeping the indexes right;
    /// returns each read as it was before ([`crate::store::StoreError::NotFound`] for one that
    /// is not stored). Callers go through [`crate::store::Rules::update_reads`], which notes a
    /// change of what billing has.
    fn replace_reads(&mut self, reads: &[StoredRead]) -> Result<Vec<StoredRead>>;
    /// The bulk path of billing: move reads (as stored, read in this transaction) to `status`
    /// in `batch`, in `reads` and in the store. Only status and batch change. Must refuse with
    /// [`crate::store::StoreError::Conflict`] (changing nothing that is kept) a read whose
    /// stored status is not the one it carries: another writer changed it meanwhile.
    fn store_billing_state(&mut self, reads: &mut [StoredRead], status: ReadStatus, batch: BatchId) -> Result<()>;
}
