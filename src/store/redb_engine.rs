//! The redb engine: one file, copy-on-write B-trees, fsync on every commit (redb's default
//! `Durability::Immediate`), one writer and any number of snapshot readers.
//!
//! # Tables (schema version 4; `migrate` brings version 1, 2 and 3 stores here)
//! | table | key | value | why |
//! |---|---|---|---|
//! | `meta` | name | u64 | schema version, id counters |
//! | `meters` | meter id | postcard [`Meter`] | |
//! | `reads` | read id | postcard [`StoredRead`] | the reads themselves |
//! | `meter_time` | (meter id, read_at µs, read id) | read summary | history per meter in time order; same-time lookup |
//! | `status_index` | (status code, read id) | () | review queue, billable reads |
//! | `batches` | batch id | postcard [`Batch`] | |
//! | `open_batches` | client | batch id | "re-asking before ack returns the same batch" |
//! | `quarantine` | id | postcard [`StoredQuarantine`] | undecodable input (a large payload by reference), what a retry made of it |
//! | `quarantine_summary` | (source class, reason class) | (count, bytes, oldest µs, newest µs) | entries the retention limit or a purge removed |
//! | `seen` | (namespace, key bytes) | first seen µs | gateway de-duplication |
//! | `gw_gateways` | gateway id | postcard [`GatewayState`] | gateway health |
//! | `gw_intervals` | (meter id, end µs) | (interval number, usage) | IDM/NetIDM interval reads |
//! | `gw_tamper` | endpoint key | (read_at µs, counters) | tamper raised on change only |
//! | `gw_outbox` | id | postcard [`OutboxEntry`] | published back, removed on PUBACK |
//! | `route_assign` | route | device serial | which recorder reads a route |
//! | `route_loads` | (route, loaded µs) | postcard [`RouteLoad`] | load history; open entries = loaded now |
//! | `cradle_watermark` | device serial | u32 | highest committed recorder read sequence |
//! | `route_skips` | (route, meter, serial, seq) | postcard [`RouteSkip`] | meters skipped on a route |
//! | `batch_contents` | batch id | postcard [`BatchContents`] | the batch as handed out: re-asking returns the same bytes |
//! | `billed` | read id | postcard [`Billed`] | what billing last got per read, to detect edits after export |
//! | `billed_read_changes` | read id | postcard [`BilledReadChange`] | reads changed after billing had them: corrections due and sent, what billing had, the clerk's edit review shows |
//! | `api_tokens` | client name | postcard [`ApiToken`] | billing API tokens (hashes only) |
//!
//! Interval data: `iv_*` tables, see `redb_engine/intervals.rs`.
//!
//!
//! Clerk review:
//! | table | key | value | why |
//! |---|---|---|---|
//! | `audit` | seq | postcard [`AuditEntry`] | append-only, hash-chained trail of every change to a read |
//! | `audit_by_read` | (read id, seq) | () | a read's history and revision |
//! | `audit_by_meter` | (meter id, seq) | () | `audit show --meter` |
//! | `undo_snapshots` | seq | postcard [`StoredRead`] | the read before the change, for undo |
//! | `service_orders` | id | postcard [`ServiceOrder`] | re-read orders |
//! | `meter_changes` | (meter id, at µs) | postcard [`MeterChange`] | meter exchanges |

use std::path::{Path, PathBuf};

/// Opens a table for reading in a query of the tables added after version 1 (intervals, wM-Bus
/// layouts): a store opened read-only that predates the table has none, which answers the
/// query's default (nothing stored). Defined before the modules that use it.
macro_rules! table {
    ($txn:expr, $def:expr) => {
        match $txn.open_table(noted($def)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Default::default()),
            Err(e) => return Err(engine(e)),
        }
    };
}

mod intervals;
mod wmbus;
pub use intervals::IntervalListing;
pub(super) use intervals::{IV_BATCH_CONTENTS, IV_BATCHES, IV_CHANNELS, IV_DAYS, IV_OPEN_BATCHES, IV_STATUS};
pub(super) use wmbus::{WMBUS_HELD, WMBUS_LAYOUTS};

use jiff::Timestamp;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::HistoryQuery;
use super::check::CheckReport;
use super::guard::{Guarded, Health, catch};
use super::prelude::*;
use super::{QuarantineLimits, Result, SCHEMA_VERSION, StoreError};
use crate::model::billing::{ApiToken, BatchContents, Billed, BilledReadChange};
use crate::model::{
    AuditEntry, Batch, BatchId, BatchStatus, GatewayState, HASH_LEN, IntervalRead, Meter, MeterChange, OutboxEntry,
    Quantity, QuarantineEntry, QuarantineSummary, QuarantineUsage, ReadId, ReadStatus, ReadSummary, Resolution,
    RouteLoad, RouteSkip, ServiceOrder, StoredQuarantine, StoredRead,
};

pub(super) const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
pub(super) const METERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meters");
pub(super) const READS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("reads");
/// Value: the read's [`ReadSummary`] (value µ-units, consumption µ-units, status code,
/// excluded-from-history flag), so VEE history is one index scan without decoding whole reads.
pub(super) const METER_TIME: TableDefinition<'_, (&str, i64, u64), Summary> = TableDefinition::new("meter_time");

pub(super) type Summary = (i64, Option<i64>, u8, bool);

pub(super) fn summary_value(r: &StoredRead) -> Summary {
    let s = r.summary();
    (
        s.value.micros(),
        s.consumption.map(Quantity::micros),
        s.status.code(),
        s.excluded,
    )
}

fn summary_of(key: (&str, i64, u64), v: Summary) -> Result<ReadSummary> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "meter_time index",
        detail,
    };
    Ok(ReadSummary {
        id: key.2,
        read_at: Timestamp::from_microsecond(key.1).map_err(|e| corrupt(e.to_string()))?,
        value: Quantity::from_micros(v.0),
        consumption: v.1.map(Quantity::from_micros),
        status: ReadStatus::from_code(v.2).ok_or_else(|| corrupt(format!("status code {}", v.2)))?,
        excluded: v.3,
    })
}
pub(super) const STATUS_INDEX: TableDefinition<'_, (u8, u64), ()> = TableDefinition::new("status_index");
pub(super) const BATCHES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("batches");
pub(super) const OPEN_BATCHES: TableDefinition<'_, &str, u64> = TableDefinition::new("open_batches");
pub(super) const QUARANTINE: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("quarantine");
/// Value: (entries, payload bytes as received, oldest µs, newest µs).
pub(super) const QUARANTINE_SUMMARY: TableDefinition<'_, (&str, &str), (u64, u64, i64, i64)> =
    TableDefinition::new("quarantine_summary");
/// Stored bytes of the `quarantine` values, kept as entries come and go (no scan to check
/// the size limit).
pub(super) const K_QUARANTINE_BYTES: &str = "quarantine_bytes";
pub(super) const SEEN: TableDefinition<'_, (&str, &[u8]), i64> = TableDefinition::new("seen");
/// The same keys by (namespace, first seen, key): window expiry takes the oldest off the front
/// instead of scanning every key (a day of gateway traffic is tens of millions).
pub(super) const SEEN_BY_TIME: TableDefinition<'_, (&str, i64, &[u8]), ()> = TableDefinition::new("seen_by_time");
// --- billing (issue 7) ---
pub(super) const BATCH_CONTENTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("batch_contents");
pub(super) const BILLED: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("billed");
pub(super) const BILLED_READ_CHANGES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("billed_read_changes");
pub(super) const API_TOKENS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("api_tokens");

// --- MQTT gateways (src/ingest/mqtt) ---
pub(super) const GW_GATEWAYS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("gw_gateways");
pub(super) const GW_INTERVALS: TableDefinition<'_, (&str, i64), (u8, u64)> = TableDefinition::new("gw_intervals");
pub(super) const GW_TAMPER: TableDefinition<'_, &str, (i64, u64)> = TableDefinition::new("gw_tamper");
pub(super) const GW_OUTBOX: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("gw_outbox");
pub(super) const K_NEXT_OUTBOX: &str = "next_outbox_id";
// --- handheld cradles ---
pub(super) const ROUTE_ASSIGN: TableDefinition<'_, &str, &str> = TableDefinition::new("route_assign");
pub(super) const ROUTE_LOADS: TableDefinition<'_, (&str, i64), &[u8]> = TableDefinition::new("route_loads");
pub(super) const CRADLE_WATERMARK: TableDefinition<'_, &str, u32> = TableDefinition::new("cradle_watermark");
pub(super) const ROUTE_SKIPS: TableDefinition<'_, (&str, &str, &str, u32), &[u8]> = TableDefinition::new("route_skips");

// --- clerk review ---
/// The audit trail (public so tamper tests can open it with redb directly).
pub const AUDIT: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("audit");
pub(super) const AUDIT_BY_READ: TableDefinition<'_, (u64, u64), ()> = TableDefinition::new("audit_by_read");
pub(super) const AUDIT_BY_METER: TableDefinition<'_, (&str, u64), ()> = TableDefinition::new("audit_by_meter");
pub(super) const UNDO_SNAPSHOTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("undo_snapshots");
pub(super) const SERVICE_ORDERS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("service_orders");
pub(super) const METER_CHANGES: TableDefinition<'_, (&str, i64), &[u8]> = TableDefinition::new("meter_changes");
pub(super) const K_AUDIT_LEN: &str = "audit_len";
pub(super) const K_NEXT_ORDER: &str = "next_service_order_id";

pub(super) const K_SCHEMA: &str = "schema_version";
pub(super) const K_NEXT_READ: &str = "next_read_id";
pub(super) const K_NEXT_BATCH: &str = "next_batch_id";
pub(super) const K_NEXT_QUARANTINE: &str = "next_quarantine_id";

/// Page cache of a store opened without a configured size. redb's own default (1 GiB) would
/// let a long-running daemon's memory grow with the store; this bounds it.
pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;

/// File name of the store inside the data directory.
pub const STORE_FILE: &str = "meterd.redb";

pub(super) fn engine(e: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(e.to_string())
}

pub(super) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(v).map_err(engine)
}

pub(super) fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

