//! Reads on PostgreSQL: the partitioned `reads` table and its three indexes (by id, by meter
//! and time with the history summary included, by status).

use jiff::Timestamp;

use super::rows::{
    ReadColumns, big, bound, column, id, limit, quantity, read_columns, read_of, read_unnest, status, status_code,
};
use super::{PgTxn, Sequence, params};
use crate::model::{BatchId, ReadId, ReadStatus, ReadSummary, StoredRead};
use crate::store::postgres::partitions::Partitioned;
use crate::store::{HistoryQuery, ReadQueries, ReadWrites, Result, StoreError};

impl ReadQueries for PgTxn<'_> {
    fn read(&self, read_id: ReadId) -> Result<Option<StoredRead>> {
        self.row(
            "reading a read",
            concat!("SELECT ", read_columns!(), " FROM reads WHERE id = $1"),
            params![big(read_id)?],
        )?
        .as_ref()
        .map(read_of)
        .transpose()
    }

    fn meter_histories(&self, queries: &[HistoryQuery<'_>]) -> Result<Vec<Vec<ReadSummary>>> {
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let meters: Vec<String> = queries.iter().map(|q| q.meter_id.to_owned()).collect();
        let froms: Vec<Timestamp> = queries.iter().map(|q| bound(q.from)).collect();
        let tos: Vec<Timestamp> = queries.iter().map(|q| bound(q.to.max(q.from))).collect();
        // One statement for the whole group: per meter, its latest read before the window that
        // counts as history, then the window; both index-only scans of reads_meter_time.
        let rows = self.rows(
            "reading meter histories",
            "SELECT q.n, h.id, h.read_at, h.value, h.consumption, h.status, h.excluded \
             FROM UNNEST($1::text[], $2::timestamptz[], $3::timestamptz[]) WITH ORDINALITY AS q(meter_id, f, t, n) \
             CROSS JOIN LATERAL ( \
               (SELECT id, read_at, value, consumption, status, excluded FROM reads \
                 WHERE meter_id = q.meter_id AND read_at < q.f AND status <> $4 AND NOT excluded \
                 ORDER BY read_at DESC, id DESC LIMIT 1) \
               UNION ALL \
               (SELECT id, read_at, value, consumption, status, excluded FROM reads \
                 WHERE meter_id = q.meter_id AND read_at >= q.f AND read_at < q.t) \
             ) h \
             ORDER BY q.n, h.read_at, h.id",
            params![meters, froms, tos, status_code(ReadStatus::Rejected)],
        )?;
        let mut out = vec![Vec::new(); queries.len()];
        for row in &rows {
            let n: i64 = row.try_get(0).map_err(column)?;
            let slot = usize::try_from(n - 1)
                .ok()
                .and_then(|i| out.get_mut(i))
                .ok_or_else(|| StoreError::Engine(format!("history row for query {n} of {}", queries.len())))?;
            slot.push(ReadSummary {
                id: id(row.try_get(1).map_err(column)?)?,
                read_at: row.try_get(2).map_err(column)?,
                value: quantity(row.try_get(3).map_err(column)?),
                consumption: row.try_get::<_, Option<i64>>(4).map_err(column)?.map(quantity),
                status: status(row.try_get(5).map_err(column)?)?,
                excluded: row.try_get(6).map_err(column)?,
            });
        }
        Ok(out)
    }

    fn meter_reads(&self, meter_id: &str, from: Timestamp, to: Timestamp) -> Result<Vec<StoredRead>> {
        self.rows(
            "reading a meter's reads",
            concat!(
                "SELECT ",
                read_columns!(),
                " FROM reads WHERE meter_id = $1 AND read_at >= $2 AND read_at < $3 ORDER BY read_at, id"
            ),
            params![meter_id.to_owned(), bound(from), bound(to)],
        )?
        .iter()
        .map(read_of)
        .collect()
    }

    fn meter_reads_before(&self, meter_id: &str, before: Timestamp, max: usize) -> Result<Vec<StoredRead>> {
        self.rows(
            "reading a meter's earlier reads",
            concat!(
                "SELECT ",
                read_columns!(),
                " FROM reads WHERE meter_id = $1 AND read_at < $2 ORDER BY read_at DESC, id DESC LIMIT $3"
            ),
            params![meter_id.to_owned(), bound(before), limit(max)],
        )?
        .iter()
        .map(read_of)
        .collect()
    }

    fn all_reads(&self) -> Result<Vec<StoredRead>> {
        self.rows(
            "reading every read",
            concat!("SELECT ", read_columns!(), " FROM reads ORDER BY meter_id, read_at, id"),
            params![],
        )?
        .iter()
        .map(read_of)
        .collect()
    }

    fn reads_with_status(&self, wanted: ReadStatus, max: usize) -> Result<Vec<StoredRead>> {
        self.rows(
            "reading reads by status",
            concat!(
                "SELECT ",
                read_columns!(),
                " FROM reads WHERE status = $1 ORDER BY id LIMIT $2"
            ),
            params![status_code(wanted), limit(max)],
        )?
        .iter()
        .map(read_of)
        .collect()
    }

    fn count_reads(&self) -> Result<u64> {
        let row = self.row("counting reads", "SELECT count(*) FROM reads", params![])?;
        id(row.map(|r| r.get::<_, i64>(0)).unwrap_or(0))
    }

    fn count_reads_by_status(&self) -> Result<Vec<(ReadStatus, u64)>> {
        let mut counts = std::collections::HashMap::new();
        for row in self.rows(
            "counting reads by status",
            "SELECT status, count(*) FROM reads GROUP BY status",
            params![],
        )? {
            counts.insert(
                status(row.try_get(0).map_err(column)?)?,
                id(row.try_get(1).map_err(column)?)?,
            );
        }
        Ok(ReadStatus::ALL
            .into_iter()
            .map(|s| (s, counts.get(&s).copied().unwrap_or(0)))
            .collect())
    }
}

