//! `meterd store check`: walks every table and index of the store and says what is damaged,
//! changing nothing.
//!
//! Two layers: redb's own integrity check (the checksum of every page, the allocator state),
//! and a walk of meterd's records (every record decodes; the indexes agree with the tables
//! they index; the audit trail has the recorded length). On a stopped store ([`check_file`])
//! redb's check runs on a private copy (redb's check repairs what it can, so it must not run
//! on the file itself) and the walk reads the file opened read-only. Through the daemon
//! ([`check_snapshot`]) the walk reads a read transaction of the running store; redb's page
//! check needs the store closed, so it is left out (the report says so).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use redb::{ReadableDatabase as _, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::guard::catch;
use super::redb_engine::*;
use super::{Result, SCHEMA_VERSION, STORE_FILE, StoreError};
use crate::model::billing::{ApiToken, BatchContents, Billed, BilledReadChange};
use crate::model::{
    AuditEntry, Batch, GatewayState, Meter, MeterChange, OutboxEntry, RouteLoad, RouteSkip, ServiceOrder,
    StoredQuarantine, StoredRead,
};

/// Problems listed per table; more are counted.
const MAX_LISTED: usize = 20;

/// One thing found damaged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The table (or `file`, `engine`).
    pub table: String,
    pub what: String,
}

/// Rows read from one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRows {
    pub table: String,
    pub rows: u64,
}

/// What `store check` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub store: String,
    /// Whether redb's page-level integrity check ran (a stopped store only).
    pub engine_checked: bool,
    pub tables: Vec<TableRows>,
    pub problems: Vec<Problem>,
}

impl CheckReport {
    fn new(store: &Path) -> Self {
        CheckReport {
            store: store.display().to_string(),
            engine_checked: false,
            tables: Vec::new(),
            problems: Vec::new(),
        }
    }

    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, table: &str, what: impl Into<String>) {
        self.problems.push(Problem {
            table: table.into(),
            what: what.into(),
        });
    }
}

/// Checks the store file at `path` of a stopped store, without writing it (the caller may
/// compare a hash of the file before and after).
pub fn check_file(path: &Path) -> Result<CheckReport> {
    let mut report = CheckReport::new(path);
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::NotFound {
                what: "store",
                id: path.display().to_string(),
            });
        }
        Err(e) => return Err(StoreError::Engine(format!("cannot read {}: {e}", path.display()))),
        Ok(_) => {}
    }
    let mut head = [0u8; 9];
    let read = {
        use std::io::Read as _;
        std::fs::File::open(path).and_then(|f| f.take(9).read(&mut head))
    };
    match read {
        Ok(0) => {
            report.problem("file", "the file is empty (0 bytes): not a store");
            return Ok(report);
        }
        Ok(_) if !head.starts_with(b"redb") => {
            report.problem("file", "not a redb database file");
            return Ok(report);
        }
        Ok(_) => {}
        Err(e) => return Err(StoreError::Engine(format!("cannot read {}: {e}", path.display()))),
    }

    // The file itself, read-only: its shared lock keeps writers out while it is copied and
    // walked, so the copy and the walk see the same store.
    let db = match catch(|| {
        redb::Database::builder()
            .set_cache_size(DEFAULT_CACHE_BYTES)
            .open_read_only(path)
    }) {
        Ok(Ok(db)) => Some(db),
        Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => {
            return Err(StoreError::Locked {
                path: path.display().to_string(),
            });
        }
        // Not shut down cleanly: the walk reads the copy redb's check recovers below.
        Ok(Err(redb::DatabaseError::RepairAborted)) => None,
        Ok(Err(e)) => {
            report.problem("engine", format!("cannot open it read-only: {e}"));
            None
        }
        Err(panic) => {
            report.problem("engine", format!("redb fails opening it read-only: {panic}"));
            None
        }
    };

    // redb's check, on a private copy next to the store (it repairs what it can).
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".meterd-check-")
        .tempdir_in(dir)
        .or_else(|_| tempfile::tempdir())
        .map_err(|e| StoreError::Engine(format!("cannot make a directory for the check: {e}")))?;
    let copy = tmp.path().join(STORE_FILE);
    std::fs::copy(path, &copy)
        .map_err(|e| StoreError::Engine(format!("cannot copy {} for the check: {e}", path.display())))?;
    let engine_ok = match catch(|| {
        redb::Database::builder()
            .set_cache_size(DEFAULT_CACHE_BYTES)
            .set_check_integrity_on_open(true)
            .open(&copy)
            .and_then(|db| db.close())
    }) {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            report.problem("engine", format!("redb's integrity check fails: {e}"));
            false
        }
        Err(panic) => {
            report.problem("engine", format!("redb fails on the file: {panic}"));
            false
        }
    };
    report.engine_checked = true;
    let db = match db {
        Some(db) => Some(db),
        None if engine_ok => match catch(|| redb::Database::builder().open_read_only(&copy)) {
            Ok(Ok(db)) => Some(db),
            _ => None,
        },
        None => None,
    };
    if let Some(db) = db {
        match catch(|| db.begin_read()) {
            Ok(Ok(txn)) => walk(&txn, &mut report),
            Ok(Err(e)) => report.problem("engine", format!("cannot read it: {e}")),
            Err(panic) => report.problem("engine", format!("redb fails reading it: {panic}")),
        }
        if let Err(panic) = catch(move || drop(db)) {
            report.problem("engine", format!("redb fails closing it: {panic}"));
        }
    } else {
        report.problem("engine", "the records could not be walked");
    }
    Ok(report)
}

