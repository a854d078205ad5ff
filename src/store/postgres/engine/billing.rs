//! Billing on PostgreSQL: batches, their frozen contents, what billing received per read, reads
//! changed after billing had them, API tokens.

use tokio_postgres::Row;

use super::rows::{big, column, from_json, id, json, name, named, quantity, status, status_code};
use super::{PgTxn, Sequence, params};
use crate::model::billing::{ApiToken, BatchContents, Billed, BilledReadChange};
use crate::model::{Batch, BatchId, BatchStatus, ReadId};
use crate::store::{BillingQueries, BillingWrites, Result, StoreError};

fn batch_of(row: &Row) -> Result<Batch> {
    let read_ids: Vec<i64> = row.try_get("read_ids").map_err(column)?;
    Ok(Batch {
        id: id(row.try_get("id").map_err(column)?)?,
        client: row.try_get("client").map_err(column)?,
        read_ids: read_ids.into_iter().map(id).collect::<Result<_>>()?,
        status: named("batch status", row.try_get("status").map_err(column)?)?,
        created_at: row.try_get("created_at").map_err(column)?,
        acked_at: row.try_get("acked_at").map_err(column)?,
    })
}

fn billed_of(row: &Row) -> Result<Billed> {
    Ok(Billed {
        batch: id(row.try_get("batch_id").map_err(column)?)?,
        value: quantity(row.try_get("value").map_err(column)?),
        read_at: row.try_get("read_at").map_err(column)?,
        withdrawn: row.try_get("withdrawn").map_err(column)?,
    })
}

fn change_of(row: &Row) -> Result<BilledReadChange> {
    let batch: Option<i64> = row.try_get("billed_batch_id").map_err(column)?;
    let value: Option<i64> = row.try_get("billed_value").map_err(column)?;
    let read_at: Option<jiff::Timestamp> = row.try_get("billed_read_at").map_err(column)?;
    let withdrawn: Option<bool> = row.try_get("billed_withdrawn").map_err(column)?;
    let billed = match (batch, value, read_at, withdrawn) {
        (Some(b), Some(v), Some(at), Some(w)) => Some(Billed {
            batch: id(b)?,
            value: quantity(v),
            read_at: at,
            withdrawn: w,
        }),
        (None, None, None, None) => None,
        _ => {
            return Err(StoreError::Corrupt {
                what: "billed read change",
                detail: "billed columns partly empty".into(),
            });
        }
    };
    Ok(BilledReadChange {
        read_id: id(row.try_get("read_id").map_err(column)?)?,
        meter_id: row.try_get("meter_id").map_err(column)?,
        billed,
        original_status: status(row.try_get("original_status").map_err(column)?)?,
        original_consumption: row
            .try_get::<_, Option<i64>>("original_consumption")
            .map_err(column)?
            .map(quantity),
        reason: row.try_get("reason").map_err(column)?,
        by: row.try_get("changed_by").map_err(column)?,
        at: row.try_get("changed_at").map_err(column)?,
        audit_seq: row
            .try_get::<_, Option<i64>>("audit_seq")
            .map_err(column)?
            .map(id)
            .transpose()?,
        correction_due: row.try_get("correction_due").map_err(column)?,
    })
}

fn token_of(row: &Row) -> Result<ApiToken> {
    let sha: Vec<u8> = row.try_get("sha256").map_err(column)?;
    Ok(ApiToken {
        name: row.try_get("name").map_err(column)?,
        sha256: sha.try_into().map_err(|_| StoreError::Corrupt {
            what: "api token",
            detail: "sha256 is not 32 bytes".into(),
        })?,
        created_at: row.try_get("created_at").map_err(column)?,
        revoked_at: row.try_get("revoked_at").map_err(column)?,
    })
}

