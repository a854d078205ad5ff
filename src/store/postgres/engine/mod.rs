//! The store traits on PostgreSQL: one file per area, as the traits are.
//!
//! A transaction is one pooled connection inside `BEGIN … COMMIT`. Write transactions run at
//! READ COMMITTED and take row locks where a rule needs one writer at a time (the meters VEE
//! validates, a billing client's open batch, the audit chain's tail): what CockroachDB and
//! YugabyteDB accept too, unlike advisory locks. Read transactions are REPEATABLE READ READ
//! ONLY: one snapshot, as the embedded store gives. A statement that fails for a reason worth
//! retrying (serialisation failure, deadlock, lost connection) comes back as
//! [`StoreError::Retry`] or [`StoreError::Unavailable`]; the transaction is then rolled back
//! and the caller runs it again from the start ([`crate::store::retry`]).

mod billing;
mod copy;
mod cradles;
mod gateways;
mod intervals;
mod meters;
mod quarantine;
mod reads;
mod review;
mod rows;
mod wmbus;

pub use copy::{CopiedTable, CopyReport};

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::config::StoreConfig;
use super::connect::{PgEngine, query_error};
use super::partitions::{Month, Partitioned};
use crate::store::check::CheckReport;
use crate::store::{QuarantineLimits, ReadTxn, Result, Store, StoreError, WriteTxn};

/// A statement parameter, owned: it travels to the engine's runtime with the statement.
pub(super) type Param = Box<dyn ToSql + Sync + Send>;

/// Boxes statement parameters: `params![a, b]`.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        vec![$(Box::new($p) as $crate::store::postgres::engine::Param),*]
    };
}
pub(super) use params;