/// Checks a snapshot of a running store (the walk; see the module documentation).
pub(super) fn check_snapshot(path: &Path, txn: &redb::ReadTransaction) -> CheckReport {
    let mut report = CheckReport::new(path);
    walk(txn, &mut report);
    report
}

/// What the read tables say about each read, for the index cross-checks.
struct ReadFacts {
    meter_id: String,
    at: i64,
    status: u8,
    summary: Summary,
    in_time_index: u32,
    in_status_index: u32,
}

/// Walks one table, each row through `row` (which returns its problems); a panic or an
/// engine error stops this table only.
fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    report: &mut CheckReport,
    def: TableDefinition<'static, K, V>,
    mut row: impl for<'a> FnMut(K::SelfType<'a>, V::SelfType<'a>) -> Option<String>,
) {
    use redb::TableHandle as _;
    let name = def.name().to_owned();
    let mut problems = Vec::new();
    let mut rows = 0u64;
    let outcome = catch(|| -> std::result::Result<(), String> {
        let t = match txn.open_table(def) {
            Ok(t) => t,
            Err(e) => return Err(format!("cannot open the table: {e}")),
        };
        for e in t.iter().map_err(|e| format!("cannot read the table: {e}"))? {
            let (k, v) = e.map_err(|e| format!("cannot read row {}: {e}", rows + 1))?;
            rows += 1;
            if let Some(p) = row(k.value(), v.value()) {
                problems.push(p);
            }
        }
        Ok(())
    });
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => problems.push(e),
        Err(panic) => problems.push(format!("redb fails reading it after {rows} rows: {panic}")),
    }
    report.tables.push(TableRows {
        table: name.clone(),
        rows,
    });
    let more = problems.len().saturating_sub(MAX_LISTED);
    for p in problems.into_iter().take(MAX_LISTED) {
        report.problem(&name, p);
    }
    if more > 0 {
        report.problem(&name, format!("… and {more} more problems"));
    }
}

/// A row whose value must decode as `T`.
fn decodes<T: serde::de::DeserializeOwned>(
    what: &'static str,
    key: impl std::fmt::Display,
    v: &[u8],
) -> Option<String> {
    decode::<T>(what, v).err().map(|e| format!("{what} {key}: {e}"))
}