/// Builds the time index of de-duplication keys for a store written before it existed (once:
/// afterwards every key is in both tables).
fn index_seen_by_time(txn: &redb::WriteTransaction) -> Result<()> {
    let seen = txn.open_table(noted(SEEN)).map_err(engine)?;
    let mut by_time = txn.open_table(noted(SEEN_BY_TIME)).map_err(engine)?;
    if by_time.len().map_err(engine)? > 0 || seen.len().map_err(engine)? == 0 {
        return Ok(());
    }
    for e in seen.iter().map_err(engine)? {
        let (k, v) = e.map_err(engine)?;
        let (ns, key) = k.value();
        by_time.insert((ns, v.value(), key), ()).map_err(engine)?;
    }
    Ok(())
}

/// Records the table for a damaged-store error ([`super::guard`]), then hands it on.
fn noted<K: redb::Key + 'static, V: redb::Value + 'static>(
    d: TableDefinition<'static, K, V>,
) -> TableDefinition<'static, K, V> {
    super::guard::note_table(d.name());
    d
}

/// Records the stored bytes of the quarantine when they are not recorded yet (a new or just
/// migrated store; afterwards every change keeps the total).
fn count_quarantine_bytes(txn: &redb::WriteTransaction) -> Result<()> {
    let mut meta = txn.open_table(META).map_err(engine)?;
    if meta.get(K_QUARANTINE_BYTES).map_err(engine)?.is_some() {
        return Ok(());
    }
    let mut total = 0u64;
    for e in txn.open_table(QUARANTINE).map_err(engine)?.iter().map_err(engine)? {
        total += e.map_err(engine)?.1.value().len() as u64;
    }
    meta.insert(K_QUARANTINE_BYTES, total).map_err(engine)?;
    Ok(())
}

/// First pause of [`open_waiting`]: another command holds the store for milliseconds.
const WAIT_FIRST: std::time::Duration = std::time::Duration::from_millis(10);
/// Longest pause of [`open_waiting`]: a longer holder is not polled hard, and a store freed
/// meanwhile is noticed soon.
const WAIT_MAX: std::time::Duration = std::time::Duration::from_millis(100);

/// [`RedbStore::open_dir`], waiting up to `wait` while another process holds the store (redb
/// lets one process open it at a time; CLI commands and review screens open it for a moment
/// each). Retries with pauses doubling from 10 ms to 100 ms; then the last error.
pub fn open_waiting(data_dir: &Path, wait: std::time::Duration) -> Result<RedbStore> {
    waiting(wait, || RedbStore::open_dir(data_dir))
}

/// [`RedbStore::open_dir_with_cache`], waiting like [`open_waiting`].
pub fn open_waiting_with_cache(data_dir: &Path, cache_bytes: usize, wait: std::time::Duration) -> Result<RedbStore> {
    waiting(wait, || RedbStore::open_dir_with_cache(data_dir, cache_bytes))
}

/// [`RedbStore::open_dir_read_only`], waiting like [`open_waiting`].
pub fn open_waiting_read_only(data_dir: &Path, wait: std::time::Duration) -> Result<RedbStore> {
    waiting(wait, || RedbStore::open_dir_read_only(data_dir))
}

fn waiting(wait: std::time::Duration, open: impl Fn() -> Result<RedbStore>) -> Result<RedbStore> {
    let started = std::time::Instant::now();
    let mut pause = WAIT_FIRST;
    loop {
        match open() {
            Err(StoreError::Locked { .. }) if started.elapsed() < wait => {
                std::thread::sleep(pause.min(wait.saturating_sub(started.elapsed())));
                pause = (pause * 2).min(WAIT_MAX);
            }
            r => return r,
        }
    }
}

/// The first bytes of every redb file (redb's `MAGICNUMBER`, src/tree_store/page_store/header.rs).
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// What is at the store's path before anything opens it.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// Nothing: the one case where a new store is created.
    Missing,
    /// A redb file (whether it is a meterd store, and intact, is checked next).
    Redb,
}

/// Looks at the file without opening it as a database: an empty file or one that is not a
/// redb file is refused, never initialised over (redb's `create` would initialise an empty
/// file as a new database, and meterd would silently start over with an empty store).
fn preflight(path: &Path) -> Result<Found> {
    use std::io::Read as _;
    let shown = path.display().to_string();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(StoreError::NoAccess {
                path: shown,
                detail: e.to_string(),
            });
        }
        Err(e) => return Err(StoreError::Engine(format!("cannot open store {shown}: {e}"))),
    };
    let mut head = Vec::with_capacity(REDB_MAGIC.len());
    file.take(REDB_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(|e| StoreError::Engine(format!("cannot read store {shown}: {e}")))?;
    if head.is_empty() {
        return Err(StoreError::NotAStore {
            path: shown,
            detail: "the file is empty (0 bytes); meterd creates a store only where no file exists. If no store \
                     was ever kept there, remove the empty file; otherwise restore a backup (`meterd store restore`)"
                .into(),
        });
    }
    if head != REDB_MAGIC {
        return Err(StoreError::NotAStore {
            path: shown,
            detail: "it is not a redb database file; refusing to open or overwrite it".into(),
        });
    }
    Ok(Found::Redb)
}

/// redb's open errors in the store's words.
fn open_error(shown: &str, e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked { path: shown.to_owned() },
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            StoreError::NoAccess {
                path: shown.to_owned(),
                detail: io.to_string(),
            }
        }
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(m)) => StoreError::Damaged {
            path: shown.to_owned(),
            table: None,
            detail: format!("the engine found it corrupt ({m})"),
        },
        e => StoreError::Engine(format!("cannot open store {shown}: {e}")),
    }
}

/// The engine's handle: read-write (the daemon, commands that write) or read-only (commands
/// that only read: they never write the file, so they cannot make a damaged store worse).
enum Db {
    Write(Database),
    Read(redb::ReadOnlyDatabase),
}

impl Db {
    fn begin_read(&self) -> Result<redb::ReadTransaction> {
        match self {
            Db::Write(d) => d.begin_read(),
            Db::Read(d) => d.begin_read(),
        }
        .map_err(engine)
    }
}

/// The redb store.
pub struct RedbStore {
    /// `None` only while dropping.
    db: Option<Db>,
    path: PathBuf,
    health: Health,
    /// Applied by every write transaction's `quarantine` (the daemon sets `[quarantine]`).
    quarantine_limits: std::sync::Mutex<QuarantineLimits>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .field("read_only", &matches!(self.db, Some(Db::Read(_))))
            .finish()
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        let Some(db) = self.db.take() else { return };
        if self.health.damaged().is_some() {
            // Closing writes to the file (the clean-shutdown record); a damaged file is left as
            // it was found. The lock goes with the process.
            std::mem::forget(db);
        } else if let Err(panic) = catch(move || drop(db)) {
            tracing::error!(store = %self.path.display(), "the store engine failed closing the store ({panic})");
        }
    }
}

/// Why a read-only open could not serve, when the store is fine but must be written first.
enum NeedsWrite {
    /// No file yet: it is created.
    Missing,
    /// Not shut down cleanly (a crash): redb's recovery writes.
    Recovery,
    /// An older schema: the migration writes.
    Migration,
}

impl RedbStore {
    /// Open the store in `data_dir` (creating the directory and the store when missing), with
    /// the default page cache.
    pub fn open_dir(data_dir: &Path) -> Result<Self> {
        Self::open_dir_with_cache(data_dir, DEFAULT_CACHE_BYTES)
    }

