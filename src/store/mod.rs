//! The durable store, behind a narrow interface.
//!
//! VEE, ingest, review and billing see only the [`Store`], [`ReadTxn`] and [`WriteTxn`]
//! traits, so a second engine (PostgreSQL, for deployments that outgrow one machine) can be
//! added without touching them. Today's engine is [`RedbStore`].
//!
//! # Contract every engine keeps
//! - A [`WriteTxn`] is all-or-nothing; [`WriteTxn::commit`] returns only once the transaction
//!   is durable (fsync'd). Nothing is acknowledged upstream before that.
//! - Read ids ([`ReadId`]) are stable and never reused.
//! - History per meter in time order, reads by status (review queue, billable reads) and
//!   "is there a read of this meter at this time" are index scans, not table scans.
//! - The schema version is recorded; opening a store of another version is a clear error.

mod redb_engine;

use jiff::Timestamp;

use crate::model::billing::{ApiToken, BatchContents, Billed, BillingChange};
use crate::model::{Batch, BatchId, BatchStatus, Meter, QuarantineEntry, ReadId, ReadStatus, ReadSummary, StoredRead};

pub use redb_engine::{RedbStore, STORE_FILE};

/// Schema version this build reads and writes.
pub const SCHEMA_VERSION: u64 = 1;

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine failed (IO, corruption detected by the engine, ...).
    #[error("store engine error: {0}")]
    Engine(String),
    /// The store was written by another schema version.
    #[error(
        "store {path} has schema version {found}, this meterd supports version {supported}; \
         use the meterd release that wrote it or migrate the store"
    )]
    SchemaVersion { path: String, found: u64, supported: u64 },
    /// The file is a database but not a meterd store.
    #[error("{path} is not a meterd store: {detail}")]
    NotAStore { path: String, detail: String },
    /// A stored record does not decode (corruption or a bug).
    #[error("stored {what} does not decode: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// An update referred to something that is not stored.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One meter's history window for [`ReadTxn::meter_histories`].
#[derive(Debug, Clone, Copy)]
pub struct HistoryQuery<'a> {
    pub meter_id: &'a str,
    pub from: Timestamp,
    pub to: Timestamp,
}

/// A store engine: hands out transactions.
pub trait Store: Send + Sync {
    /// A consistent snapshot for reading; never blocks the writer.
    fn begin_read(&self) -> Result<Box<dyn ReadTxn + '_>>;
    /// The one writer. Dropping it without [`WriteTxn::commit`] rolls everything back.
    fn begin_write(&self) -> Result<Box<dyn WriteTxn + '_>>;
}

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn begin_read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        (**self).begin_read()
    }
    fn begin_write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        (**self).begin_write()
    }
}

/// Queries, available in read and write transactions (a write transaction sees its own writes).
pub trait ReadTxn {
    fn meter(&self, meter_id: &str) -> Result<Option<Meter>>;
    /// All meters, ordered by meter id.
    fn meters(&self) -> Result<Vec<Meter>>;
    /// Many meters at once (`None` for unknown ids), in the order asked.
    fn meters_by_id(&self, ids: &[&str]) -> Result<Vec<Option<Meter>>>;
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
    fn batch(&self, id: BatchId) -> Result<Option<Batch>>;
    /// The batch a billing client has pulled but not acked yet.
    fn open_batch(&self, client: &str) -> Result<Option<Batch>>;
    /// Quarantined input, oldest first.
    fn quarantined(&self) -> Result<Vec<(u64, QuarantineEntry)>>;
    /// When a de-duplication key of `namespace` was first seen (MQTT gateway ingest).
    fn seen(&self, namespace: &str, key: &[u8]) -> Result<Option<Timestamp>>;

    // --- billing (issue 7) ---
    /// Number of reads per status (an index scan; no read is decoded).
    fn count_reads_by_status(&self) -> Result<Vec<(ReadStatus, u64)>>;
    /// Batches, oldest first, optionally only those with `status`.
    fn batches(&self, status: Option<BatchStatus>) -> Result<Vec<Batch>>;
    /// What a batch carried when it was created.
    fn batch_contents(&self, id: BatchId) -> Result<Option<BatchContents>>;
    /// What billing last received for a read.
    fn billed(&self, read: ReadId) -> Result<Option<Billed>>;
    /// Billed reads that changed since, with the change note, by read id.
    fn billing_changes(&self) -> Result<Vec<(ReadId, BillingChange)>>;
    /// The change note of one read.
    fn billing_changes_of(&self, read: ReadId) -> Result<Option<BillingChange>>;
    /// Every API token (revoked ones too), by name.
    fn api_tokens(&self) -> Result<Vec<ApiToken>>;
}

/// Changes, all-or-nothing.
pub trait WriteTxn: ReadTxn {
    /// Insert or replace a meter.
    fn put_meter(&mut self, meter: &Meter) -> Result<()>;
    /// Store a new read; its `id` field is ignored and a fresh id is assigned and returned.
    fn insert_read(&mut self, read: &StoredRead) -> Result<ReadId>;
    /// Store many new reads, assigning each a fresh id (written into `reads` and returned in
    /// order); engines may do this faster than one by one.
    fn insert_reads(&mut self, reads: &mut [StoredRead]) -> Result<Vec<ReadId>> {
        reads
            .iter_mut()
            .map(|r| {
                r.id = self.insert_read(r)?;
                Ok(r.id)
            })
            .collect()
    }
    /// Replace a stored read (status, flags, value, batch), keeping the indexes right.
    fn update_read(&mut self, read: &StoredRead) -> Result<()>;
    /// Create a batch with a fresh id; it becomes the client's open batch.
    fn create_batch(&mut self, client: &str, read_ids: Vec<ReadId>, created_at: Timestamp) -> Result<Batch>;
    /// Replace a batch; an acked batch stops being its client's open batch.
    fn update_batch(&mut self, batch: &Batch) -> Result<()>;
    /// Keep undecodable input with the reason; returns its id.
    fn quarantine(&mut self, entry: &QuarantineEntry) -> Result<u64>;
    /// Record a de-duplication key; `true` when it was not seen before.
    fn mark_seen(&mut self, namespace: &str, key: &[u8], at: Timestamp) -> Result<bool>;
    /// Drop de-duplication keys of `namespace` first seen before `before` (window expiry).
    fn forget_seen_before(&mut self, namespace: &str, before: Timestamp) -> Result<u64>;
    // --- billing (issue 7) ---
    /// Replace many stored reads at once (engines may open their tables once).
    fn update_reads(&mut self, reads: &[StoredRead]) -> Result<()> {
        reads.iter().try_for_each(|r| self.update_read(r))
    }
    fn put_batch_contents(&mut self, id: BatchId, contents: &BatchContents) -> Result<()>;
    fn put_billed(&mut self, billed: &[(ReadId, Billed)]) -> Result<()>;
    /// Record that a billed read changed (`update_read` does this by itself when a billed
    /// read's value or time changes, without a reason; call this to give the reason).
    fn note_billing_change(&mut self, read: ReadId, change: &BillingChange) -> Result<()>;
    fn clear_billing_change(&mut self, read: ReadId) -> Result<()>;
    fn put_api_token(&mut self, token: &ApiToken) -> Result<()>;

    /// Make everything durable. Returns only after the data is on stable storage.
    fn commit(self: Box<Self>) -> Result<()>;
}
