//! `meterd store migrate --to postgresql://…`: an embedded store copied into an empty
//! PostgreSQL database, every table, ids preserved.
//!
//! The copy goes table by table, in chunks; each chunk is one transaction that also records
//! how far the copy got (`meterd_copy`), so a copy cut off (a kill, a lost connection) resumes
//! where it stopped when run again, and never copies a row twice. At the end the id sequences
//! are moved past the copied ids and the rows of every table are counted on both sides.

use super::rows::{ReadColumns, big, read_columns, read_unnest};
use super::{PgStore, PgTxn, params};
use crate::model::StoredRead;
use crate::store::postgres::partitions::{Month, Partitioned};
use crate::store::prelude::*;
use crate::store::{RedbStore, Result, StoreError};

/// Rows per transaction.
const CHUNK: usize = 5_000;

/// One table's rows on each side after the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedTable {
    pub table: &'static str,
    pub source: u64,
    pub target: u64,
}

/// What [`PgStore::copy_from`] did.
#[derive(Debug, Clone, Default)]
pub struct CopyReport {
    /// An earlier, interrupted copy was resumed.
    pub resumed: bool,
    pub tables: Vec<CopiedTable>,
}

impl CopyReport {
    /// Every table has as many rows in the copy as in the source.
    pub fn ok(&self) -> bool {
        self.tables.iter().all(|t| t.source == t.target)
    }
}