/// The PostgreSQL store.
pub struct PgStore {
    engine: PgEngine,
    limits: Mutex<QuarantineLimits>,
    /// Month partitions a transaction found missing after it had used the partitioned
    /// table: made before the next write transaction begins (see [`PgTxn::ensure_months`]).
    pending: Mutex<BTreeSet<(Partitioned, Month)>>,
    /// What [`Store::describe`] answers: hosts and database, no credentials.
    shown: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.engine.target())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects, checks the server and brings the schema up to date
    /// ([`PgEngine::connect`]), and makes the month partitions of now and the months ahead.
    pub fn open(config: &StoreConfig) -> Result<PgStore> {
        let engine = PgEngine::connect(config)?;
        let store = PgStore {
            engine,
            limits: Mutex::new(QuarantineLimits::default()),
            pending: Mutex::new(BTreeSet::new()),
            shown: format!(
                "postgresql {}",
                crate::store::open::server_shown(config.url.as_deref().unwrap_or_default())
            ),
        };
        store.ensure_partitions_ahead(jiff::Timestamp::now())?;
        Ok(store)
    }

    /// `database meterd on db1:5432`: how messages name this store.
    pub fn target(&self) -> &str {
        self.engine.target()
    }

    pub fn engine(&self) -> &PgEngine {
        &self.engine
    }

    pub fn set_quarantine_limits(&self, limits: QuarantineLimits) {
        *self.limits.lock().unwrap_or_else(|p| p.into_inner()) = limits;
    }

    pub fn quarantine_limits(&self) -> QuarantineLimits {
        *self.limits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates the month partitions of `now`'s month and the next [`MONTHS_AHEAD`], outside
    /// any transaction (a `CREATE … PARTITION OF` waits for every transaction using the
    /// table: inside one of ours it would wait on itself). Other months are made when a
    /// transaction first needs them ([`PgTxn::ensure_months`]); `meterd store migrate` makes
    /// the months of the data it copies.
    pub fn ensure_partitions_ahead(&self, now: jiff::Timestamp) -> Result<()> {
        let Some(first) = Month::of(now) else { return Ok(()) };
        let months: Vec<Month> = std::iter::successors(Some(first), |m| m.following())
            .take(MONTHS_AHEAD + 1)
            .collect();
        let partitions = self.engine.partitions().clone();
        self.engine.with_client(move |client| async move {
            partitions.load(&client).await?;
            for table in Partitioned::ALL {
                partitions.ensure(&client, table, months.iter().copied()).await?;
            }
            Ok(())
        })
    }

    /// Makes the month partitions of reads at `times` now, before a write transaction needs
    /// them (an import that knows its reads' times; otherwise the first transaction into a new
    /// month is run twice, see [`PgTxn::ensure_months`]).
    pub fn prepare_months(&self, times: impl IntoIterator<Item = jiff::Timestamp>) -> Result<()> {
        self.prepare_months_of(Partitioned::Reads, times)
    }

    /// [`PgStore::prepare_months`] for either partitioned table.
    pub fn prepare_months_of(
        &self,
        table: Partitioned,
        times: impl IntoIterator<Item = jiff::Timestamp>,
    ) -> Result<()> {
        self.ensure_month_set(table, Month::of_all(times)?)
    }

    /// [`PgTxn::ensure_months`] for months already known (local days' months).
    pub(super) fn ensure_month_set(&self, table: Partitioned, months: BTreeSet<Month>) -> Result<()> {
        let missing = self.engine.partitions().missing(table, months);
        if missing.is_empty() {
            return Ok(());
        }
        self.create_partitions(table, missing)
    }

    /// Creates month partitions of `table` on a connection of its own, outside any
    /// transaction of ours. A bounded lock wait: the `CREATE` waits for every transaction
    /// using the table.
    fn create_partitions(&self, table: Partitioned, months: Vec<Month>) -> Result<()> {
        let partitions = self.engine.partitions().clone();
        self.engine.with_client(move |client| async move {
            client
                .batch_execute("SET lock_timeout = '10s'")
                .await
                .map_err(|e| StoreError::Engine(super::connect::error_text(&e)))?;
            let done = partitions.ensure(&client, table, months).await;
            let _ = client.batch_execute("RESET lock_timeout").await;
            done
        })
    }

    fn begin(&self, write: bool) -> Result<PgTxn<'_>> {
        if write {
            let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
            for (table, month) in pending {
                self.create_partitions(table, vec![month])?;
            }
        }
        let pool = self.engine.pool().clone();
        let hosts = self.engine.hosts().to_owned();
        let begin = if write {
            "BEGIN ISOLATION LEVEL READ COMMITTED"
        } else {
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        };
        let target = self.engine.target().to_owned();
        let client = self.engine.bridge().run(async move {
            let client = pool.get().await.map_err(|e| StoreError::Unavailable {
                host: hosts.clone(),
                detail: e.to_string(),
            })?;
            client
                .batch_execute(begin)
                .await
                .map_err(|e| query_error(&target, "beginning a transaction", &e))?;
            Ok(client)
        })?;
        Ok(PgTxn {
            store: self,
            client: Some(Arc::new(client)),
            limits: self.quarantine_limits(),
            touched_partitioned: std::cell::Cell::new(false),
            server_gone: std::cell::Cell::new(false),
        })
    }
}

/// Months of partitions made ahead of time.
const MONTHS_AHEAD: usize = 2;

impl Store for PgStore {
    fn begin_read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        Ok(Box::new(self.begin(false)?))
    }

    fn begin_write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        Ok(Box::new(self.begin(true)?))
    }

    fn check(&self) -> Result<CheckReport> {
        check::check(self)
    }

    fn backup(&self) -> Result<Vec<u8>> {
        Err(StoreError::Engine(format!(
            "{} is a PostgreSQL store: back it up with the server's tools (pg_dump, or pgBackRest/Barman \
             with a standby), see docs/operating.md \"Backups\"",
            self.target()
        )))
    }

    fn set_quarantine_limits(&self, limits: QuarantineLimits) {
        PgStore::set_quarantine_limits(self, limits)
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }
}

mod check;

/// Whether `sql` names a partitioned table (as a whole word: `resolution_reads` is a column).
fn uses_partitioned(sql: &str) -> bool {
    sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| Partitioned::ALL.iter().any(|t| t.table() == word))
}