impl BillingQueries for PgTxn<'_> {
    fn batch(&self, id: BatchId) -> Result<Option<Batch>> {
        self.row(
            "reading a batch",
            "SELECT id, client, read_ids, status, created_at, acked_at FROM batches WHERE id = $1",
            params![big(id)?],
        )?
        .as_ref()
        .map(batch_of)
        .transpose()
    }

    fn open_batch(&self, client: &str) -> Result<Option<Batch>> {
        self.row(
            "reading a client's open batch",
            "SELECT b.id, b.client, b.read_ids, b.status, b.created_at, b.acked_at \
             FROM open_batches o JOIN batches b ON b.id = o.batch_id WHERE o.client = $1",
            params![client.to_owned()],
        )?
        .as_ref()
        .map(batch_of)
        .transpose()
    }

    fn batches(&self, status: Option<BatchStatus>) -> Result<Vec<Batch>> {
        let rows = match status {
            Some(s) => self.rows(
                "listing batches",
                "SELECT id, client, read_ids, status, created_at, acked_at FROM batches WHERE status = $1 ORDER BY id",
                params![name(&s)],
            )?,
            None => self.rows(
                "listing batches",
                "SELECT id, client, read_ids, status, created_at, acked_at FROM batches ORDER BY id",
                params![],
            )?,
        };
        rows.iter().map(batch_of).collect()
    }

    fn batch_contents(&self, id: BatchId) -> Result<Option<BatchContents>> {
        self.row(
            "reading a batch's contents",
            "SELECT contents FROM batch_contents WHERE batch_id = $1",
            params![big(id)?],
        )?
        .map(|r| from_json("batch contents", r.try_get("contents").map_err(column)?))
        .transpose()
    }

    fn billed(&self, read: ReadId) -> Result<Option<Billed>> {
        self.row(
            "reading what billing received",
            "SELECT batch_id, value, read_at, withdrawn FROM billed WHERE read_id = $1",
            params![big(read)?],
        )?
        .as_ref()
        .map(billed_of)
        .transpose()
    }

    fn billed_read_changes(&self) -> Result<Vec<BilledReadChange>> {
        self.rows(
            "listing reads changed after billing",
            "SELECT read_id, meter_id, billed_batch_id, billed_value, billed_read_at, billed_withdrawn, \
             original_status, original_consumption, reason, changed_by, changed_at, audit_seq, correction_due \
             FROM billed_read_changes ORDER BY read_id",
            params![],
        )?
        .iter()
        .map(change_of)
        .collect()
    }

    fn billed_read_change(&self, read: ReadId) -> Result<Option<BilledReadChange>> {
        self.row(
            "reading a read changed after billing",
            "SELECT read_id, meter_id, billed_batch_id, billed_value, billed_read_at, billed_withdrawn, \
             original_status, original_consumption, reason, changed_by, changed_at, audit_seq, correction_due \
             FROM billed_read_changes WHERE read_id = $1",
            params![big(read)?],
        )?
        .as_ref()
        .map(change_of)
        .transpose()
    }

    fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        // COLLATE "C": by name in byte order, as redb keys sort.
        self.rows(
            "listing API tokens",
            "SELECT name, sha256, created_at, revoked_at FROM api_tokens ORDER BY name COLLATE \"C\"",
            params![],
        )?
        .iter()
        .map(token_of)
        .collect()
    }
}

