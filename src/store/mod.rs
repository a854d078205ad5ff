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
//! - The schema version is recorded; a store of an older version is migrated when opened (in
//!   one transaction), one of a newer version is refused with a clear error.

mod backup;
pub mod check;
mod guard;
mod migrate;
pub mod postgres;
mod redb_engine;

use jiff::Timestamp;

use crate::model::billing::{ApiToken, BatchContents, Billed, BilledReadChange};
use crate::model::{
    AuditEntry, Batch, BatchId, BatchStatus, GatewayState, IntervalRead, Meter, MeterChange, OutboxEntry,
    QuarantineEntry, QuarantineSummary, QuarantineUsage, ReadId, ReadStatus, ReadSummary, Resolution, RouteLoad,
    RouteSkip, ServiceOrder, StoredQuarantine, StoredRead,
};

pub use backup::{RestoreOutcome, restore};
pub use check::{CheckReport, Problem, check_file};
pub use redb_engine::{DEFAULT_CACHE_BYTES, RedbStore, STORE_FILE, open_waiting, open_waiting_read_only};

/// Schema version this build reads and writes.
pub const SCHEMA_VERSION: u64 = 3;

/// How much quarantine the engine keeps (`[quarantine]`); applied as entries are added and by
/// [`WriteTxn::enforce_quarantine_retention`]. Entries over a limit are removed oldest first
/// and counted in the summary ([`ReadTxn::quarantine_summary`]), never dropped silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantineLimits {
    /// Stored bytes of all entries together.
    pub max_bytes: u64,
    /// Entries older than this are removed (`None`: no age limit).
    pub max_age: Option<jiff::SignedDuration>,
    /// Payloads up to this size are kept whole, larger ones by reference (head, size, digest).
    pub keep_whole_bytes: usize,
}

impl Default for QuarantineLimits {
    fn default() -> Self {
        QuarantineLimits {
            max_bytes: 64 << 20,
            max_age: Some(jiff::SignedDuration::from_hours(90 * 24)),
            keep_whole_bytes: crate::model::quarantine::KEEP_WHOLE_BYTES,
        }
    }
}

/// What to do about a damaged store (every damaged-store error ends with it).
pub const DAMAGED_HINT: &str = "run `meterd store check` to see what is damaged, and restore the latest good backup (`meterd store restore`, docs/operating.md \"Backups\")";