#[cfg(test)]
mod tests {
    #[test]
    fn statements_on_partitioned_tables_are_told_from_others() {
        for sql in [
            "SELECT id FROM reads WHERE id = $1",
            "INSERT INTO interval_reads (meter_id) VALUES ($1)",
            "UPDATE reads SET status = $1",
            "SELECT 1 FROM meters m JOIN reads r ON r.meter_id = m.meter_id",
        ] {
            assert!(super::uses_partitioned(sql), "{sql}");
        }
        for sql in [
            "SELECT resolution_reads FROM quarantine",
            "SELECT count(*) FROM reads_y2026m01",
            "UPDATE batches SET read_ids = $1",
        ] {
            assert!(!super::uses_partitioned(sql), "{sql}");
        }
    }
}

/// One transaction: a pooled connection inside `BEGIN`, rolled back unless committed.
pub(super) struct PgTxn<'s> {
    store: &'s PgStore,
    /// `None` once committed or rolled back.
    client: Option<Arc<deadpool_postgres::Object>>,
    limits: QuarantineLimits,
    /// Whether a statement of this transaction used a partitioned table (it then holds a
    /// lock that a `CREATE … PARTITION OF` would wait for).
    touched_partitioned: std::cell::Cell<bool>,
    /// Whether a statement found the server gone or no longer a primary: the connection is
    /// then dropped, not given back to the pool (a demoted primary keeps answering 25006).
    server_gone: std::cell::Cell<bool>,
}

