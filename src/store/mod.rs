//! The durable store, behind a narrow interface.
//!
//! VEE, ingest, review and billing see only the [`Store`], [`ReadTxn`] and [`WriteTxn`]
//! traits, so a second engine (PostgreSQL, for deployments that outgrow one machine) can be
//! added without touching them. Today's engine is [`RedbStore`]; callers open a store with
//! [`open`] (whichever engine the configuration names) and write through [`write`], which
//! runs a transaction again when a server engine aborts it.
//!
//! # Contract every engine keeps
//! - A [`WriteTxn`] is all-or-nothing; [`WriteTxn::commit`] returns only once the transaction
//!   is durable (fsync'd). Nothing is acknowledged upstream before that.
//! - Read ids ([`ReadId`]) are stable and never reused.
//! - Every id the store hands out (reads, batches, outbox entries, quarantine entries, service
//!   orders) is higher than any committed before, also after a reopen. Ids need not be dense
//!   (a server engine's sequence skips what a dropped transaction took), and one handed out
//!   only in a dropped transaction may come again (nothing kept it).
//! - A [`ReadTxn`] is a snapshot: it sees everything committed before it began and nothing
//!   committed after (redb: its MVCC snapshot; PostgreSQL: REPEATABLE READ READ ONLY).
//! - A [`WriteTxn`] sees its own writes in every query. Whether it sees what other writers
//!   commit while it runs is the engine's (redb has one writer; PostgreSQL runs READ
//!   COMMITTED): what a rule depends on is locked (`lock_meters`, `lock_open_batch`,
//!   `audit_tail`) or checked at write (a stale copy is a [`StoreError::Conflict`]).
//! - Dropping a [`WriteTxn`] without committing leaves nothing of it.
//! - Time ranges `from`, `to` include `from` and exclude `to`; something not stored is `None`
//!   or an empty list, not an error (updates of it are [`StoreError::NotFound`]); lists come
//!   in the order each method documents.
//!
//! `tests/it/store/` is the conformance battery: every case runs against every engine.
//! - History per meter in time order, reads by status (review queue, billable reads) and
//!   "is there a read of this meter at this time" are index scans, not table scans.
//! - The schema version is recorded; a store of an older version is migrated when opened (in
//!   one transaction), one of a newer version is refused with a clear error.

pub mod area;
mod backup;
pub mod check;
mod guard;
mod migrate;
pub mod open;
pub mod postgres;
mod redb_engine;
pub mod retry;
pub mod rules;

pub use area::{
    BillingQueries, BillingWrites, CradleQueries, CradleWrites, DayWindow, GatewayQueries, GatewayWrites, HistoryQuery,
    IntervalQueries, IntervalWrites, MeterQueries, MeterWrites, QuarantineQueries, QuarantineWrites, ReadQueries,
    ReadWrites, ReviewQueries, ReviewWrites,
};
pub use area::{HeldTelegram, MAX_HELD, WmbusQueries, WmbusWrites};
pub use backup::{RestoreOutcome, restore};
pub use check::{CheckReport, Problem, check_file};
pub use open::{StoreTarget, open};
pub use redb_engine::{
    DEFAULT_CACHE_BYTES, IntervalListing, Listings, RedbStore, STORE_FILE, open_waiting, open_waiting_read_only,
    open_waiting_with_cache,
};
pub use retry::{Finish, INGEST_DEADLINE, INTERACTIVE_DEADLINE, Retryable, write, write_or_undo, write_within};
pub use rules::Rules;

/// Schema version this build reads and writes.
pub const SCHEMA_VERSION: u64 = 4;

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
    /// The database aborted the transaction (a serialisation failure or deadlock between
    /// meterd instances, or the connection was lost mid-transaction). Nothing of it was
    /// written; running it again from the start is safe ([`StoreError::is_retryable`]).
    #[error("store transaction aborted, nothing was written: {0}")]
    Retry(String),
    /// An update referred to something that is not stored.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// A store server (PostgreSQL) cannot be reached or refused us: `host` names the server(s)
    /// (`db1:5432, db2:5432`), `detail` the reason (refused password, missing database, ...).
    #[error("PostgreSQL store at {host}: {detail}")]
    Unavailable { host: String, detail: String },
}

impl StoreError {
    /// Whether running the whole transaction again from the start may succeed (nothing of the
    /// failed attempt was kept).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Retry(_) | StoreError::Unavailable { .. })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

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
    /// The quarantine retention write transactions apply from now on (`[quarantine]`; the
    /// daemon sets it at start and on reload).
    fn set_quarantine_limits(&self, limits: QuarantineLimits);
    /// Which store this is, for logs and messages: `redb /var/lib/meterd/meterd.redb`,
    /// `postgresql db1:5432/meterd` (never a password).
    fn describe(&self) -> String;
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
    fn set_quarantine_limits(&self, limits: QuarantineLimits) {
        (**self).set_quarantine_limits(limits)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// Queries, available in read and write transactions (a write transaction sees its own
/// writes): every area's queries together.
pub trait ReadTxn:
    MeterQueries
    + ReadQueries
    + BillingQueries
    + GatewayQueries
    + CradleQueries
    + ReviewQueries
    + QuarantineQueries
    + IntervalQueries
    + WmbusQueries
{
}

impl<T> ReadTxn for T where
    T: MeterQueries
        + ReadQueries
        + BillingQueries
        + GatewayQueries
        + CradleQueries
        + ReviewQueries
        + QuarantineQueries
        + IntervalQueries
        + WmbusQueries
        + ?Sized
{
}

/// Changes, all-or-nothing: every area's writes together. Callers change reads, batches, the
/// audit trail, watermarks and intervals through [`Rules`], which every write transaction has.
pub trait WriteTxn:
    ReadTxn
    + MeterWrites
    + ReadWrites
    + BillingWrites
    + GatewayWrites
    + CradleWrites
    + ReviewWrites
    + QuarantineWrites
    + IntervalWrites
    + WmbusWrites
{
    /// Make everything durable. Returns only after the data is on stable storage.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// Everything a caller of the store needs in scope (the area traits' methods are called on
/// `dyn ReadTxn` and `dyn WriteTxn`).
pub mod prelude {
    pub use super::area::{
        BillingQueries, BillingWrites, CradleQueries, CradleWrites, GatewayQueries, GatewayWrites, IntervalQueries,
        IntervalWrites, MeterQueries, MeterWrites, QuarantineQueries, QuarantineWrites, ReadQueries, ReadWrites,
        ReviewQueries, ReviewWrites, WmbusQueries, WmbusWrites,
    };
    pub use super::rules::Rules;
    pub use super::{ReadTxn, Store, WriteTxn};
}