    /// [`Self::open_dir`] with a page cache of at most `cache_bytes` (the daemon's memory bound).
    pub fn open_dir_with_cache(data_dir: &Path, cache_bytes: usize) -> Result<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Engine(format!("cannot create data directory {}: {e}", data_dir.display())))?;
        Self::open_with_cache(&data_dir.join(STORE_FILE), cache_bytes)
    }

    /// The store in `data_dir` for a command that only reads: opened read-only, so the file is
    /// not written. A store that must be written before it can be read (none yet, not shut
    /// down cleanly, an older schema) is opened read-write instead.
    pub fn open_dir_read_only(data_dir: &Path) -> Result<Self> {
        match Self::try_read_only(&data_dir.join(STORE_FILE), DEFAULT_CACHE_BYTES)? {
            Ok(store) => Ok(store),
            Err(_) => Self::open_dir(data_dir),
        }
    }

    /// Open the store file at `path` read-only; see [`Self::open_dir_read_only`].
    pub fn open_read_only(path: &Path) -> Result<Self> {
        match Self::try_read_only(path, DEFAULT_CACHE_BYTES)? {
            Ok(store) => Ok(store),
            Err(_) => Self::open(path),
        }
    }

    /// Open the store file at `path` read-only and never write it: refused (an error) when it
    /// would have to be written first (a backup being checked before a restore).
    pub fn open_snapshot(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        match Self::try_read_only(path, DEFAULT_CACHE_BYTES)? {
            Ok(store) => Ok(store),
            Err(NeedsWrite::Missing) => Err(StoreError::NotFound {
                what: "store",
                id: shown,
            }),
            Err(NeedsWrite::Recovery) => Err(StoreError::Engine(format!(
                "{shown} was not closed cleanly; open it with meterd once (it recovers) before using it"
            ))),
            Err(NeedsWrite::Migration) => Err(StoreError::Engine(format!(
                "{shown} has an older schema; open it with meterd once (it migrates) before using it"
            ))),
        }
    }

    /// Open (or create) the store file at `path` and check its schema version.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    fn try_read_only(path: &Path, cache_bytes: usize) -> Result<std::result::Result<Self, NeedsWrite>> {
        let shown = path.display().to_string();
        if preflight(path)? == Found::Missing {
            return Ok(Err(NeedsWrite::Missing));
        }
        let health = Health::new(shown.clone());
        let db = match catch(|| Database::builder().set_cache_size(cache_bytes).open_read_only(path)) {
            Err(panic) => return Err(health.damage(format!("the engine failed opening it ({panic})"))),
            Ok(Err(redb::DatabaseError::RepairAborted)) => return Ok(Err(NeedsWrite::Recovery)),
            Ok(Err(e)) => return Err(open_error(&shown, e)),
            Ok(Ok(db)) => db,
        };
        let store = RedbStore {
            db: Some(Db::Read(db)),
            path: path.to_owned(),
            health,
            quarantine_limits: std::sync::Mutex::new(QuarantineLimits::default()),
        };
        let version = store.health.run(|| {
            let txn = store.db().begin_read()?;
            let has_meta = txn.list_tables().map_err(engine)?.any(|t| t.name() == META.name());
            if !has_meta {
                return Ok(None);
            }
            let meta = txn.open_table(noted(META)).map_err(engine)?;
            Ok(meta.get(K_SCHEMA).map_err(engine)?.map(|v| v.value()))
        })?;
        match version {
            Some(SCHEMA_VERSION) => Ok(Ok(store)),
            Some(found) if super::migrate::migrates_from(found) => Ok(Err(NeedsWrite::Migration)),
            Some(found) => Err(StoreError::SchemaVersion {
                path: shown,
                found,
                supported: SCHEMA_VERSION,
            }),
            None => Err(StoreError::NotAStore {
                path: shown,
                detail: "a redb database without meterd's schema table; refusing to open or overwrite it".into(),
            }),
        }
    }

    fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self> {
        let shown = path.display().to_string();
        // Look before writing: a file that is not a meterd store, or one the engine fails on,
        // is refused here without a byte written.
        let fresh = match Self::try_read_only(path, cache_bytes)? {
            Ok(store) => {
                drop(store);
                false
            }
            Err(NeedsWrite::Missing) => true,
            Err(NeedsWrite::Recovery | NeedsWrite::Migration) => false,
        };
        let health = Health::new(shown.clone());
        let mut builder = Database::builder();
        builder.set_cache_size(cache_bytes);
        // An existing file is verified (every page checksum) as it opens: damage is reported as
        // an error instead of meeting a panic later (redb: `set_check_integrity_on_open`).
        builder.set_check_integrity_on_open(!fresh);
        let db = match catch(|| {
            if fresh {
                builder.create(path)
            } else {
                builder.open(path)
            }
        }) {
            Err(panic) => return Err(health.damage(format!("the engine failed opening it ({panic})"))),
            Ok(Err(e)) => return Err(open_error(&shown, e)),
            Ok(Ok(db)) => db,
        };
        let store = RedbStore {
            db: Some(Db::Write(db)),
            path: path.to_owned(),
            health,
            quarantine_limits: std::sync::Mutex::new(QuarantineLimits::default()),
        };
        store.health.run(|| store.prepare(&shown))?;
        Ok(store)
    }

    fn db(&self) -> &Db {
        self.db.as_ref().expect("open until dropped")
    }

    /// Records the schema of a new store, migrates an older one, and creates every table so
    /// read transactions never meet a missing one.
    fn prepare(&self, shown: &str) -> Result<()> {
        let Db::Write(db) = self.db() else {
            return Err(StoreError::ReadOnly { path: shown.into() });
        };
        let shown = shown.to_owned();
        let txn = db.begin_write().map_err(engine)?;
        {
            let mut meta = txn.open_table(noted(META)).map_err(engine)?;
            let version = meta.get(K_SCHEMA).map_err(engine)?.map(|v| v.value());
            match version {
                Some(SCHEMA_VERSION) => {}
                Some(found) if super::migrate::migrates_from(found) => {
                    super::migrate::migrate(&txn, found, &shown)?;
                    meta.insert(K_SCHEMA, SCHEMA_VERSION).map_err(engine)?;
                }
                Some(found) => {
                    return Err(StoreError::SchemaVersion {
                        path: shown,
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                None => {
                    let others = txn
                        .list_tables()
                        .map_err(engine)?
                        .filter(|t| t.name() != "meta")
                        .count();
                    if others > 0 {
                        return Err(StoreError::NotAStore {
                            path: shown,
                            detail: "no schema version recorded".into(),
                        });
                    }
                    meta.insert(K_SCHEMA, SCHEMA_VERSION).map_err(engine)?;
                    for k in [K_NEXT_READ, K_NEXT_BATCH, K_NEXT_QUARANTINE] {
                        meta.insert(k, 1).map_err(engine)?;
                    }
                }
            }
        }
        // Create every table so read transactions never meet a missing one.
        txn.open_table(noted(METERS)).map_err(engine)?;
        txn.open_table(noted(READS)).map_err(engine)?;
        txn.open_table(noted(METER_TIME)).map_err(engine)?;
        txn.open_table(noted(STATUS_INDEX)).map_err(engine)?;
        txn.open_table(noted(BATCHES)).map_err(engine)?;
        txn.open_table(noted(OPEN_BATCHES)).map_err(engine)?;
        txn.open_table(noted(QUARANTINE)).map_err(engine)?;
        txn.open_table(noted(QUARANTINE_SUMMARY)).map_err(engine)?;
        count_quarantine_bytes(&txn)?;
        txn.open_table(noted(SEEN)).map_err(engine)?;
        index_seen_by_time(&txn)?;
        txn.open_table(noted(BATCH_CONTENTS)).map_err(engine)?;
        txn.open_table(noted(BILLED)).map_err(engine)?;
        txn.open_table(noted(BILLED_READ_CHANGES)).map_err(engine)?;
        txn.open_table(noted(API_TOKENS)).map_err(engine)?;
        txn.open_table(noted(GW_GATEWAYS)).map_err(engine)?;
        txn.open_table(noted(GW_INTERVALS)).map_err(engine)?;
        txn.open_table(noted(GW_TAMPER)).map_err(engine)?;
        txn.open_table(noted(GW_OUTBOX)).map_err(engine)?;
        txn.open_table(noted(ROUTE_ASSIGN)).map_err(engine)?;
        txn.open_table(noted(ROUTE_LOADS)).map_err(engine)?;
        txn.open_table(noted(CRADLE_WATERMARK)).map_err(engine)?;
        txn.open_table(noted(ROUTE_SKIPS)).map_err(engine)?;
        txn.open_table(noted(AUDIT)).map_err(engine)?;
        txn.open_table(noted(AUDIT_BY_READ)).map_err(engine)?;
        txn.open_table(noted(AUDIT_BY_METER)).map_err(engine)?;
        txn.open_table(noted(UNDO_SNAPSHOTS)).map_err(engine)?;
        txn.open_table(noted(SERVICE_ORDERS)).map_err(engine)?;
        txn.open_table(noted(METER_CHANGES)).map_err(engine)?;
        intervals::create_tables(&txn)?;
        wmbus::create_tables(&txn)?;
        txn.commit().map_err(engine)?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The quarantine retention write transactions apply from now on.
    pub fn set_quarantine_limits(&self, limits: QuarantineLimits) {
        *self.quarantine_limits.lock().unwrap_or_else(|p| p.into_inner()) = limits;
    }

    pub fn quarantine_limits(&self) -> QuarantineLimits {
        *self.quarantine_limits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Overwrite the recorded schema version (for migration tooling and tests of the check).
    pub fn set_schema_version(path: &Path, version: u64) -> Result<()> {
        let db = Database::create(path).map_err(engine)?;
        let txn = db.begin_write().map_err(engine)?;
        txn.open_table(noted(META))
            .map_err(engine)?
            .insert(K_SCHEMA, version)
            .map_err(engine)?;
        txn.commit().map_err(engine)
    }
}

impl Store for RedbStore {
    fn begin_read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        let txn = self.health.run(|| self.db().begin_read())?;
        Ok(Box::new(Guarded::new(RedbRead { txn }, &self.health)))
    }

    fn begin_write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        let Db::Write(db) = self.db() else {
            return Err(StoreError::ReadOnly {
                path: self.path.display().to_string(),
            });
        };
        // Durability stays at redb's default (Immediate): commit fsyncs before returning.
        let txn = self.health.run(|| db.begin_write().map_err(engine))?;
        let write = RedbWrite {
            txn,
            limits: self.quarantine_limits(),
            quarantine_bytes: std::cell::Cell::new(None),
            quarantine_oldest: None,
        };
        Ok(Box::new(Guarded::new(write, &self.health)))
    }

    fn check(&self) -> Result<CheckReport> {
        // Also on a store already found damaged: the check only reads, every table behind its
        // own catch, and says what it found.
        let txn = match catch(|| self.db().begin_read()) {
            Ok(txn) => txn?,
            Err(panic) => return Err(self.health.damage(format!("the engine failed on it ({panic})"))),
        };
        Ok(super::check::check_snapshot(&self.path, &txn))
    }

    fn backup(&self) -> Result<Vec<u8>> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        self.health.run(|| {
            let txn = self.db().begin_read()?;
            super::backup::copy_to_bytes(&txn, dir)
        })
    }
    fn set_quarantine_limits(&self, limits: QuarantineLimits) {
        RedbStore::set_quarantine_limits(self, limits)
    }

    fn describe(&self) -> String {
        format!("redb {}", self.path.display())
    }
}

struct RedbRead {
    txn: redb::ReadTransaction,
}

impl RedbRead {
    fn quarantine_bytes(&self) -> Result<u64> {
        stored_quarantine_bytes(&self.txn.open_table(META).map_err(engine)?)
    }
}

fn stored_quarantine_bytes(meta: &impl ReadableTable<&'static str, u64>) -> Result<u64> {
    Ok(meta.get(K_QUARANTINE_BYTES).map_err(engine)?.map_or(0, |v| v.value()))
}

struct RedbWrite {
    txn: redb::WriteTransaction,
    limits: QuarantineLimits,
    /// The quarantine's stored bytes as this transaction changed them (written to `meta` at
    /// commit: one write per transaction, not one per entry).
    quarantine_bytes: std::cell::Cell<Option<u64>>,
    /// When the oldest entry was received, once looked up (the age check then needs no read
    /// until that entry is removed).
    quarantine_oldest: Option<Timestamp>,
}

fn us(t: Timestamp) -> i64 {
    t.as_microsecond()
}

fn summary_time(micros: i64) -> Result<Timestamp> {
    Timestamp::from_microsecond(micros).map_err(|e| StoreError::Corrupt {
        what: "quarantine summary",
        detail: e.to_string(),
    })
}

/// Counts a removed entry in its summary row (an entry a retry resolved is not counted: it is
/// not lost, it became reads). An entry that does not decode counts as such.
fn summarise(
    summary: &mut redb::Table<'_, (&'static str, &'static str), (u64, u64, i64, i64)>,
    stored: Option<&StoredQuarantine>,
    stored_len: u64,
) -> Result<()> {
    let (key, size, at) = match stored {
        Some(q) if q.resolution.is_some() => return Ok(()),
        Some(q) => (q.summary_key(), q.size, us(q.entry.received_at)),
        None => (
            ("unknown".to_owned(), "stored entry does not decode".to_owned()),
            stored_len,
            us(Timestamp::now()),
        ),
    };
    let k = (key.0.as_str(), key.1.as_str());
    let row = match summary.get(k).map_err(engine)?.map(|v| v.value()) {
        Some((count, bytes, oldest, newest)) => (count + 1, bytes + size, oldest.min(at), newest.max(at)),
        None => (1, size, at, at),
    };
    summary.insert(k, row).map_err(engine)?;
    Ok(())
}

fn get_read(t: &impl ReadableTable<u64, &'static [u8]>, id: ReadId) -> Result<Option<StoredRead>> {
    match t.get(id).map_err(engine)? {
        Some(v) => decode("read", v.value()).map(Some),
        None => Ok(None),
    }
}

/// Fetch the reads whose ids an index scan produced.
fn fetch_reads(
    t: &impl ReadableTable<u64, &'static [u8]>,
    ids: impl IntoIterator<Item = ReadId>,
) -> Result<Vec<StoredRead>> {
    ids.into_iter()
        .map(|id| {
            get_read(t, id)?.ok_or_else(|| StoreError::Corrupt {
                what: "index",
                detail: format!("read {id} missing"),
            })
        })
        .collect()
}

/// How many entries a sorted walk steps over before it seeks instead: a seek costs about as
/// much as a few steps, and far-apart keys should not read the pages between them.
const WALK_BEFORE_SEEK: usize = 16;

/// Values of `keys` (ascending in the table's key order) from `t`: one walk along the table
/// where the keys are dense, a seek where they are far apart, instead of one lookup per key.
/// `None` for keys that are not stored.
fn get_ascending<'k, K, T, O>(
    t: &T,
    keys: &'k [K::SelfType<'k>],
    decode_value: impl Fn(&[u8]) -> Result<O>,
) -> Result<Vec<Option<O>>>
where
    K: redb::Key + 'static,
    T: ReadableTable<K, &'static [u8]>,
{
    use std::cmp::Ordering;
    use std::ops::Bound;
    let mut out = Vec::with_capacity(keys.len());
    'seek: while let Some(first) = keys.get(out.len()) {
        let mut walk = t
            .range::<&K::SelfType<'k>>((Bound::Included(first), Bound::Unbounded))
            .map_err(engine)?
            .peekable();
        let mut stepped = 0;
        while let Some(want) = keys.get(out.len()) {
            let Some(entry) = walk.peek() else {
                out.push(None);
                continue;
            };
            let (k, v) = entry.as_ref().map_err(engine)?;
            let order = K::compare(K::as_bytes(&k.value()).as_ref(), K::as_bytes(want).as_ref());
            let found = if order == Ordering::Equal {
                Some(decode_value(v.value())?)
            } else {
                None
            };
            match order {
                Ordering::Less if stepped < WALK_BEFORE_SEEK => {
                    stepped += 1;
                    walk.next();
                }
                Ordering::Less => continue 'seek,
                Ordering::Equal => {
                    out.push(found);
                    stepped = 0;
                    walk.next();
                }
                Ordering::Greater => out.push(None),
            }
        }
    }
    Ok(out)
}