impl PgStore {
    /// Copies `source` into this (empty) database; resumes an interrupted copy. `progress`
    /// hears (table, rows copied so far, rows in all).
    pub fn copy_from(&self, source: &RedbStore, progress: &mut dyn FnMut(&str, u64, u64)) -> Result<CopyReport> {
        self.engine.with_client(|client| async move {
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS meterd_copy (step text PRIMARY KEY, position bigint NOT NULL, \
                     done boolean NOT NULL)",
                )
                .await
                .map_err(|e| StoreError::Engine(super::super::connect::error_text(&e)))
        })?;
        let resumed = {
            let txn = self.begin(false)?;
            let started = txn.row("reading copy progress", "SELECT count(*) FROM meterd_copy", params![])?;
            let started = started.map(|r| r.get::<_, i64>(0)).unwrap_or(0) > 0;
            if started && position(&txn, "sequences")?.is_none() {
                return Err(StoreError::Conflict(format!(
                    "{} holds a finished copy of a store already (it may be in use since): meterd copies into \
                     an empty database only",
                    self.target()
                )));
            }
            if !started {
                let used = txn.row(
                    "checking the database is empty",
                    "SELECT (SELECT count(*) FROM meters) + (SELECT count(*) FROM reads) + (SELECT count(*) FROM audit)",
                    params![],
                )?;
                let used = used.map(|r| r.get::<_, i64>(0)).unwrap_or(0);
                if used > 0 {
                    return Err(StoreError::Conflict(format!(
                        "{} is not empty ({used} meters, reads and audit entries) and holds no interrupted copy: \
                         meterd copies into an empty database only",
                        self.target()
                    )));
                }
            }
            started
        };
        let mut copy = Copy {
            store: self,
            source,
            progress,
        };
        copy.meters()?;
        copy.reads()?;
        copy.billing()?;
        copy.quarantine()?;
        copy.gateways()?;
        copy.cradles()?;
        copy.review()?;
        copy.intervals()?;
        copy.sequences()?;
        Ok(CopyReport {
            resumed,
            tables: self.count_against(source)?,
        })
    }

    /// Rows per table in `source` and here.
    pub fn count_against(&self, source: &RedbStore) -> Result<Vec<CopiedTable>> {
        let src = source.begin_read()?;
        let listings = source.listings()?;
        let iv = source.interval_listing()?;
        let txn = self.begin(false)?;
        let count = |sql: &'static str| -> Result<u64> {
            let row = txn.row("counting rows", sql, params![])?;
            big_to_u64(row.map(|r| r.get::<_, i64>(0)).unwrap_or(0))
        };
        let batches = src.batches(None)?;
        let meters = src.meters()?;
        let mut changes = 0u64;
        for m in &meters {
            changes += src.meter_changes(&m.meter_id)?.len() as u64;
        }
        let contents = batches
            .iter()
            .map(|b| src.batch_contents(b.id).map(|c| u64::from(c.is_some())))
            .sum::<Result<u64>>()?;
        let reads = src.all_reads()?;
        let billed = reads
            .iter()
            .map(|r| src.billed(r.id).map(|b| u64::from(b.is_some())))
            .sum::<Result<u64>>()?;
        Ok(vec![
            t("meters", meters.len() as u64, count("SELECT count(*) FROM meters")?),
            t("reads", reads.len() as u64, count("SELECT count(*) FROM reads")?),
            t("batches", batches.len() as u64, count("SELECT count(*) FROM batches")?),
            t(
                "batch_contents",
                contents,
                count("SELECT count(*) FROM batch_contents")?,
            ),
            t("billed", billed, count("SELECT count(*) FROM billed")?),
            t(
                "billed_read_changes",
                src.billed_read_changes()?.len() as u64,
                count("SELECT count(*) FROM billed_read_changes")?,
            ),
            t(
                "api_tokens",
                src.api_tokens()?.len() as u64,
                count("SELECT count(*) FROM api_tokens")?,
            ),
            t(
                "quarantine",
                src.quarantine_entries()?.len() as u64,
                count("SELECT count(*) FROM quarantine")?,
            ),
            t("seen", listings.seen.len() as u64, count("SELECT count(*) FROM seen")?),
            t(
                "gateways",
                src.gateways()?.len() as u64,
                count("SELECT count(*) FROM gateways")?,
            ),
            t(
                "interval_reads",
                listings.interval_reads.len() as u64,
                count("SELECT count(*) FROM interval_reads")?,
            ),
            t(
                "tamper_state",
                listings.tamper.len() as u64,
                count("SELECT count(*) FROM tamper_state")?,
            ),
            t("outbox", src.outbox_len()?, count("SELECT count(*) FROM outbox")?),
            t(
                "wmbus_layouts",
                src.wmbus_layouts()?.len() as u64,
                count("SELECT count(*) FROM wmbus_layouts")?,
            ),
            t(
                "wmbus_held",
                src.count_held_telegrams()?,
                count("SELECT count(*) FROM wmbus_held")?,
            ),
            t(
                "route_assignments",
                src.route_assignments()?.len() as u64,
                count("SELECT count(*) FROM route_assignments")?,
            ),
            t(
                "route_loads",
                src.route_loads()?.len() as u64,
                count("SELECT count(*) FROM route_loads")?,
            ),
            t(
                "cradle_watermarks",
                listings.watermarks.len() as u64,
                count("SELECT count(*) FROM cradle_watermarks")?,
            ),
            t(
                "route_skips",
                listings.route_skips.len() as u64,
                count("SELECT count(*) FROM route_skips")?,
            ),
            t("audit", src.audit_len()?, count("SELECT count(*) FROM audit")?),
            t(
                "service_orders",
                src.service_orders()?.len() as u64,
                count("SELECT count(*) FROM service_orders")?,
            ),
            t("meter_changes", changes, count("SELECT count(*) FROM meter_changes")?),
            t(
                "channels",
                iv.channels.len() as u64,
                count("SELECT count(*) FROM channels")?,
            ),
            t(
                "interval_days",
                iv.days.len() as u64,
                count("SELECT count(*) FROM interval_days")?,
            ),
            t(
                "interval_batches",
                iv.batches.len() as u64,
                count("SELECT count(*) FROM interval_batches")?,
            ),
            t(
                "interval_batch_contents",
                iv.contents.len() as u64,
                count("SELECT count(*) FROM interval_batch_contents")?,
            ),
        ])
    }
}

fn t(table: &'static str, source: u64, target: u64) -> CopiedTable {
    CopiedTable { table, source, target }
}

fn big_to_u64(v: i64) -> Result<u64> {
    super::rows::id(v)
}

struct Copy<'a> {
    store: &'a PgStore,
    source: &'a RedbStore,
    progress: &'a mut dyn FnMut(&str, u64, u64),
}

/// How far a step got: `None` when done.
fn position(txn: &PgTxn<'_>, step: &str) -> Result<Option<u64>> {
    let row = txn.row(
        "reading copy progress",
        "SELECT position, done FROM meterd_copy WHERE step = $1",
        params![step.to_owned()],
    )?;
    match row {
        None => Ok(Some(0)),
        Some(r) if r.get::<_, bool>(1) => Ok(None),
        Some(r) => big_to_u64(r.get::<_, i64>(0)).map(Some),
    }
}

fn record(txn: &PgTxn<'_>, step: &str, position: u64, done: bool) -> Result<()> {
    txn.exec(
        "recording copy progress",
        "INSERT INTO meterd_copy (step, position, done) VALUES ($1, $2, $3) \
         ON CONFLICT (step) DO UPDATE SET position = EXCLUDED.position, done = EXCLUDED.done",
        params![step.to_owned(), big(position)?, done],
    )?;
    Ok(())
}