fn walk(txn: &redb::ReadTransaction, report: &mut CheckReport) {
    let mut meta = HashMap::new();
    table(txn, report, META, |k, v| {
        meta.insert(k.to_owned(), v);
        None
    });
    match meta.get(K_SCHEMA) {
        Some(&SCHEMA_VERSION) => {}
        Some(v) => report.problem("meta", format!("schema version {v}, this meterd has {SCHEMA_VERSION}")),
        None => report.problem("meta", "no schema version recorded"),
    }
    table(txn, report, METERS, |k, v| decodes::<Meter>("meter", k, v));

    let mut reads: HashMap<u64, ReadFacts> = HashMap::new();
    table(txn, report, READS, |k, v| match decode::<StoredRead>("read", v) {
        Ok(r) if r.id != k => Some(format!("read {k} holds read id {}", r.id)),
        Ok(r) => {
            let facts = ReadFacts {
                meter_id: r.read.meter_id.clone(),
                at: r.read.read_at.as_microsecond(),
                status: r.status.code(),
                summary: summary_value(&r),
                in_time_index: 0,
                in_status_index: 0,
            };
            reads.insert(k, facts);
            None
        }
        Err(e) => Some(format!("read {k}: {e}")),
    });
    let next_read = meta.get(K_NEXT_READ).copied().unwrap_or(0);
    if let Some(max) = reads.keys().max()
        && *max >= next_read
    {
        report.problem(
            "meta",
            format!("next read id {next_read} is not above the highest stored read {max}"),
        );
    }
    table(txn, report, METER_TIME, |(m, at, id), s| match reads.get_mut(&id) {
        None => Some(format!("entry ({m}, {at}, {id}) names read {id}, which is not stored")),
        Some(r) => {
            r.in_time_index += 1;
            if r.meter_id != m || r.at != at {
                Some(format!(
                    "entry for read {id} says meter {m} at {at}, the read says {} at {}",
                    r.meter_id, r.at
                ))
            } else if r.summary != s {
                Some(format!(
                    "entry for read {id} disagrees with the read (value, consumption, status)"
                ))
            } else {
                None
            }
        }
    });
    table(txn, report, STATUS_INDEX, |(code, id), ()| match reads.get_mut(&id) {
        None => Some(format!("entry ({code}, {id}) names read {id}, which is not stored")),
        Some(r) => {
            r.in_status_index += 1;
            (r.status != code).then(|| format!("entry says read {id} has status {code}, the read has {}", r.status))
        }
    });
    let mut missing = Vec::new();
    for (id, r) in &reads {
        if r.in_time_index != 1 {
            missing.push(("meter_time", *id, r.in_time_index));
        }
        if r.in_status_index != 1 {
            missing.push(("status_index", *id, r.in_status_index));
        }
    }
    missing.sort_unstable();
    for (index, id, n) in missing.iter().take(MAX_LISTED) {
        report.problem(index, format!("read {id} has {n} entries here, not 1"));
    }
    if missing.len() > MAX_LISTED {
        report.problem(
            "reads",
            format!("… and {} more reads missing from an index", missing.len() - MAX_LISTED),
        );
    }
    drop(reads);

    let mut batches = HashMap::new();
    table(txn, report, BATCHES, |k, v| match decode::<Batch>("batch", v) {
        Ok(b) => {
            batches.insert(k, b.client);
            None
        }
        Err(e) => Some(format!("batch {k}: {e}")),
    });
    table(txn, report, OPEN_BATCHES, |client, id| match batches.get(&id) {
        None => Some(format!("client {client}'s open batch {id} is not stored")),
        Some(c) if c != client => Some(format!("client {client}'s open batch {id} belongs to {c}")),
        Some(_) => None,
    });
    let mut quarantine_bytes = 0u64;
    table(txn, report, QUARANTINE, |k, v| {
        quarantine_bytes += v.len() as u64;
        decodes::<StoredQuarantine>("quarantine entry", k, v)
    });
    table(txn, report, QUARANTINE_SUMMARY, |_, _| None);
    // The running total the retention limit reads instead of scanning (absent until the first
    // write transaction of a just-migrated store records it).
    if let Some(&recorded) = meta.get(K_QUARANTINE_BYTES)
        && recorded != quarantine_bytes
    {
        report.problem(
            "meta",
            format!("quarantine_bytes records {recorded} bytes, the quarantine holds {quarantine_bytes}"),
        );
    }
    let mut seen = HashMap::new();
    table(txn, report, SEEN, |(ns, key), at| {
        seen.insert((ns.to_owned(), key.to_vec()), at);
        None
    });
    let mut by_time = 0usize;
    table(txn, report, SEEN_BY_TIME, |(ns, at, key), ()| {
        by_time += 1;
        match seen.get(&(ns.to_owned(), key.to_vec())) {
            Some(&t) if t == at => None,
            Some(&t) => Some(format!("key in {ns} first seen at {at} here, at {t} in seen")),
            None => Some(format!("key in {ns} seen at {at} is not in seen")),
        }
    });
    if by_time != seen.len() {
        report.problem("seen_by_time", format!("{by_time} entries, seen has {}", seen.len()));
    }
    drop(seen);
    table(txn, report, BATCH_CONTENTS, |k, v| {
        decodes::<BatchContents>("batch contents", k, v)
    });
    table(txn, report, BILLED, |k, v| decodes::<Billed>("billed", k, v));
    table(txn, report, BILLED_READ_CHANGES, |k, v| {
        decodes::<BilledReadChange>("billed read change", k, v)
    });
    table(txn, report, API_TOKENS, |k, v| decodes::<ApiToken>("token", k, v));
    table(txn, report, GW_GATEWAYS, |k, v| {
        decodes::<GatewayState>("gateway", k, v)
    });
    table(txn, report, GW_INTERVALS, |_, _| None);
    table(txn, report, GW_TAMPER, |_, _| None);
    table(txn, report, GW_OUTBOX, |k, v| {
        decodes::<OutboxEntry>("outbox entry", k, v)
    });
    table(txn, report, ROUTE_ASSIGN, |_, _| None);
    table(txn, report, ROUTE_LOADS, |(r, at), v| {
        decodes::<RouteLoad>("route load", format!("{r}@{at}"), v)
    });
    table(txn, report, CRADLE_WATERMARK, |_, _| None);
    table(txn, report, ROUTE_SKIPS, |(r, m, s, q), v| {
        decodes::<RouteSkip>("route skip", format!("{r}/{m}/{s}/{q}"), v)
    });

    let mut audit: HashMap<u64, (u64, String)> = HashMap::new();
    table(txn, report, AUDIT, |k, v| {
        match decode::<AuditEntry>("audit entry", v) {
            Ok(e) => {
                audit.insert(k, (e.read_id, e.meter_id));
                None
            }
            Err(e) => Some(format!("entry {k}: {e}")),
        }
    });
    let audit_len = meta.get(K_AUDIT_LEN).copied().unwrap_or(0);
    if audit.len() as u64 != audit_len {
        report.problem(
            "audit",
            format!(
                "{} entries stored, {audit_len} recorded (`meterd audit verify` names them)",
                audit.len()
            ),
        );
    }
    table(txn, report, AUDIT_BY_READ, |(read, seq), ()| match audit.get(&seq) {
        Some((r, _)) if *r == read => None,
        Some((r, _)) => Some(format!("entry ({read}, {seq}): audit entry {seq} is of read {r}")),
        None => Some(format!("entry ({read}, {seq}): audit entry {seq} is not stored")),
    });
    table(txn, report, AUDIT_BY_METER, |(meter, seq), ()| match audit.get(&seq) {
        Some((_, m)) if m == meter => None,
        Some((_, m)) => Some(format!("entry ({meter}, {seq}): audit entry {seq} is of meter {m}")),
        None => Some(format!("entry ({meter}, {seq}): audit entry {seq} is not stored")),
    });
    table(txn, report, UNDO_SNAPSHOTS, |k, v| {
        decodes::<StoredRead>("undo snapshot", k, v)
    });
    table(txn, report, SERVICE_ORDERS, |k, v| {
        decodes::<ServiceOrder>("service order", k, v)
    });
    table(txn, report, METER_CHANGES, |(m, at), v| {
        decodes::<MeterChange>("meter change", format!("{m}@{at}"), v)
    });
    check_intervals(txn, report);
}