/// Store errors.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The engine failed (IO, corruption detected by the engine, ...).
    #[error("store engine error: {0}")]
    Engine(String),
    /// An optimistic-concurrency refusal: the caller's copy is stale, or a read is in another
    /// batch. Nothing was written; reading again and retrying is safe. (Its own variant so a
    /// caller can tell it from an I/O failure.)
    #[error("store conflict: {0}")]
    Conflict(String),
    /// The store was written by a schema version this build cannot migrate (a newer one).
    #[error(
        "store {path} has schema version {found}, this meterd supports version {supported} (and migrates \
         older ones); use the meterd release that wrote it, or a newer one"
    )]
    SchemaVersion { path: String, found: u64, supported: u64 },
    /// The file is a database but not a meterd store.
    #[error("{path} is not a meterd store: {detail}")]
    NotAStore { path: String, detail: String },
    /// A stored record does not decode (corruption or a bug).
    #[error("stored {what} does not decode: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// Another process has the store open (the daemon, or another command); redb allows one.
    /// Operations (issue 8): the CLI forwards the command to the daemon's control socket.
    #[error(
        "store {path} is in use by another process (it is open in another process: the daemon, or another command)"
    )]
    Locked { path: String },
    /// This process may not open the store (permissions); the daemon's user can.
    #[error("no access to store {path}: {detail}")]
    NoAccess { path: String, detail: String },
    /// The store file is damaged: the engine found it corrupt, or failed on it (a caught
    /// panic). Nothing was written; from then on the store answers only this error.
    #[error(
        "store {path} is damaged{}: {detail}; nothing was changed; {DAMAGED_HINT}",
        table.as_deref().map(|t| format!(" (table {t})")).unwrap_or_default()
    )]
    Damaged {
        path: String,
        table: Option<String>,
        detail: String,
    },
    /// A write on a store opened read-only (a command that only reads opens it so).
    #[error("store {path} is open read-only for this command; nothing was written")]
    ReadOnly { path: String },
    /// An update referred to something that is not stored.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// A store server (PostgreSQL) cannot be reached or refused us: `host` names the server(s)
    /// (`db1:5432, db2:5432`), `detail` the reason (refused password, missing database, ...).
    #[error("PostgreSQL store at {host}: {detail}")]
    Unavailable { host: String, detail: String },
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
    /// Checks every table and index of the store as it is now (a consistent snapshot), without
    /// changing anything (`meterd store check` through the daemon).
    fn check(&self) -> Result<CheckReport>;
    /// A consistent copy of the whole store, as the bytes of a store file that opens on its
    /// own (`meterd store backup`).
    fn backup(&self) -> Result<Vec<u8>>;
}

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn begin_read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        (**self).begin_read()
    }
    fn begin_write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        (**self).begin_write()
    }
    fn check(&self) -> Result<CheckReport> {
        (**self).check()
    }
    fn backup(&self) -> Result<Vec<u8>> {
        (**self).backup()
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
    /// Quarantined input, oldest first (a large payload's head only).
    fn quarantined(&self) -> Result<Vec<(u64, QuarantineEntry)>>;
    /// Quarantine entries as stored (size, digest, resolution), oldest first.
    fn quarantine_entries(&self) -> Result<Vec<(u64, StoredQuarantine)>>;
    fn quarantine_entry(&self, id: u64) -> Result<Option<StoredQuarantine>>;
    /// Entries the retention limit or a purge removed, per source and reason class.
    fn quarantine_summary(&self) -> Result<Vec<QuarantineSummary>>;
    /// Entries and stored bytes in the quarantine now (no scan).
    fn quarantine_usage(&self) -> Result<QuarantineUsage>;
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
    /// Every read changed after billing had it (corrections due and sent), by read id.
    fn billed_read_changes(&self) -> Result<Vec<BilledReadChange>>;
    /// The record of one read changed after billing had it.
    fn billed_read_change(&self, read: ReadId) -> Result<Option<BilledReadChange>>;
    /// Every API token (revoked ones too), by name.
    fn api_tokens(&self) -> Result<Vec<ApiToken>>;

    // --- MQTT gateways (src/ingest/mqtt) ---
    /// Every gateway heard from, by id.
    fn gateways(&self) -> Result<Vec<GatewayState>>;
    fn gateway(&self, gateway: &str) -> Result<Option<GatewayState>>;
    /// Interval reads of one meter with `from <= end < to`, oldest first.
    fn interval_reads(&self, meter_id: &str, from: Timestamp, to: Timestamp) -> Result<Vec<IntervalRead>>;
    fn count_interval_reads(&self) -> Result<u64>;
    /// The last tamper counters seen from a radio endpoint, and when.
    fn tamper_state(&self, endpoint: &str) -> Result<Option<(Timestamp, u64)>>;
    /// Up to `limit` outbox entries with id > `after`, oldest first.
    fn outbox(&self, after: u64, limit: usize) -> Result<Vec<(u64, OutboxEntry)>>;
    fn outbox_len(&self) -> Result<u64>;

    // --- handheld cradles (routes, loads, recorder watermarks) ---
    /// Route → device serial assignments, by route.
    fn route_assignments(&self) -> Result<Vec<(String, String)>>;
    /// Load history (every time a route went into a recorder), by route then load time.
    fn route_loads(&self) -> Result<Vec<RouteLoad>>;
    /// Highest recorder read sequence of `serial` committed in the store (an unbroken run:
    /// everything the recorder held up to it is stored or quarantined).
    fn cradle_watermark(&self, serial: &str) -> Result<Option<u32>>;
    /// Skipped meters (no reading, or a skip code) recorded on `route`, by meter.
    fn route_skips(&self, route: &str) -> Result<Vec<RouteSkip>>;

    // --- clerk review: audit trail, service orders, meter changes ---
    /// How many audit entries were appended (the chain's recorded length).
    fn audit_len(&self) -> Result<u64>;
    /// Every stored audit entry by key, oldest first; an entry that does not decode is kept
    /// as its error text (`audit verify` reports it rather than stopping).
    fn audit_scan(&self) -> Result<Vec<(u64, std::result::Result<AuditEntry, String>)>>;
    /// Audit entries of one read, oldest first.
    fn read_audit(&self, read_id: ReadId) -> Result<Vec<AuditEntry>>;
    /// Audit entries of one meter's reads, oldest first.
    fn meter_audit(&self, meter_id: &str) -> Result<Vec<AuditEntry>>;
    /// The read as it was before the change recorded in audit entry `seq` (for undo).
    fn undo_snapshot(&self, seq: u64) -> Result<Option<StoredRead>>;
    /// All service orders, by id.
    fn service_orders(&self) -> Result<Vec<ServiceOrder>>;
    fn service_order(&self, id: u64) -> Result<Option<ServiceOrder>>;
    /// A meter's recorded exchanges, oldest first.
    fn meter_changes(&self, meter_id: &str) -> Result<Vec<MeterChange>>;
}