impl Copy<'_> {
    /// Copies `items` in chunks from where `step` stopped, each chunk by `put` in one
    /// transaction with the step's progress.
    fn step<T>(
        &mut self,
        step: &'static str,
        items: &[T],
        mut put: impl FnMut(&mut PgTxn<'_>, &[T]) -> Result<()>,
    ) -> Result<()> {
        let start = {
            let txn = self.store.begin(false)?;
            match position(&txn, step)? {
                None => return Ok(()),
                Some(p) => usize::try_from(p).unwrap_or(usize::MAX).min(items.len()),
            }
        };
        let total = items.len() as u64;
        let mut at = start;
        loop {
            let end = (at + CHUNK).min(items.len());
            let mut txn = self.store.begin(true)?;
            put(&mut txn, &items[at..end])?;
            record(&txn, step, end as u64, end == items.len())?;
            Box::new(txn).commit()?;
            (self.progress)(step, end as u64, total);
            at = end;
            if at == items.len() {
                return Ok(());
            }
        }
    }

    fn meters(&mut self) -> Result<()> {
        let meters = self.source.begin_read()?.meters()?;
        self.step("meters", &meters, |txn, chunk| {
            chunk.iter().try_for_each(|m| txn.put_meter(m))
        })
    }

    fn reads(&mut self) -> Result<()> {
        let mut reads = self.source.begin_read()?.all_reads()?;
        reads.sort_by_key(|r| r.id);
        // Every month of the data gets its partition first (outside the transactions).
        let months: std::collections::BTreeSet<Month> = Month::of_all(reads.iter().map(|r| r.read.read_at))?;
        self.store
            .create_partitions(Partitioned::Reads, months.into_iter().collect())?;
        self.step("reads", &reads, copy_reads)
    }

    fn intervals(&mut self) -> Result<()> {
        let l = self.source.interval_listing()?;
        let months: std::collections::BTreeSet<Month> = l
            .days
            .iter()
            .map(|d| {
                Month::of_date(d.date)
                    .ok_or_else(|| StoreError::Engine(format!("date {} is outside the years 1 to 9998", d.date)))
            })
            .collect::<Result<_>>()?;
        self.store
            .create_partitions(Partitioned::IntervalDays, months.into_iter().collect())?;
        self.step("channels", &l.channels, |txn, chunk| {
            chunk.iter().try_for_each(|c| txn.put_channel(c))
        })?;
        self.step("interval_days", &l.days, |txn, chunk| txn.put_interval_days(chunk))?;
        self.step("interval_batches", &l.batches, |txn, chunk| {
            chunk.iter().try_for_each(|b| txn.put_interval_batch(b))
        })?;
        self.step("interval_batch_contents", &l.contents, |txn, chunk| {
            chunk
                .iter()
                .try_for_each(|(id, c)| txn.put_interval_batch_contents(*id, c))
        })?;
        self.step("open_interval_batches", &l.open_batches, |txn, chunk| {
            chunk
                .iter()
                .try_for_each(|(client, id)| txn.set_open_interval_batch(client, Some(*id)))
        })
    }

    fn billing(&mut self) -> Result<()> {
        let src = self.source.begin_read()?;
        let batches = src.batches(None)?;
        let mut contents = Vec::new();
        for b in &batches {
            if let Some(c) = src.batch_contents(b.id)? {
                contents.push((b.id, c));
            }
        }
        let mut billed = Vec::new();
        for r in src.all_reads()? {
            if let Some(b) = src.billed(r.id)? {
                billed.push((r.id, b));
            }
        }
        let changes = src.billed_read_changes()?;
        let tokens = src.api_tokens()?;
        drop(src);
        self.step("batches", &batches, |txn, chunk| {
            for b in chunk {
                txn.put_batch(b)?;
                if b.status == crate::model::BatchStatus::Open {
                    txn.set_open_batch(&b.client, Some(b.id))?;
                }
            }
            Ok(())
        })?;
        self.step("batch_contents", &contents, |txn, chunk| {
            chunk.iter().try_for_each(|(id, c)| txn.put_batch_contents(*id, c))
        })?;
        self.step("billed", &billed, |txn, chunk| txn.put_billed(chunk))?;
        self.step("billed_read_changes", &changes, |txn, chunk| {
            chunk.iter().try_for_each(|c| txn.put_billed_read_change(c))
        })?;
        self.step("api_tokens", &tokens, |txn, chunk| {
            chunk.iter().try_for_each(|t| txn.put_api_token(t))
        })
    }

    fn quarantine(&mut self) -> Result<()> {
        let src = self.source.begin_read()?;
        let entries = src.quarantine_entries()?;
        let summary = src.quarantine_summary()?;
        drop(src);
        self.step("quarantine", &entries, |txn, chunk| {
            chunk.iter().try_for_each(|(id, q)| txn.copy_quarantine_entry(*id, q))
        })?;
        self.step("quarantine_summary", &summary, |txn, chunk| {
            chunk.iter().try_for_each(|s| txn.copy_quarantine_summary(s))
        })
    }

    fn gateways(&mut self) -> Result<()> {
        let src = self.source.begin_read()?;
        let gateways = src.gateways()?;
        let outbox = src.outbox(0, usize::MAX)?;
        let layouts = src.wmbus_layouts()?;
        let held = src.held_telegrams()?;
        drop(src);
        self.step("wmbus_layouts", &layouts, |txn, chunk| {
            chunk.iter().try_for_each(|(k, l)| txn.put_wmbus_layout(k, l))
        })?;
        self.step("wmbus_held", &held, |txn, chunk| {
            chunk.iter().try_for_each(|(_, h)| txn.hold_telegram(h).map(drop))
        })?;
        let listings = self.source.listings()?;
        self.step("seen", &listings.seen, |txn, chunk| {
            chunk
                .iter()
                .try_for_each(|(ns, key, at)| txn.mark_seen(ns, key, *at).map(drop))
        })?;
        self.step("gateways", &gateways, |txn, chunk| {
            chunk.iter().try_for_each(|g| txn.put_gateway(g))
        })?;
        let months = Month::of_all(listings.interval_reads.iter().map(|(_, i)| i.end))?;
        self.store
            .create_partitions(Partitioned::IntervalReads, months.into_iter().collect())?;
        self.step("interval_reads", &listings.interval_reads, |txn, chunk| {
            chunk
                .iter()
                .try_for_each(|(meter, i)| txn.insert_interval_read(meter, i))
        })?;
        self.step("tamper_state", &listings.tamper, |txn, chunk| {
            chunk
                .iter()
                .try_for_each(|(endpoint, at, counters)| txn.set_tamper_state(endpoint, *at, *counters))
        })?;
        self.step("outbox", &outbox, |txn, chunk| {
            chunk.iter().try_for_each(|(id, e)| txn.copy_outbox_entry(*id, e))
        })
    }

    fn cradles(&mut self) -> Result<()> {
        let src = self.source.begin_read()?;
        let assignments = src.route_assignments()?;
        let loads = src.route_loads()?;
        drop(src);
        let listings = self.source.listings()?;
        self.step("route_assignments", &assignments, |txn, chunk| {
            chunk
                .iter()
                .try_for_each(|(route, serial)| txn.assign_route(route, Some(serial)))
        })?;
        self.step("route_loads", &loads, |txn, chunk| {
            chunk.iter().try_for_each(|l| txn.put_route_load(l))
        })?;
        self.step("cradle_watermarks", &listings.watermarks, |txn, chunk| {
            chunk
                .iter()
                .try_for_each(|(serial, seq)| txn.put_cradle_watermark(serial, *seq))
        })?;
        self.step("route_skips", &listings.route_skips, |txn, chunk| {
            chunk.iter().try_for_each(|s| txn.put_route_skip(s))
        })
    }

    fn review(&mut self) -> Result<()> {
        let src = self.source.begin_read()?;
        let mut audit = Vec::new();
        for (seq, entry) in src.audit_scan()? {
            let entry = entry.map_err(|e| {
                StoreError::Engine(format!(
                    "audit entry {seq} of the source does not decode ({e}); run `meterd audit verify` and \
                     `meterd store check` on it first: nothing of the audit trail was copied"
                ))
            })?;
            let before = src.undo_snapshot(seq)?;
            audit.push((entry, before));
        }
        let orders = src.service_orders()?;
        let mut changes = Vec::new();
        for m in src.meters()? {
            changes.extend(src.meter_changes(&m.meter_id)?);
        }
        drop(src);
        // In chain order: each entry becomes the tail the next one follows.
        self.step("audit", &audit, |txn, chunk| {
            chunk
                .iter()
                .try_for_each(|(e, before)| txn.insert_audit(e, before.as_ref()))
        })?;
        self.step("service_orders", &orders, |txn, chunk| {
            chunk.iter().try_for_each(|o| txn.put_service_order(o).map(drop))
        })?;
        self.step("meter_changes", &changes, |txn, chunk| {
            chunk.iter().try_for_each(|c| txn.put_meter_change(c))
        })
    }

    /// Moves every id sequence past the ids copied, so new rows never take a copied id.
    fn sequences(&mut self) -> Result<()> {
        // Each sequence continues after the source's own counter (ids of removed rows are not
        // given again) and after every copied id.
        let next = self.source.listings()?.next_ids;
        let counter = |key: &str| -> Result<i64> { big(next.iter().find(|(k, _)| *k == key).map_or(0, |(_, v)| *v)) };
        let txn = self.store.begin(true)?;
        txn.exec(
            "moving id sequences",
            "SELECT setval('read_ids', greatest((SELECT max(id) FROM reads) + 1, $1, 1), false), \
                    setval('batch_ids', greatest((SELECT max(id) FROM batches) + 1, $2, 1), false), \
                    setval('quarantine_ids', greatest((SELECT max(id) FROM quarantine) + 1, $3, 1), false), \
                    setval('outbox_ids', greatest((SELECT max(id) FROM outbox) + 1, $4, 1), false), \
                    setval('service_order_ids', greatest((SELECT max(id) FROM service_orders) + 1, $5, 1), false)",
            params![
                counter(crate::store::redb_engine::K_NEXT_READ)?,
                counter(crate::store::redb_engine::K_NEXT_BATCH)?,
                counter(crate::store::redb_engine::K_NEXT_QUARANTINE)?,
                counter(crate::store::redb_engine::K_NEXT_OUTBOX)?,
                counter(crate::store::redb_engine::K_NEXT_ORDER)?
            ],
        )?;
        record(&txn, "sequences", 1, true)?;
        Box::new(txn).commit()
    }
}