/// [`fetch_reads`] for ids in ascending order (a status index scan), by [`get_ascending`].
fn fetch_reads_ascending(t: &impl ReadableTable<u64, &'static [u8]>, ids: &[ReadId]) -> Result<Vec<StoredRead>> {
    get_ascending(t, ids, |v| decode("read", v))?
        .into_iter()
        .zip(ids)
        .map(|(r, id)| {
            r.ok_or_else(|| StoreError::Corrupt {
                what: "index",
                detail: format!("read {id} missing"),
            })
        })
        .collect()
}

fn histories(
    t: &impl ReadableTable<(&'static str, i64, u64), Summary>,
    queries: &[HistoryQuery<'_>],
) -> Result<Vec<Vec<ReadSummary>>> {
    let mut out = Vec::with_capacity(queries.len());
    for q in queries {
        let (from, to) = (us(q.from), us(q.to).max(us(q.from)));
        let mut window = Vec::new();
        // The latest read before the window that counts as history: the previous read of a
        // meter read rarely.
        for e in t
            .range((q.meter_id, i64::MIN, 0u64)..(q.meter_id, from, 0u64))
            .map_err(engine)?
            .rev()
        {
            let (k, v) = e.map_err(engine)?;
            let s = summary_of(k.value(), v.value())?;
            if s.is_history() {
                window.push(s);
                break;
            }
        }
        for e in t
            .range((q.meter_id, from, 0u64)..(q.meter_id, to, 0u64))
            .map_err(engine)?
        {
            let (k, v) = e.map_err(engine)?;
            window.push(summary_of(k.value(), v.value())?);
        }
        out.push(window);
    }
    Ok(out)
}

fn meter_time_ids(
    t: &impl ReadableTable<(&'static str, i64, u64), Summary>,
    meter: &str,
    from: i64,
    to: i64,
    newest_first: bool,
    limit: usize,
) -> Result<Vec<ReadId>> {
    if from >= to {
        return Ok(Vec::new());
    }
    let range = t.range((meter, from, 0u64)..(meter, to, 0u64)).map_err(engine)?;
    let mut ids = Vec::new();
    type Entry<'a> = std::result::Result<
        (
            redb::AccessGuard<'a, (&'static str, i64, u64)>,
            redb::AccessGuard<'a, Summary>,
        ),
        redb::StorageError,
    >;
    let mut push = |e: Entry<'_>| -> Result<bool> {
        let (k, _) = e.map_err(engine)?;
        ids.push(k.value().2);
        Ok(ids.len() < limit)
    };
    if newest_first {
        for e in range.rev() {
            if !push(e)? {
                break;
            }
        }
    } else {
        for e in range {
            if !push(e)? {
                break;
            }
        }
    }
    Ok(ids)
}

/// The queries, written once for both transaction kinds (redb's read and write transactions
/// both have `open_table`, returning different table types with the same readable trait).
macro_rules! impl_read_txn {
    ($ty:ty) => {
        impl MeterQueries for $ty {
            fn meter(&self, meter_id: &str) -> Result<Option<Meter>> {
                let t = self.txn.open_table(noted(METERS)).map_err(engine)?;
                match t.get(meter_id).map_err(engine)? {
                    Some(v) => decode("meter", v.value()).map(Some),
                    None => Ok(None),
                }
            }

            fn meters(&self) -> Result<Vec<Meter>> {
                let t = self.txn.open_table(noted(METERS)).map_err(engine)?;
                let mut out = Vec::new();
                for e in t.iter().map_err(engine)? {
                    let (_, v) = e.map_err(engine)?;
                    out.push(decode("meter", v.value())?);
                }
                Ok(out)
            }

            fn meters_by_id(&self, ids: &[&str]) -> Result<Vec<Option<Meter>>> {
                let t = self.txn.open_table(noted(METERS)).map_err(engine)?;
                if ids.is_sorted() {
                    return get_ascending(&t, ids, |v| decode("meter", v));
                }
                ids.iter()
                    .map(|id| match t.get(*id).map_err(engine)? {
                        Some(v) => decode("meter", v.value()).map(Some),
                        None => Ok(None),
                    })
                    .collect()
            }
        }

        impl ReadQueries for $ty {
            fn meter_histories(&self, queries: &[HistoryQuery<'_>]) -> Result<Vec<Vec<ReadSummary>>> {
                histories(&self.txn.open_table(noted(METER_TIME)).map_err(engine)?, queries)
            }

            fn read(&self, id: ReadId) -> Result<Option<StoredRead>> {
                get_read(&self.txn.open_table(noted(READS)).map_err(engine)?, id)
            }

            fn meter_reads(&self, meter_id: &str, from: Timestamp, to: Timestamp) -> Result<Vec<StoredRead>> {
                let idx = self.txn.open_table(noted(METER_TIME)).map_err(engine)?;
                let ids = meter_time_ids(&idx, meter_id, us(from), us(to), false, usize::MAX)?;
                fetch_reads(&self.txn.open_table(noted(READS)).map_err(engine)?, ids)
            }

            fn meter_reads_before(&self, meter_id: &str, before: Timestamp, limit: usize) -> Result<Vec<StoredRead>> {
                if limit == 0 {
                    return Ok(Vec::new());
                }
                let idx = self.txn.open_table(noted(METER_TIME)).map_err(engine)?;
                let ids = meter_time_ids(&idx, meter_id, i64::MIN, us(before), true, limit)?;
                fetch_reads(&self.txn.open_table(noted(READS)).map_err(engine)?, ids)
            }

            fn all_reads(&self) -> Result<Vec<StoredRead>> {
                let idx = self.txn.open_table(noted(METER_TIME)).map_err(engine)?;
                let mut ids = Vec::new();
                for e in idx.iter().map_err(engine)? {
                    ids.push(e.map_err(engine)?.0.value().2);
                }
                fetch_reads(&self.txn.open_table(noted(READS)).map_err(engine)?, ids)
            }

            fn reads_with_status(&self, status: ReadStatus, limit: usize) -> Result<Vec<StoredRead>> {
                let idx = self.txn.open_table(noted(STATUS_INDEX)).map_err(engine)?;
                let code = status.code();
                let mut ids = Vec::new();
                for e in idx.range((code, 0u64)..=(code, u64::MAX)).map_err(engine)? {
                    if ids.len() >= limit {
                        break;
                    }
                    ids.push(e.map_err(engine)?.0.value().1);
                }
                fetch_reads_ascending(&self.txn.open_table(noted(READS)).map_err(engine)?, &ids)
            }

            fn count_reads(&self) -> Result<u64> {
                self.txn
                    .open_table(noted(READS))
                    .map_err(engine)?
                    .len()
                    .map_err(engine)
            }

            fn count_reads_by_status(&self) -> Result<Vec<(ReadStatus, u64)>> {
                let idx = self.txn.open_table(noted(STATUS_INDEX)).map_err(engine)?;
                let mut out = Vec::new();
                for status in ReadStatus::ALL {
                    let code = status.code();
                    let mut n = 0u64;
                    for e in idx.range((code, 0u64)..=(code, u64::MAX)).map_err(engine)? {
                        e.map_err(engine)?;
                        n += 1;
                    }
                    out.push((status, n));
                }
                Ok(out)
            }
        }

        impl BillingQueries for $ty {
            fn batch(&self, id: BatchId) -> Result<Option<Batch>> {
                let t = self.txn.open_table(noted(BATCHES)).map_err(engine)?;
                match t.get(id).map_err(engine)? {
                    Some(v) => decode("batch", v.value()).map(Some),
                    None => Ok(None),
                }
            }

            fn open_batch(&self, client: &str) -> Result<Option<Batch>> {
                let id = self
                    .txn
                    .open_table(noted(OPEN_BATCHES))
                    .map_err(engine)?
                    .get(client)
                    .map_err(engine)?
                    .map(|v| v.value());
                match id {
                    Some(id) => self.batch(id),
                    None => Ok(None),
                }
            }

            fn batches(&self, status: Option<BatchStatus>) -> Result<Vec<Batch>> {
                let t = self.txn.open_table(noted(BATCHES)).map_err(engine)?;
                let mut out = Vec::new();
                for e in t.iter().map_err(engine)? {
                    let (_, v) = e.map_err(engine)?;
                    let b: Batch = decode("batch", v.value())?;
                    if status.is_none_or(|s| s == b.status) {
                        out.push(b);
                    }
                }
                Ok(out)
            }

            fn batch_contents(&self, id: BatchId) -> Result<Option<BatchContents>> {
                let t = self.txn.open_table(noted(BATCH_CONTENTS)).map_err(engine)?;
                match t.get(id).map_err(engine)? {
                    Some(v) => decode("batch contents", v.value()).map(Some),
                    None => Ok(None),
                }
            }

            fn billed(&self, read: ReadId) -> Result<Option<Billed>> {
                let t = self.txn.open_table(noted(BILLED)).map_err(engine)?;
                match t.get(read).map_err(engine)? {
                    Some(v) => decode("billed", v.value()).map(Some),
                    None => Ok(None),
                }
            }

            fn billed_read_changes(&self) -> Result<Vec<BilledReadChange>> {
                let t = self.txn.open_table(noted(BILLED_READ_CHANGES)).map_err(engine)?;
                let mut out = Vec::new();
                for e in t.iter().map_err(engine)? {
                    out.push(decode("billed read change", e.map_err(engine)?.1.value())?);
                }
                Ok(out)
            }

            fn billed_read_change(&self, read: ReadId) -> Result<Option<BilledReadChange>> {
                let t = self.txn.open_table(noted(BILLED_READ_CHANGES)).map_err(engine)?;
                match t.get(read).map_err(engine)? {
                    Some(v) => decode("billed read change", v.value()).map(Some),
                    None => Ok(None),
                }
            }

            fn api_tokens(&self) -> Result<Vec<ApiToken>> {
                let t = self.txn.open_table(noted(API_TOKENS)).map_err(engine)?;
                let mut out = Vec::new();
                for e in t.iter().map_err(engine)? {
                    let (_, v) = e.map_err(engine)?;
                    out.push(decode("api token", v.value())?);
                }
                Ok(out)
            }
        }

        impl GatewayQueries for $ty {
            fn seen(&self, namespace: &str, key: &[u8]) -> Result<Option<Timestamp>> {
                let t = self.txn.open_table(noted(SEEN)).map_err(engine)?;
                match t.get((namespace, key)).map_err(engine)? {
                    Some(v) => Timestamp::from_microsecond(v.value())
                        .map(Some)
                        .map_err(|e| StoreError::Corrupt {
                            what: "seen key",
                            detail: e.to_string(),
                        }),
                    None => Ok(None),
                }
            }

            fn gateways(&self) -> Result<Vec<GatewayState>> {
                let t = self.txn.open_table(noted(GW_GATEWAYS)).map_err(engine)?;
                let mut out = Vec::new();
                for e in t.iter().map_err(engine)? {
                    out.push(decode("gateway", e.map_err(engine)?.1.value())?);
                }
                Ok(out)
            }

            fn gateway(&self, gateway: &str) -> Result<Option<GatewayState>> {
                let t = self.txn.open_table(noted(GW_GATEWAYS)).map_err(engine)?;
                match t.get(gateway).map_err(engine)? {
                    Some(v) => decode("gateway", v.value()).map(Some),
                    None => Ok(None),
                }
            }

            fn interval_reads(&self, meter_id: &str, from: Timestamp, to: Timestamp) -> Result<Vec<IntervalRead>> {
                let t = self.txn.open_table(noted(GW_INTERVALS)).map_err(engine)?;
                let mut out = Vec::new();
                if us(from) >= us(to) {
                    return Ok(out);
                }
                for e in t
                    .range((meter_id, us(from))..(meter_id, us(to)))
                    .map_err(engine)?
                {
                    let (k, v) = e.map_err(engine)?;
                    let (number, consumption) = v.value();
                    let end = Timestamp::from_microsecond(k.value().1).map_err(|e| StoreError::Corrupt {
                        what: "interval read",
                        detail: e.to_string(),
                    })?;
                    out.push(IntervalRead {
                        end,
                        number,
                        consumption,
                    });
                }
                Ok(out)
            }

            fn count_interval_reads(&self) -> Result<u64> {
                self.txn
                    .open_table(noted(GW_INTERVALS))
                    .map_err(engine)?
                    .len()
                    .map_err(engine)
            }

            fn tamper_state(&self, endpoint: &str) -> Result<Option<(Timestamp, u64)>> {
                let t = self.txn.open_table(noted(GW_TAMPER)).map_err(engine)?;
                match t.get(endpoint).map_err(engine)? {
                    Some(v) => {
                        let (at, counters) = v.value();
                        let at = Timestamp::from_microsecond(at).map_err(|e| StoreError::Corrupt {
                            what: "tamper state",
                            detail: e.to_string(),
                        })?;
                        Ok(Some((at, counters)))
                    }
                    None => Ok(None),
                }
            }

            fn outbox(&self, after: u64, limit: usize) -> Result<Vec<(u64, OutboxEntry)>> {
                let t = self.txn.open_table(noted(GW_OUTBOX)).map_err(engine)?;
                let mut out = Vec::new();
                for e in t.range(after.saturating_add(1)..).map_err(engine)? {
                    if out.len() >= limit {
                        break;
                    }
                    let (k, v) = e.map_err(engine)?;
                    out.push((k.value(), decode("outbox entry", v.value())?));
                }
                Ok(out)
            }

            fn outbox_len(&self) -> Result<u64> {
                self.txn
                    .open_table(noted(GW_OUTBOX))
                    .map_err(engine)?
                    .len()
                    .map_err(engine)
            }
        }

        impl CradleQueries for $ty {
            fn route_assignments(&self) -> Result<Vec<(String, String)>> {
                let t = self.txn.open_table(noted(ROUTE_ASSIGN)).map_err(engine)?;
                let mut out = Vec::new();
                for e in t.iter().map_err(engine)? {
                    let (k, v) = e.map_err(engine)?;
                    out.push((k.value().to_owned(), v.value().to_owned()));
                }
                Ok(out)
            }

            fn route_loads(&self) -> Result<Vec<RouteLoad>> {
                let t = self.txn.open_table(noted(ROUTE_LOADS)).map_err(engine)?;
                let mut out = Vec::new();
                for e in t.iter().map_err(engine)? {
                    out.push(decode("route load", e.map_err(engine)?.1.value())?);
                }
                Ok(out)
            }

            fn cradle_watermark(&self, serial: &str) -> Result<Option<u32>> {
                let t = self.txn.open_table(noted(CRADLE_WATERMARK)).map_err(engine)?;
                Ok(t.get(serial).map_err(engine)?.map(|v| v.value()))
            }

            fn route_skips(&self, route: &str) -> Result<Vec<RouteSkip>> {
                let t = self.txn.open_table(noted(ROUTE_SKIPS)).map_err(engine)?;
                let mut out = Vec::new();
                for e in t.range((route, "", "", 0u32)..).map_err(engine)? {
                    let (k, v) = e.map_err(engine)?;
                    if k.value().0 != route {
                        break;
                    }
                    out.push(decode("route skip", v.value())?);
                }
                Ok(out)
            }
        }

        impl ReviewQueries for $ty {
            fn audit_len(&self) -> Result<u64> {
                Ok(self
                    .txn
                    .open_table(noted(META))
                    .map_err(engine)?
                    .get(K_AUDIT_LEN)
                    .map_err(engine)?
                    .map(|v| v.value())
                    .unwrap_or(0))
            }

            fn audit_scan(&self) -> Result<Vec<(u64, std::result::Result<AuditEntry, String>)>> {
                let t = self.txn.open_table(noted(AUDIT)).map_err(engine)?;
                let mut out = Vec::new();
                for e in t.iter().map_err(engine)? {
                    let (k, v) = e.map_err(engine)?;
                    out.push((
                        k.value(),
                        postcard::from_bytes(v.value()).map_err(|e| e.to_string()),
                    ));
                }
                Ok(out)
            }

            fn read_audit(&self, read_id: ReadId) -> Result<Vec<AuditEntry>> {
                let idx = self.txn.open_table(noted(AUDIT_BY_READ)).map_err(engine)?;
                let mut seqs = Vec::new();
                for e in idx.range((read_id, 0u64)..=(read_id, u64::MAX)).map_err(engine)? {
                    seqs.push(e.map_err(engine)?.0.value().1);
                }
                audit_entries(&self.txn.open_table(noted(AUDIT)).map_err(engine)?, seqs)
            }

            fn meter_audit(&self, meter_id: &str) -> Result<Vec<AuditEntry>> {
                let idx = self.txn.open_table(noted(AUDIT_BY_METER)).map_err(engine)?;
                let mut seqs = Vec::new();
                for e in idx
                    .range((meter_id, 0u64)..=(meter_id, u64::MAX))
                    .map_err(engine)?
                {
                    seqs.push(e.map_err(engine)?.0.value().1);
                }
                audit_entries(&self.txn.open_table(noted(AUDIT)).map_err(engine)?, seqs)
            }

            fn undo_snapshot(&self, seq: u64) -> Result<Option<StoredRead>> {
                let t = self.txn.open_table(noted(UNDO_SNAPSHOTS)).map_err(engine)?;
                match t.get(seq).map_err(engine)? {
                    Some(v) => decode("undo snapshot", v.value()).map(Some),
                    None => Ok(None),
                }
            }

            fn service_orders(&self) -> Result<Vec<ServiceOrder>> {
                let t = self.txn.open_table(noted(SERVICE_ORDERS)).map_err(engine)?;
                let mut out = Vec::new();
                for e in t.iter().map_err(engine)? {
                    out.push(decode("service order", e.map_err(engine)?.1.value())?);
                }
                Ok(out)
            }

            fn service_order(&self, id: u64) -> Result<Option<ServiceOrder>> {
                let t = self.txn.open_table(noted(SERVICE_ORDERS)).map_err(engine)?;
                match t.get(id).map_err(engine)? {
                    Some(v) => decode("service order", v.value()).map(Some),
                    None => Ok(None),
                }
            }

            fn meter_changes(&self, meter_id: &str) -> Result<Vec<MeterChange>> {
                let t = self.txn.open_table(noted(METER_CHANGES)).map_err(engine)?;
                let mut out = Vec::new();
                for e in t
                    .range((meter_id, i64::MIN)..=(meter_id, i64::MAX))
                    .map_err(engine)?
                {
                    out.push(decode("meter change", e.map_err(engine)?.1.value())?);
                }
                Ok(out)
            }
        }

        impl QuarantineQueries for $ty {
            fn quarantined(&self) -> Result<Vec<(u64, QuarantineEntry)>> {
                Ok(self
                    .quarantine_entries()?
                    .into_iter()
                    .map(|(id, q)| (id, q.entry))
                    .collect())
            }

            fn quarantine_entries(&self) -> Result<Vec<(u64, StoredQuarantine)>> {
                let t = self.txn.open_table(noted(QUARANTINE)).map_err(engine)?;
                let mut out = Vec::new();
                for e in t.iter().map_err(engine)? {
                    let (k, v) = e.map_err(engine)?;
                    out.push((k.value(), decode("quarantine entry", v.value())?));
                }
                Ok(out)
            }

            fn quarantine_entry(&self, id: u64) -> Result<Option<StoredQuarantine>> {
                let t = self.txn.open_table(QUARANTINE).map_err(engine)?;
                match t.get(id).map_err(engine)? {
                    Some(v) => decode("quarantine entry", v.value()).map(Some),
                    None => Ok(None),
                }
            }

            fn quarantine_summary(&self) -> Result<Vec<QuarantineSummary>> {
                let t = self.txn.open_table(QUARANTINE_SUMMARY).map_err(engine)?;
                let mut out = Vec::new();
                for e in t.iter().map_err(engine)? {
                    let (k, v) = e.map_err(engine)?;
                    let (source, reason) = k.value();
                    let (count, bytes, oldest, newest) = v.value();
                    out.push(QuarantineSummary {
                        source: source.to_owned(),
                        reason: reason.to_owned(),
                        count,
                        bytes,
                        oldest: summary_time(oldest)?,
                        newest: summary_time(newest)?,
                    });
                }
                Ok(out)
            }

            fn quarantine_usage(&self) -> Result<QuarantineUsage> {
                let entries = self
                    .txn
                    .open_table(QUARANTINE)
                    .map_err(engine)?
                    .len()
                    .map_err(engine)?;
                let bytes = self.quarantine_bytes()?;
                Ok(QuarantineUsage { entries, bytes })
            }
        }
    };
}

fn audit_entries(t: &impl ReadableTable<u64, &'static [u8]>, seqs: Vec<u64>) -> Result<Vec<AuditEntry>> {
    seqs.into_iter()
        .map(|seq| match t.get(seq).map_err(engine)? {
            Some(v) => decode("audit entry", v.value()),
            None => Err(StoreError::Corrupt {
                what: "audit index",
                detail: format!("audit entry {seq} missing"),
            }),
        })
        .collect()
}

impl_read_txn!(RedbRead);
impl_read_txn!(RedbWrite);

impl RedbWrite {
    /// Take the next value of an id counter.
    fn quarantine_bytes(&self) -> Result<u64> {
        if let Some(b) = self.quarantine_bytes.get() {
            return Ok(b);
        }
        let b = stored_quarantine_bytes(&self.txn.open_table(META).map_err(engine)?)?;
        self.quarantine_bytes.set(Some(b));
        Ok(b)
    }

    fn set_quarantine_bytes(&self, total: u64) -> Result<()> {
        self.quarantine_bytes.set(Some(total));
        Ok(())
    }

    /// Removes the oldest entries while the quarantine is over its size or its oldest entry
    /// over its age, summarising each: one look at the front per entry added, so the cost is
    /// amortised over the entries (never a scan).
    fn trim_quarantine(&mut self, now: Timestamp) -> Result<u64> {
        let limits = self.limits;
        let cutoff = limits.max_age.and_then(|a| now.checked_sub(a).ok());
        let mut total = self.quarantine_bytes()?;
        let young = |oldest: Option<Timestamp>| match (oldest, cutoff) {
            (Some(o), Some(c)) => o >= c,
            (_, None) => true,
            (None, Some(_)) => false,
        };
        if total <= limits.max_bytes && young(self.quarantine_oldest) {
            return Ok(0);
        }
        self.quarantine_oldest = None;
        let mut t = self.txn.open_table(QUARANTINE).map_err(engine)?;
        let mut summary = self.txn.open_table(QUARANTINE_SUMMARY).map_err(engine)?;
        let mut removed = 0;
        loop {
            let (id, len, stored) = match t.first().map_err(engine)? {
                Some((k, v)) => (
                    k.value(),
                    v.value().len() as u64,
                    decode::<StoredQuarantine>("quarantine entry", v.value()).ok(),
                ),
                None => break,
            };
            let too_old = match (&stored, cutoff) {
                (Some(q), Some(c)) => q.entry.received_at < c,
                _ => false,
            };
            if total <= limits.max_bytes && !too_old {
                self.quarantine_oldest = stored.map(|q| q.entry.received_at);
                break;
            }
            t.remove(id).map_err(engine)?;
            summarise(&mut summary, stored.as_ref(), len)?;
            total = total.saturating_sub(len);
            removed += 1;
        }
        drop((t, summary));
        self.set_quarantine_bytes(total)?;
        Ok(removed)
    }

    fn next_id(&self, counter: &str) -> Result<u64> {
        let mut meta = self.txn.open_table(noted(META)).map_err(engine)?;
        let id = meta.get(counter).map_err(engine)?.map(|v| v.value()).unwrap_or(1);
        meta.insert(counter, id + 1).map_err(engine)?;
        Ok(id)
    }
}

impl MeterWrites for RedbWrite {
    fn lock_meters(&mut self, _ids: &[&str]) -> Result<()> {
        // One writer at a time: the write transaction holds every meter already.
        Ok(())
    }

    fn put_meter(&mut self, meter: &Meter) -> Result<()> {
        let bytes = encode(meter)?;
        self.txn
            .open_table(noted(METERS))
            .map_err(engine)?
            .insert(meter.meter_id.as_str(), bytes.as_slice())
            .map_err(engine)?;
        Ok(())
    }
}

impl ReadWrites for RedbWrite {
    fn insert_read(&mut self, read: &StoredRead) -> Result<ReadId> {
        Ok(self.insert_reads(&mut [read.clone()])?[0])
    }

    fn insert_reads(&mut self, reads: &mut [StoredRead]) -> Result<Vec<ReadId>> {
        // Open each table once for the whole group: the bulk path of every import.
        let mut meta = self.txn.open_table(noted(META)).map_err(engine)?;
        let first = meta.get(K_NEXT_READ).map_err(engine)?.map(|v| v.value()).unwrap_or(1);
        meta.insert(K_NEXT_READ, first + reads.len() as u64).map_err(engine)?;
        let mut table = self.txn.open_table(noted(READS)).map_err(engine)?;
        let mut by_time = self.txn.open_table(noted(METER_TIME)).map_err(engine)?;
        let mut by_status = self.txn.open_table(noted(STATUS_INDEX)).map_err(engine)?;
        let mut ids = Vec::with_capacity(reads.len());
        let mut buf = Vec::new();
        for (n, stored) in reads.iter_mut().enumerate() {
            let id = first + n as u64;
            stored.id = id;
            buf.clear();
            buf = postcard::to_extend(&*stored, buf).map_err(engine)?;
            table.insert(id, buf.as_slice()).map_err(engine)?;
            by_time
                .insert(
                    (stored.read.meter_id.as_str(), us(stored.read.read_at), id),
                    summary_value(stored),
                )
                .map_err(engine)?;
            by_status.insert((stored.status.code(), id), ()).map_err(engine)?;
            ids.push(id);
        }
        Ok(ids)
    }

    fn replace_reads(&mut self, reads: &[StoredRead]) -> Result<Vec<StoredRead>> {
        // The bulk path of batching and review: tables opened once.
        let mut table = self.txn.open_table(noted(READS)).map_err(engine)?;
        let mut by_time = self.txn.open_table(noted(METER_TIME)).map_err(engine)?;
        let mut by_status = self.txn.open_table(noted(STATUS_INDEX)).map_err(engine)?;
        let mut olds = Vec::with_capacity(reads.len());
        let mut buf = Vec::new();
        for read in reads {
            let old = get_read(&table, read.id)?.ok_or_else(|| StoreError::NotFound {
                what: "read",
                id: read.id.to_string(),
            })?;
            buf.clear();
            buf = postcard::to_extend(read, buf).map_err(engine)?;
            table.insert(read.id, buf.as_slice()).map_err(engine)?;
            if old.status != read.status {
                by_status.remove((old.status.code(), read.id)).map_err(engine)?;
                by_status.insert((read.status.code(), read.id), ()).map_err(engine)?;
            }
            if old.read.meter_id != read.read.meter_id || old.read.read_at != read.read.read_at {
                by_time
                    .remove((old.read.meter_id.as_str(), us(old.read.read_at), read.id))
                    .map_err(engine)?;
            }
            // Same key: insert replaces the summary.
            by_time
                .insert(
                    (read.read.meter_id.as_str(), us(read.read.read_at), read.id),
                    summary_value(read),
                )
                .map_err(engine)?;
            olds.push(old);
        }
        Ok(olds)
    }

    fn store_billing_state(&mut self, reads: &mut [StoredRead], status: ReadStatus, batch: BatchId) -> Result<()> {
        let mut table = self.txn.open_table(noted(READS)).map_err(engine)?;
        let mut by_time = self.txn.open_table(noted(METER_TIME)).map_err(engine)?;
        let mut by_status = self.txn.open_table(noted(STATUS_INDEX)).map_err(engine)?;
        // Out of the status index in one pass per old status (the reads are mostly neighbours
        // there). The index says what is stored: if fewer entries go than the caller holds, a
        // copy was stale, and the transaction, dropped, changes nothing.
        let mut by_old: std::collections::BTreeMap<u8, Vec<ReadId>> = std::collections::BTreeMap::new();
        for read in reads.iter() {
            by_old.entry(read.status.code()).or_default().push(read.id);
        }
        for (code, mut ids) in by_old {
            ids.sort_unstable();
            let (first, last) = (ids[0], ids[ids.len() - 1]);
            let before = by_status.len().map_err(engine)?;
            by_status
                .retain_in((code, first)..=(code, last), |(_, id), ()| {
                    ids.binary_search(&id).is_err()
                })
                .map_err(engine)?;
            let removed = before - by_status.len().map_err(engine)?;
            if removed != ids.len() as u64 {
                return Err(StoreError::Conflict(format!(
                    "{} of {} reads changed since they were read; billing state not set",
                    ids.len() as u64 - removed,
                    ids.len()
                )));
            }
        }
        let mut buf = Vec::new();
        for read in reads.iter_mut() {
            read.status = status;
            read.batch = Some(batch);
            buf.clear();
            buf = postcard::to_extend(&*read, buf).map_err(engine)?;
            table.insert(read.id, buf.as_slice()).map_err(engine)?;
            by_status.insert((status.code(), read.id), ()).map_err(engine)?;
            // Same key (meter, time, id): insert replaces the summary, which carries the status.
            by_time
                .insert(
                    (read.read.meter_id.as_str(), us(read.read.read_at), read.id),
                    summary_value(read),
                )
                .map_err(engine)?;
        }
        Ok(())
    }
}

impl BillingWrites for RedbWrite {
    fn put_batch_contents(&mut self, id: BatchId, contents: &BatchContents) -> Result<()> {
        self.txn
            .open_table(noted(BATCH_CONTENTS))
            .map_err(engine)?
            .insert(id, encode(contents)?.as_slice())
            .map_err(engine)?;
        Ok(())
    }

    fn put_billed(&mut self, billed: &[(ReadId, Billed)]) -> Result<()> {
        let mut t = self.txn.open_table(noted(BILLED)).map_err(engine)?;
        let mut buf = Vec::new();
        for (id, b) in billed {
            buf.clear();
            buf = postcard::to_extend(b, buf).map_err(engine)?;
            t.insert(*id, buf.as_slice()).map_err(engine)?;
        }
        Ok(())
    }

    fn put_billed_read_change(&mut self, change: &BilledReadChange) -> Result<()> {
        self.txn
            .open_table(noted(BILLED_READ_CHANGES))
            .map_err(engine)?
            .insert(change.read_id, encode(change)?.as_slice())
            .map_err(engine)?;
        Ok(())
    }

    fn remove_billed_read_change(&mut self, read: ReadId) -> Result<()> {
        self.txn
            .open_table(noted(BILLED_READ_CHANGES))
            .map_err(engine)?
            .remove(read)
            .map_err(engine)?;
        Ok(())
    }

    fn put_api_token(&mut self, token: &ApiToken) -> Result<()> {
        self.txn
            .open_table(noted(API_TOKENS))
            .map_err(engine)?
            .insert(token.name.as_str(), encode(token)?.as_slice())
            .map_err(engine)?;
        Ok(())
    }

    fn next_batch_id(&mut self) -> Result<BatchId> {
        self.next_id(K_NEXT_BATCH)
    }

    fn put_batch(&mut self, batch: &Batch) -> Result<()> {
        self.txn
            .open_table(noted(BATCHES))
            .map_err(engine)?
            .insert(batch.id, encode(batch)?.as_slice())
            .map_err(engine)?;
        Ok(())
    }

    fn lock_open_batch(&mut self, client: &str) -> Result<Option<BatchId>> {
        // redb has one writer: reading is locking.
        let open = self.txn.open_table(noted(OPEN_BATCHES)).map_err(engine)?;
        Ok(open.get(client).map_err(engine)?.map(|v| v.value()))
    }

    fn set_open_batch(&mut self, client: &str, batch: Option<BatchId>) -> Result<()> {
        let mut open = self.txn.open_table(noted(OPEN_BATCHES)).map_err(engine)?;
        match batch {
            Some(id) => open.insert(client, id).map_err(engine)?,
            None => open.remove(client).map_err(engine)?,
        };
        Ok(())
    }
}

impl GatewayWrites for RedbWrite {
    fn mark_seen(&mut self, namespace: &str, key: &[u8], at: Timestamp) -> Result<bool> {
        let mut t = self.txn.open_table(noted(SEEN)).map_err(engine)?;
        if t.get((namespace, key)).map_err(engine)?.is_some() {
            return Ok(false);
        }
        t.insert((namespace, key), us(at)).map_err(engine)?;
        self.txn
            .open_table(noted(SEEN_BY_TIME))
            .map_err(engine)?
            .insert((namespace, us(at), key), ())
            .map_err(engine)?;
        Ok(true)
    }

    fn mark_seen_all(&mut self, namespace: &str, keys: &[&[u8]], at: Timestamp) -> Result<Vec<bool>> {
        keys.iter().map(|k| self.mark_seen(namespace, k, at)).collect()
    }

    fn forget_seen_before(&mut self, namespace: &str, before: Timestamp) -> Result<u64> {
        let mut by_time = self.txn.open_table(noted(SEEN_BY_TIME)).map_err(engine)?;
        let mut seen = self.txn.open_table(noted(SEEN)).map_err(engine)?;
        let empty: &[u8] = &[];
        let mut removed = 0;
        for e in by_time
            .extract_from_if((namespace, i64::MIN, empty)..(namespace, us(before), empty), |_, ()| {
                true
            })
            .map_err(engine)?
        {
            let (k, _) = e.map_err(engine)?;
            let (ns, _, key) = k.value();
            seen.remove((ns, key)).map_err(engine)?;
            removed += 1;
        }
        Ok(removed)
    }

    fn put_gateway(&mut self, state: &GatewayState) -> Result<()> {
        let bytes = encode(state)?;
        self.txn
            .open_table(noted(GW_GATEWAYS))
            .map_err(engine)?
            .insert(state.gateway.as_str(), bytes.as_slice())
            .map_err(engine)?;
        Ok(())
    }

    fn insert_interval_read(&mut self, meter_id: &str, read: &IntervalRead) -> Result<()> {
        self.txn
            .open_table(noted(GW_INTERVALS))
            .map_err(engine)?
            .insert((meter_id, us(read.end)), (read.number, read.consumption))
            .map_err(engine)?;
        Ok(())
    }

    fn insert_interval_reads(&mut self, meter_id: &str, reads: &[IntervalRead]) -> Result<()> {
        let mut table = self.txn.open_table(noted(GW_INTERVALS)).map_err(engine)?;
        for read in reads {
            table
                .insert((meter_id, us(read.end)), (read.number, read.consumption))
                .map_err(engine)?;
        }
        Ok(())
    }

    fn set_tamper_state(&mut self, endpoint: &str, at: Timestamp, counters: u64) -> Result<()> {
        self.txn
            .open_table(noted(GW_TAMPER))
            .map_err(engine)?
            .insert(endpoint, (us(at), counters))
            .map_err(engine)?;
        Ok(())
    }

    fn push_outbox(&mut self, entry: &OutboxEntry) -> Result<u64> {
        let id = self.next_id(K_NEXT_OUTBOX)?;
        self.txn
            .open_table(noted(GW_OUTBOX))
            .map_err(engine)?
            .insert(id, encode(entry)?.as_slice())
            .map_err(engine)?;
        Ok(id)
    }

    fn remove_outbox(&mut self, id: u64) -> Result<bool> {
        Ok(self
            .txn
            .open_table(noted(GW_OUTBOX))
            .map_err(engine)?
            .remove(id)
            .map_err(engine)?
            .is_some())
    }
}

impl CradleWrites for RedbWrite {
    fn assign_route(&mut self, route: &str, serial: Option<&str>) -> Result<()> {
        let mut t = self.txn.open_table(noted(ROUTE_ASSIGN)).map_err(engine)?;
        match serial {
            Some(s) => t.insert(route, s).map_err(engine)?,
            None => t.remove(route).map_err(engine)?,
        };
        Ok(())
    }

    fn put_route_load(&mut self, load: &RouteLoad) -> Result<()> {
        let mut t = self.txn.open_table(noted(ROUTE_LOADS)).map_err(engine)?;
        t.insert((load.route.as_str(), us(load.loaded_at)), encode(load)?.as_slice())
            .map_err(engine)?;
        Ok(())
    }

    fn remove_route_load(&mut self, load: &RouteLoad) -> Result<()> {
        let mut t = self.txn.open_table(noted(ROUTE_LOADS)).map_err(engine)?;
        t.remove((load.route.as_str(), us(load.loaded_at))).map_err(engine)?;
        Ok(())
    }

    fn put_cradle_watermark(&mut self, serial: &str, seq: u32) -> Result<()> {
        self.txn
            .open_table(noted(CRADLE_WATERMARK))
            .map_err(engine)?
            .insert(serial, seq)
            .map_err(engine)?;
        Ok(())
    }

    fn put_route_skip(&mut self, skip: &RouteSkip) -> Result<()> {
        let mut t = self.txn.open_table(noted(ROUTE_SKIPS)).map_err(engine)?;
        let key = (
            skip.route.as_str(),
            skip.meter_id.as_str(),
            skip.serial.as_str(),
            skip.seq,
        );
        t.insert(key, encode(skip)?.as_slice()).map_err(engine)?;
        Ok(())
    }
}

impl ReviewWrites for RedbWrite {
    fn audit_tail(&mut self) -> Result<(u64, [u8; HASH_LEN])> {
        let len = self.audit_len()?;
        let audit = self.txn.open_table(noted(AUDIT)).map_err(engine)?;
        let hash = match audit.get(len).map_err(engine)? {
            Some(v) => decode::<AuditEntry>("audit entry", v.value())?.hash,
            None => [0; HASH_LEN],
        };
        Ok((len, hash))
    }

    fn insert_audit(&mut self, entry: &AuditEntry, before: Option<&StoredRead>) -> Result<()> {
        self.txn
            .open_table(noted(META))
            .map_err(engine)?
            .insert(K_AUDIT_LEN, entry.seq)
            .map_err(engine)?;
        self.txn
            .open_table(noted(AUDIT))
            .map_err(engine)?
            .insert(entry.seq, encode(entry)?.as_slice())
            .map_err(engine)?;
        // An interval day's entry is about no read (read_id 0); `audit_by_meter` finds it.
        if entry.day.is_none() {
            self.txn
                .open_table(noted(AUDIT_BY_READ))
                .map_err(engine)?
                .insert((entry.read_id, entry.seq), ())
                .map_err(engine)?;
        }
        self.txn
            .open_table(noted(AUDIT_BY_METER))
            .map_err(engine)?
            .insert((entry.meter_id.as_str(), entry.seq), ())
            .map_err(engine)?;
        if let Some(before) = before {
            self.txn
                .open_table(noted(UNDO_SNAPSHOTS))
                .map_err(engine)?
                .insert(entry.seq, encode(before)?.as_slice())
                .map_err(engine)?;
        }
        Ok(())
    }

    fn put_service_order(&mut self, order: &ServiceOrder) -> Result<u64> {
        let mut order = order.clone();
        if order.id == 0 {
            order.id = self.next_id(K_NEXT_ORDER)?;
        }
        self.txn
            .open_table(noted(SERVICE_ORDERS))
            .map_err(engine)?
            .insert(order.id, encode(&order)?.as_slice())
            .map_err(engine)?;
        Ok(order.id)
    }

    fn put_meter_change(&mut self, change: &MeterChange) -> Result<()> {
        self.txn
            .open_table(noted(METER_CHANGES))
            .map_err(engine)?
            .insert((change.meter_id.as_str(), us(change.at)), encode(change)?.as_slice())
            .map_err(engine)?;
        Ok(())
    }
}

impl QuarantineWrites for RedbWrite {
    fn quarantine(&mut self, entry: &QuarantineEntry) -> Result<u64> {
        let id = self.next_id(K_NEXT_QUARANTINE)?;
        let bytes = encode(&StoredQuarantine::new(entry, self.limits.keep_whole_bytes))?;
        self.txn
            .open_table(noted(QUARANTINE))
            .map_err(engine)?
            .insert(id, bytes.as_slice())
            .map_err(engine)?;
        let total = self.quarantine_bytes()? + bytes.len() as u64;
        self.set_quarantine_bytes(total)?;
        self.trim_quarantine(entry.received_at)?;
        Ok(id)
    }

    fn resolve_quarantine(&mut self, id: u64, resolution: &Resolution) -> Result<()> {
        let mut t = self.txn.open_table(QUARANTINE).map_err(engine)?;
        let (mut stored, old_len): (StoredQuarantine, usize) = match t.get(id).map_err(engine)? {
            Some(v) => (decode("quarantine entry", v.value())?, v.value().len()),
            None => {
                return Err(StoreError::NotFound {
                    what: "quarantine entry",
                    id: id.to_string(),
                });
            }
        };
        if let Some(r) = &stored.resolution {
            return Err(StoreError::Conflict(format!(
                "quarantine entry {id} was retried already ({} by {})",
                r.at, r.by
            )));
        }
        stored.resolution = Some(resolution.clone());
        let bytes = encode(&stored)?;
        t.insert(id, bytes.as_slice()).map_err(engine)?;
        drop(t);
        let total = (self.quarantine_bytes()? + bytes.len() as u64).saturating_sub(old_len as u64);
        self.set_quarantine_bytes(total)
    }

    fn purge_quarantine_before(&mut self, before: Timestamp) -> Result<QuarantineUsage> {
        let mut t = self.txn.open_table(QUARANTINE).map_err(engine)?;
        let mut summary = self.txn.open_table(QUARANTINE_SUMMARY).map_err(engine)?;
        let mut doomed = Vec::new();
        for e in t.iter().map_err(engine)? {
            let (k, v) = e.map_err(engine)?;
            let len = v.value().len() as u64;
            let stored = decode::<StoredQuarantine>("quarantine entry", v.value()).ok();
            if stored.as_ref().is_none_or(|q| q.entry.received_at < before) {
                doomed.push((k.value(), len, stored));
            }
        }
        let mut removed = QuarantineUsage::default();
        for (id, len, stored) in doomed {
            t.remove(id).map_err(engine)?;
            summarise(&mut summary, stored.as_ref(), len)?;
            removed.entries += 1;
            removed.bytes += len;
        }
        drop((t, summary));
        let total = self.quarantine_bytes()?.saturating_sub(removed.bytes);
        self.set_quarantine_bytes(total)?;
        Ok(removed)
    }

    fn enforce_quarantine_retention(&mut self, now: Timestamp) -> Result<u64> {
        self.trim_quarantine(now)
    }
}

impl WriteTxn for RedbWrite {
    fn commit(self: Box<Self>) -> Result<()> {
        if let Some(total) = self.quarantine_bytes.get() {
            self.txn
                .open_table(META)
                .map_err(engine)?
                .insert(K_QUARANTINE_BYTES, total)
                .map_err(engine)?;
        }
        self.txn.commit().map_err(engine)
    }
}

/// What `meterd store migrate` copies that the store traits only look up by key (there is no
/// query listing them): de-duplication keys, tamper counters, recorder watermarks, route skips
/// and interval reads, every row.
#[derive(Debug, Default)]
pub struct Listings {
    /// (namespace, key, first seen)
    pub seen: Vec<(String, Vec<u8>, Timestamp)>,
    /// (endpoint, at, counters)
    pub tamper: Vec<(String, Timestamp, u64)>,
    /// (device serial, watermark)
    pub watermarks: Vec<(String, u32)>,
    pub route_skips: Vec<RouteSkip>,
    /// (meter id, interval read)
    pub interval_reads: Vec<(String, IntervalRead)>,
    /// The next id of each counter in `meta` (`next_read_id`, …): ids of removed rows (a
    /// purged quarantine entry, a sent outbox message) are never given again.
    pub next_ids: Vec<(&'static str, u64)>,
}

impl RedbStore {
    /// Every row of the tables in [`Listings`], from one snapshot.
    pub fn listings(&self) -> Result<Listings> {
        let time = |what: &'static str, micros: i64| {
            Timestamp::from_microsecond(micros).map_err(|e| StoreError::Corrupt {
                what,
                detail: e.to_string(),
            })
        };
        self.health.run(|| {
            let txn = self.db().begin_read()?;
            let mut out = Listings::default();
            for e in txn.open_table(noted(SEEN)).map_err(engine)?.iter().map_err(engine)? {
                let (k, v) = e.map_err(engine)?;
                let (ns, key) = k.value();
                out.seen
                    .push((ns.to_owned(), key.to_vec(), time("seen key", v.value())?));
            }
            for e in txn
                .open_table(noted(GW_TAMPER))
                .map_err(engine)?
                .iter()
                .map_err(engine)?
            {
                let (k, v) = e.map_err(engine)?;
                let (at, counters) = v.value();
                out.tamper
                    .push((k.value().to_owned(), time("tamper state", at)?, counters));
            }
            for e in txn
                .open_table(noted(CRADLE_WATERMARK))
                .map_err(engine)?
                .iter()
                .map_err(engine)?
            {
                let (k, v) = e.map_err(engine)?;
                out.watermarks.push((k.value().to_owned(), v.value()));
            }
            for e in txn
                .open_table(noted(ROUTE_SKIPS))
                .map_err(engine)?
                .iter()
                .map_err(engine)?
            {
                let (_, v) = e.map_err(engine)?;
                out.route_skips.push(decode("route skip", v.value())?);
            }
            for e in txn
                .open_table(noted(GW_INTERVALS))
                .map_err(engine)?
                .iter()
                .map_err(engine)?
            {
                let (k, v) = e.map_err(engine)?;
                let (meter, end) = k.value();
                let (number, consumption) = v.value();
                out.interval_reads.push((
                    meter.to_owned(),
                    IntervalRead {
                        end: time("interval read", end)?,
                        number,
                        consumption,
                    },
                ));
            }
            let meta = txn.open_table(noted(META)).map_err(engine)?;
            for key in [
                K_NEXT_READ,
                K_NEXT_BATCH,
                K_NEXT_QUARANTINE,
                K_NEXT_OUTBOX,
                K_NEXT_ORDER,
            ] {
                if let Some(v) = meta.get(key).map_err(engine)? {
                    out.next_ids.push((key, v.value()));
                }
            }
            Ok(out)
        })
    }
}