/// [`WriteTxn::set_billing_state`]'s refusal of a read already in another batch (moving it
/// would lose which batch billed it).
pub(crate) fn not_in_another_batch(read: &StoredRead, batch: BatchId) -> Result<()> {
    match read.batch {
        Some(b) if b != batch => Err(StoreError::Conflict(format!(
            "read {} is in batch {b}, not {batch}",
            read.id
        ))),
        _ => Ok(()),
    }
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
    /// Replace a stored read (status, flags, value, batch), keeping the indexes right. A change
    /// of what billing has ([`BilledReadChange::changes_what_was_billed`]) opens a
    /// [`BilledReadChange`] unless one is due already: a billed read never changes silently.
    fn update_read(&mut self, read: &StoredRead) -> Result<()>;
    /// Create a batch with a fresh id; it becomes the client's open batch.
    fn create_batch(&mut self, client: &str, read_ids: Vec<ReadId>, created_at: Timestamp) -> Result<Batch>;
    /// Replace a batch; an acked batch stops being its client's open batch.
    fn update_batch(&mut self, batch: &Batch) -> Result<()>;
    /// Keep undecodable input with the reason; returns its id. Applies the engine's
    /// [`QuarantineLimits`]: the oldest entries over a limit are summarised and removed.
    fn quarantine(&mut self, entry: &QuarantineEntry) -> Result<u64>;
    /// Record what a retry made of an entry (in the transaction holding its reads). Refuses an
    /// entry resolved already ([`StoreError::Conflict`]) or not stored.
    fn resolve_quarantine(&mut self, id: u64, resolution: &Resolution) -> Result<()>;
    /// Remove the entries received before `before`, counting the unresolved ones in the
    /// summary; returns what was removed.
    fn purge_quarantine_before(&mut self, before: Timestamp) -> Result<QuarantineUsage>;
    /// Apply the [`QuarantineLimits`] as of `now` (at start, after a limit was lowered);
    /// returns the number of entries removed.
    fn enforce_quarantine_retention(&mut self, now: Timestamp) -> Result<u64>;
    /// Record a de-duplication key; `true` when it was not seen before.
    fn mark_seen(&mut self, namespace: &str, key: &[u8], at: Timestamp) -> Result<bool>;
    /// Drop de-duplication keys of `namespace` first seen before `before` (window expiry).
    fn forget_seen_before(&mut self, namespace: &str, before: Timestamp) -> Result<u64>;
    // --- billing (issue 7) ---
    /// Replace many stored reads at once (engines may open their tables once).
    fn update_reads(&mut self, reads: &[StoredRead]) -> Result<()> {
        reads.iter().try_for_each(|r| self.update_read(r))
    }
    /// Move reads (as stored, read in this transaction) to `status` in `batch`: batching
    /// (billable → `batched`) and ack (`batched` → `exported`), in `reads` and in the store.
    /// Only status and batch change, so what billing has does not. The bulk path of billing:
    /// engines may skip re-reading what the caller holds, and must refuse a read whose stored
    /// status is not the one it carries, or that is in another batch.
    fn set_billing_state(&mut self, reads: &mut [StoredRead], status: ReadStatus, batch: BatchId) -> Result<()> {
        for r in reads.iter_mut() {
            not_in_another_batch(r, batch)?;
            if self.read(r.id)?.map(|stored| stored.status) != Some(r.status) {
                return Err(StoreError::Conflict(format!(
                    "read {} changed since it was read; billing state not set",
                    r.id
                )));
            }
            r.status = status;
            r.batch = Some(batch);
        }
        self.update_reads(reads)
    }
    fn put_batch_contents(&mut self, id: BatchId, contents: &BatchContents) -> Result<()>;
    fn put_billed(&mut self, billed: &[(ReadId, Billed)]) -> Result<()>;
    /// Insert or replace the record of a read changed after billing had it (`update_read`
    /// opens one by itself when a billed read's value, time or rejection changes and none is
    /// due, without a reason; `billing::note_change` gives the reason).
    fn put_billed_read_change(&mut self, change: &BilledReadChange) -> Result<()>;
    fn remove_billed_read_change(&mut self, read: ReadId) -> Result<()>;
    fn put_api_token(&mut self, token: &ApiToken) -> Result<()>;

    // --- MQTT gateways (src/ingest/mqtt) ---
    fn put_gateway(&mut self, state: &GatewayState) -> Result<()>;
    /// Store an interval read unless one of the same meter already ends within ±60 s of it
    /// (the same interval heard again; gateway clocks and the 1/16 s offset jitter);
    /// `true` when stored.
    fn put_interval_read(&mut self, meter_id: &str, read: &IntervalRead) -> Result<bool>;
    fn set_tamper_state(&mut self, endpoint: &str, at: Timestamp, counters: u64) -> Result<()>;
    /// Append to the outbox; returns the entry's id (increasing).
    fn push_outbox(&mut self, entry: &OutboxEntry) -> Result<u64>;
    /// Remove an outbox entry (its PUBACK came); `true` when it was there.
    fn remove_outbox(&mut self, id: u64) -> Result<bool>;
    // --- handheld cradles ---
    /// Assign a route to a recorder (`None` removes the assignment).
    fn assign_route(&mut self, route: &str, serial: Option<&str>) -> Result<()>;
    /// Insert or replace a load history entry (keyed by route and load time).
    fn put_route_load(&mut self, load: &RouteLoad) -> Result<()>;
    /// Forget a load that never happened (reserved, then refused or cut off).
    fn remove_route_load(&mut self, load: &RouteLoad) -> Result<()>;
    /// Raise the committed watermark of a recorder (never lowers it).
    fn set_cradle_watermark(&mut self, serial: &str, seq: u32) -> Result<()>;
    /// Record a skipped meter (idempotent per recorder serial and sequence).
    fn put_route_skip(&mut self, skip: &RouteSkip) -> Result<()>;
    // --- clerk review: audit trail, service orders, meter changes ---
    /// Append an audit entry: the engine assigns `seq` (recorded length + 1), `prev_hash`
    /// (the hash of entry `seq − 1`) and `hash`, and returns the stored entry. `before` is the
    /// read as it was before the change (kept for undo).
    fn append_audit(&mut self, entry: AuditEntry, before: Option<&StoredRead>) -> Result<AuditEntry>;
    /// Insert (id 0: a fresh id is assigned) or replace a service order; returns its id.
    fn put_service_order(&mut self, order: &ServiceOrder) -> Result<u64>;
    fn put_meter_change(&mut self, change: &MeterChange) -> Result<()>;

    /// Make everything durable. Returns only after the data is on stable storage.
    fn commit(self: Box<Self>) -> Result<()>;
}