impl BillingWrites for PgTxn<'_> {
    fn next_batch_id(&mut self) -> Result<BatchId> {
        self.next_ids(Sequence::Batches, 1)?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Engine("batch_ids gave no id".into()))
    }

    fn put_batch(&mut self, batch: &Batch) -> Result<()> {
        let read_ids = batch.read_ids.iter().map(|r| big(*r)).collect::<Result<Vec<i64>>>()?;
        self.exec(
            "storing a batch",
            "INSERT INTO batches (id, client, read_ids, status, created_at, acked_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET client = EXCLUDED.client, read_ids = EXCLUDED.read_ids, \
             status = EXCLUDED.status, created_at = EXCLUDED.created_at, acked_at = EXCLUDED.acked_at",
            params![
                big(batch.id)?,
                batch.client.clone(),
                read_ids,
                name(&batch.status),
                batch.created_at,
                batch.acked_at,
            ],
        )?;
        Ok(())
    }

    fn lock_open_batch(&mut self, client: &str) -> Result<Option<BatchId>> {
        // A client without a row gets one (batch NULL) first, so that there is always a row to
        // lock: two instances pulling for a new client queue on it instead of both creating a
        // batch. The row stays (set_open_batch(None) empties it) for the same reason.
        self.exec(
            "locking a client's open batch",
            "INSERT INTO open_batches (client, batch_id) VALUES ($1, NULL) ON CONFLICT (client) DO NOTHING",
            params![client.to_owned()],
        )?;
        let row = self.row(
            "locking a client's open batch",
            "SELECT batch_id FROM open_batches WHERE client = $1 FOR UPDATE",
            params![client.to_owned()],
        )?;
        match row {
            Some(r) => r
                .try_get::<_, Option<i64>>("batch_id")
                .map_err(column)?
                .map(id)
                .transpose(),
            None => Ok(None),
        }
    }

    fn set_open_batch(&mut self, client: &str, batch: Option<BatchId>) -> Result<()> {
        self.exec(
            "setting a client's open batch",
            "INSERT INTO open_batches (client, batch_id) VALUES ($1, $2) \
             ON CONFLICT (client) DO UPDATE SET batch_id = EXCLUDED.batch_id",
            params![client.to_owned(), batch.map(big).transpose()?],
        )?;
        Ok(())
    }

    fn put_batch_contents(&mut self, id: BatchId, contents: &BatchContents) -> Result<()> {
        self.exec(
            "storing a batch's contents",
            "INSERT INTO batch_contents (batch_id, contents) VALUES ($1, $2) \
             ON CONFLICT (batch_id) DO UPDATE SET contents = EXCLUDED.contents",
            params![big(id)?, json(contents)?],
        )?;
        Ok(())
    }

    fn put_billed(&mut self, billed: &[(ReadId, Billed)]) -> Result<()> {
        if billed.is_empty() {
            return Ok(());
        }
        // Last one wins for a read given twice, as in redb (ON CONFLICT cannot touch a row twice).
        let mut last: std::collections::BTreeMap<ReadId, &Billed> = std::collections::BTreeMap::new();
        for (r, b) in billed {
            last.insert(*r, b);
        }
        let n = last.len();
        let (mut read_ids, mut batches, mut values, mut times, mut withdrawn) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (r, b) in last {
            read_ids.push(big(r)?);
            batches.push(big(b.batch)?);
            values.push(b.value.micros());
            times.push(b.read_at);
            withdrawn.push(b.withdrawn);
        }
        self.exec(
            "storing what billing received",
            "INSERT INTO billed (read_id, batch_id, value, read_at, withdrawn) \
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::boolean[]) \
             ON CONFLICT (read_id) DO UPDATE SET batch_id = EXCLUDED.batch_id, value = EXCLUDED.value, \
             read_at = EXCLUDED.read_at, withdrawn = EXCLUDED.withdrawn",
            params![read_ids, batches, values, times, withdrawn],
        )?;
        Ok(())
    }

    fn put_billed_read_change(&mut self, c: &BilledReadChange) -> Result<()> {
        self.exec(
            "storing a read changed after billing",
            "INSERT INTO billed_read_changes (read_id, meter_id, billed_batch_id, billed_value, billed_read_at, \
             billed_withdrawn, original_status, original_consumption, reason, changed_by, changed_at, audit_seq, \
             correction_due) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (read_id) DO UPDATE SET meter_id = EXCLUDED.meter_id, \
             billed_batch_id = EXCLUDED.billed_batch_id, billed_value = EXCLUDED.billed_value, \
             billed_read_at = EXCLUDED.billed_read_at, billed_withdrawn = EXCLUDED.billed_withdrawn, \
             original_status = EXCLUDED.original_status, original_consumption = EXCLUDED.original_consumption, \
             reason = EXCLUDED.reason, changed_by = EXCLUDED.changed_by, changed_at = EXCLUDED.changed_at, \
             audit_seq = EXCLUDED.audit_seq, correction_due = EXCLUDED.correction_due",
            params![
                big(c.read_id)?,
                c.meter_id.clone(),
                c.billed.map(|b| big(b.batch)).transpose()?,
                c.billed.map(|b| b.value.micros()),
                c.billed.map(|b| b.read_at),
                c.billed.map(|b| b.withdrawn),
                status_code(c.original_status),
                c.original_consumption.map(|q| q.micros()),
                c.reason.clone(),
                c.by.clone(),
                c.at,
                c.audit_seq.map(big).transpose()?,
                c.correction_due,
            ],
        )?;
        Ok(())
    }

    fn remove_billed_read_change(&mut self, read: ReadId) -> Result<()> {
        self.exec(
            "removing a read changed after billing",
            "DELETE FROM billed_read_changes WHERE read_id = $1",
            params![big(read)?],
        )?;
        Ok(())
    }

    fn put_api_token(&mut self, token: &ApiToken) -> Result<()> {
        self.exec(
            "storing an API token",
            "INSERT INTO api_tokens (name, sha256, created_at, revoked_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET sha256 = EXCLUDED.sha256, created_at = EXCLUDED.created_at, \
             revoked_at = EXCLUDED.revoked_at",
            params![
                token.name.clone(),
                token.sha256.to_vec(),
                token.created_at,
                token.revoked_at
            ],
        )?;
        Ok(())
    }
}