/// Reads stored with their own ids (the copy keeps every id).
fn copy_reads(txn: &mut PgTxn<'_>, reads: &[StoredRead]) -> Result<()> {
    let mut columns = ReadColumns::with_capacity(reads.len());
    for r in reads {
        columns.push(r)?;
    }
    txn.exec(
        "copying reads",
        concat!(
            "INSERT INTO reads (",
            read_columns!(),
            ") SELECT * FROM ",
            read_unnest!(),
            " ON CONFLICT DO NOTHING"
        ),
        columns.into_params(),
    )?;
    Ok(())
}

// Quarantine entries and outbox messages keep their ids too; the quarantine's running totals
// are counted as entries arrive, as `quarantine` does, without trimming (the source kept them).
impl PgTxn<'_> {
    fn copy_quarantine_entry(&mut self, id: u64, q: &crate::model::StoredQuarantine) -> Result<()> {
        let len = big(super::quarantine::stored_bytes(q)?)?;
        let r = q.resolution.as_ref();
        self.exec(
            "copying a quarantine entry",
            "INSERT INTO quarantine (id, source, reason, payload, received_at, size, sha256, stored_bytes, \
               resolved_at, resolved_by, resolution_reads, resolution_outcome) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            params![
                big(id)?,
                q.entry.source.clone(),
                q.entry.reason.clone(),
                q.entry.payload.clone(),
                q.entry.received_at,
                big(q.size)?,
                q.sha256.to_vec(),
                len,
                r.map(|r| r.at),
                r.map(|r| r.by.clone()),
                r.map(|r| super::rows::json(&r.reads)).transpose()?,
                r.map(|r| r.outcome.clone())
            ],
        )?;
        self.exec(
            "counting a copied quarantine entry",
            "UPDATE quarantine_usage SET entries = entries + 1, bytes = bytes + $1 WHERE id = 1",
            params![len],
        )?;
        Ok(())
    }

    fn copy_quarantine_summary(&mut self, s: &crate::model::QuarantineSummary) -> Result<()> {
        self.exec(
            "copying the quarantine summary",
            "INSERT INTO quarantine_summary (source_class, reason_class, entries, bytes, oldest, newest) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            params![
                s.source.clone(),
                s.reason.clone(),
                big(s.count)?,
                big(s.bytes)?,
                s.oldest,
                s.newest
            ],
        )?;
        Ok(())
    }

    fn copy_outbox_entry(&mut self, id: u64, e: &crate::model::OutboxEntry) -> Result<()> {
        self.exec(
            "copying an outbox message",
            "INSERT INTO outbox (id, topic, payload) VALUES ($1, $2, $3)",
            params![big(id)?, e.topic.clone(), e.payload.clone()],
        )?;
        Ok(())
    }
}