impl ReadWrites for PgTxn<'_> {
    fn insert_reads(&mut self, reads: &mut [StoredRead]) -> Result<Vec<ReadId>> {
        if reads.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_months(Partitioned::Reads, reads.iter().map(|r| r.read.read_at))?;
        let ids = self.next_ids(Sequence::Reads, reads.len())?;
        let mut columns = ReadColumns::with_capacity(reads.len());
        for (r, id) in reads.iter_mut().zip(&ids) {
            r.id = *id;
            columns.push(r)?;
        }
        self.exec(
            "storing reads",
            concat!(
                "INSERT INTO reads (",
                read_columns!(),
                ") SELECT * FROM ",
                read_unnest!()
            ),
            columns.into_params(),
        )?;
        Ok(ids)
    }

    fn replace_reads(&mut self, reads: &[StoredRead]) -> Result<Vec<StoredRead>> {
        if reads.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_months(Partitioned::Reads, reads.iter().map(|r| r.read.read_at))?;
        let ids: Vec<i64> = reads.iter().map(|r| big(r.id)).collect::<Result<_>>()?;
        let mut olds: std::collections::HashMap<ReadId, StoredRead> = self
            .rows(
                "reading reads to change",
                concat!("SELECT ", read_columns!(), " FROM reads WHERE id = ANY($1) FOR UPDATE"),
                params![ids],
            )?
            .iter()
            .map(|row| read_of(row).map(|r| (r.id, r)))
            .collect::<Result<_>>()?;
        let mut before = Vec::with_capacity(reads.len());
        let mut columns = ReadColumns::with_capacity(reads.len());
        for r in reads {
            // A read given twice changes twice; the first "before" is the stored one.
            let old = match olds.get(&r.id) {
                Some(o) => o.clone(),
                None => {
                    return Err(StoreError::NotFound {
                        what: "read",
                        id: r.id.to_string(),
                    });
                }
            };
            olds.insert(r.id, r.clone());
            before.push(old);
            columns.push(r)?;
        }
        // One statement for the group; a new time moves the row to its month's partition.
        self.exec(
            "changing reads",
            concat!(
                "UPDATE reads SET meter_id = u.meter_id, read_at = u.read_at, value = u.value, raw = u.raw, \
                 read_type = u.read_type, codes = u.codes, reader = u.reader, origin_kind = u.origin_kind, \
                 origin_source = u.origin_source, origin_locator = u.origin_locator, status = u.status, \
                 flags = u.flags, consumption = u.consumption, excluded = u.excluded, received_at = u.received_at, \
                 batch_id = u.batch_id FROM ",
                read_unnest!(),
                " AS u(",
                read_columns!(),
                ") WHERE reads.id = u.id"
            ),
            columns.into_params(),
        )?;
        Ok(before)
    }

    fn store_billing_state(&mut self, reads: &mut [StoredRead], new: ReadStatus, batch: BatchId) -> Result<()> {
        if reads.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = reads.iter().map(|r| big(r.id)).collect::<Result<_>>()?;
        let carried: Vec<i16> = reads.iter().map(|r| status_code(r.status)).collect();
        let batch_id = big(batch)?;
        // Only rows still as the caller read them change: another instance that batched or
        // edited one meanwhile makes the count fall short, and the transaction is dropped.
        let changed = self.exec(
            "setting billing state",
            "UPDATE reads SET status = $1, batch_id = $2 \
             FROM UNNEST($3::bigint[], $4::smallint[]) AS u(id, carried) \
             WHERE reads.id = u.id AND reads.status = u.carried \
               AND (reads.batch_id IS NULL OR reads.batch_id = $2)",
            params![status_code(new), batch_id, ids, carried],
        )?;
        if changed != reads.len() as u64 {
            return Err(StoreError::Conflict(format!(
                "{} of {} reads changed since they were read; billing state not set",
                reads.len() as u64 - changed.min(reads.len() as u64),
                reads.len()
            )));
        }
        for r in reads.iter_mut() {
            r.status = new;
            r.batch = Some(batch);
        }
        Ok(())
    }
}