/// The interval tables (a store that predates them has none: nothing to check). Every day
/// decodes and is in the status index under its status, and the index names no other day.
fn check_intervals(txn: &redb::ReadTransaction, report: &mut CheckReport) {
    use crate::model::interval::{Channel, IntervalBatch, IntervalBatchContents, IntervalDay};
    use redb::TableHandle as _;
    // Listing the tables reads the table tree, which a damaged file may break: caught as
    // every table walk is (the other tables' walks report the damage).
    let present = match catch(|| {
        txn.list_tables()
            .map(|ts| ts.map(|t| t.name().to_owned()).collect::<HashSet<_>>())
    }) {
        Ok(Ok(names)) => names,
        _ => {
            report.problem("tables", "the list of tables cannot be read".to_owned());
            return;
        }
    };
    if !present.contains(IV_DAYS.name()) {
        return;
    }
    table(txn, report, IV_CHANNELS, |(m, c), v| {
        decodes::<Channel>("channel", format!("{m}/{c}"), v)
    });
    let mut statuses: HashMap<(String, String, i32), u8> = HashMap::new();
    table(txn, report, IV_DAYS, |(m, c, d), v| {
        match decode::<IntervalDay>("interval day", v) {
            Ok(day) => {
                statuses.insert((m.to_owned(), c.to_owned(), d), day.status.code());
                None
            }
            Err(e) => Some(format!("day {m}/{c}/{d}: {e}")),
        }
    });
    let mut indexed: HashSet<(String, String, i32)> = HashSet::new();
    table(txn, report, IV_STATUS, |(code, m, c, d), ()| {
        let key = (m.to_owned(), c.to_owned(), d);
        let found = statuses.get(&key).copied();
        indexed.insert(key);
        match found {
            Some(s) if s == code => None,
            Some(s) => Some(format!("entry ({code}, {m}/{c}/{d}): the day's status is {s}")),
            None => Some(format!("entry ({code}, {m}/{c}/{d}): no such day")),
        }
    });
    let unindexed = statuses.keys().filter(|k| !indexed.contains(*k)).count();
    if unindexed > 0 {
        report.problem("iv_status", format!("{unindexed} day(s) missing from the status index"));
    }
    table(txn, report, IV_BATCHES, |k, v| {
        decodes::<IntervalBatch>("interval batch", k, v)
    });
    table(txn, report, IV_BATCH_CONTENTS, |k, v| {
        decodes::<IntervalBatchContents>("interval batch contents", k, v)
    });
    table(txn, report, IV_OPEN_BATCHES, |_, _| None);
    table(txn, report, WMBUS_LAYOUTS, |_, _| None);
    table(txn, report, WMBUS_HELD, |k, v| {
        decodes::<crate::store::HeldTelegram>("held telegram", k, v)
    });
}