impl PgTxn<'_> {
    fn client(&self) -> Result<Arc<deadpool_postgres::Object>> {
        self.client
            .clone()
            .ok_or_else(|| StoreError::Engine("the transaction has ended".into()))
    }

    /// Makes sure the month partitions of `times` exist before rows of them are written. A
    /// transaction that has not used the partitioned tables yet makes them at once (on another
    /// connection); one that has would wait on its own lock, so it asks to be run again
    /// ([`StoreError::Retry`]) and the partitions are made before the next write transaction
    /// begins. Once a month exists this costs nothing (remembered in memory).
    pub(super) fn ensure_months(
        &self,
        table: Partitioned,
        times: impl IntoIterator<Item = jiff::Timestamp>,
    ) -> Result<()> {
        self.ensure_month_set(table, Month::of_all(times)?)
    }

    /// [`PgTxn::ensure_months`] for months already known (local days' months).
    pub(super) fn ensure_month_set(&self, table: Partitioned, months: BTreeSet<Month>) -> Result<()> {
        let missing = self.store.engine.partitions().missing(table, months);
        if missing.is_empty() {
            return Ok(());
        }
        if !self.touched_partitioned.get() {
            return self.store.create_partitions(table, missing);
        }
        let shown: Vec<String> = missing.iter().map(|m| m.partition_name(table)).collect();
        self.store
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(missing.into_iter().map(|m| (table, m)));
        Err(StoreError::Retry(format!(
            "partition {} is made before the transaction runs again",
            shown.join(", ")
        )))
    }

    fn note_statement(&self, sql: &str) {
        if uses_partitioned(sql) {
            self.touched_partitioned.set(true);
        }
    }

    /// Runs one statement and returns its rows.
    pub(super) fn rows(&self, doing: &'static str, sql: &'static str, params: Vec<Param>) -> Result<Vec<Row>> {
        match self.statement(doing, sql, params, Answer::Rows)? {
            Answered::Rows(rows) => Ok(rows),
            Answered::Count(_) => Err(StoreError::Engine(format!("{doing}: no rows came back"))),
        }
    }

    /// Runs one statement that returns at most one row.
    pub(super) fn row(&self, doing: &'static str, sql: &'static str, params: Vec<Param>) -> Result<Option<Row>> {
        Ok(self.rows(doing, sql, params)?.into_iter().next())
    }

    /// Runs one statement and returns the number of rows it changed.
    pub(super) fn exec(&self, doing: &'static str, sql: &'static str, params: Vec<Param>) -> Result<u64> {
        match self.statement(doing, sql, params, Answer::Count)? {
            Answered::Count(n) => Ok(n),
            Answered::Rows(_) => Err(StoreError::Engine(format!("{doing}: no row count came back"))),
        }
    }

    /// Prepares `sql` (cached per connection), runs it with `params` in this transaction and
    /// answers as asked; notes what [`PgTxn::rows`] and [`PgTxn::exec`] both track (a
    /// partitioned table used, the server gone).
    fn statement(
        &self,
        doing: &'static str,
        sql: &'static str,
        params: Vec<Param>,
        answer: Answer,
    ) -> Result<Answered> {
        self.note_statement(sql);
        let client = self.client()?;
        let target = self.store.engine.target().to_owned();
        self.store
            .engine
            .bridge()
            .run(async move {
                let stmt = client
                    .prepare_cached(sql)
                    .await
                    .map_err(|e| query_error(&target, doing, &e))?;
                let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
                match answer {
                    Answer::Rows => client.query(&stmt, &refs).await.map(Answered::Rows),
                    Answer::Count => client.execute(&stmt, &refs).await.map(Answered::Count),
                }
                .map_err(|e| query_error(&target, doing, &e))
            })
            .inspect_err(|e| self.note_error(e))
    }

    fn note_error(&self, e: &StoreError) {
        if matches!(e, StoreError::Unavailable { .. }) {
            self.server_gone.set(true);
        }
    }

    /// Takes `n` fresh ids of a sequence, in increasing order.
    pub(super) fn next_ids(&self, sequence: Sequence, n: usize) -> Result<Vec<u64>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let sql = match sequence {
            Sequence::Reads => "SELECT nextval('read_ids') FROM generate_series(1, $1::bigint)",
            Sequence::Batches => "SELECT nextval('batch_ids') FROM generate_series(1, $1::bigint)",
            Sequence::Quarantine => "SELECT nextval('quarantine_ids') FROM generate_series(1, $1::bigint)",
            Sequence::Outbox => "SELECT nextval('outbox_ids') FROM generate_series(1, $1::bigint)",
            Sequence::ServiceOrders => "SELECT nextval('service_order_ids') FROM generate_series(1, $1::bigint)",
        };
        let mut ids = self
            .rows("taking ids", sql, params![n as i64])?
            .iter()
            .map(|r| rows::id(r.get::<_, i64>(0)))
            .collect::<Result<Vec<u64>>>()?;
        ids.sort_unstable();
        Ok(ids)
    }

    fn end(&mut self, sql: &'static str) -> Result<()> {
        let Some(client) = self.client.take() else {
            return Ok(());
        };
        let target = self.store.engine.target().to_owned();
        let doing = if sql == "COMMIT" { "committing" } else { "rolling back" };
        self.store.engine.bridge().run(async move {
            client
                .batch_execute(sql)
                .await
                .map_err(|e| query_error(&target, doing, &e))
        })
    }
}

/// What a statement should answer: its rows, or how many rows it changed.
#[derive(Clone, Copy)]
enum Answer {
    Rows,
    Count,
}

enum Answered {
    Rows(Vec<Row>),
    Count(u64),
}

/// The id sequences of the schema.
#[derive(Debug, Clone, Copy)]
pub(super) enum Sequence {
    Reads,
    Batches,
    Quarantine,
    Outbox,
    ServiceOrders,
}

impl Drop for PgTxn<'_> {
    fn drop(&mut self) {
        if self.server_gone.get()
            && let Some(client) = self.client.take()
        {
            if let Ok(object) = Arc::try_unwrap(client) {
                drop(deadpool_postgres::Object::take(object));
            }
            return;
        }
        if let Some(client) = self.client.clone()
            && self.end("ROLLBACK").is_err()
        {
            // The connection is in an unknown state: it must not go back to the pool.
            if let Ok(object) = Arc::try_unwrap(client) {
                drop(deadpool_postgres::Object::take(object));
            }
        }
    }
}

impl WriteTxn for PgTxn<'_> {
    fn commit(mut self: Box<Self>) -> Result<()> {
        // With synchronous_commit on (the server's default), COMMIT returns once the WAL is
        // flushed, and on the synchronous standby too when one is configured.
        self.end("COMMIT")
    }
}
