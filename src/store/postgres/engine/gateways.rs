//! Gateways on PostgreSQL: cross-instance de-duplication keys (`seen`), gateway health, the
//! month-partitioned interval reads, tamper counters and the outbox.

use jiff::Timestamp;

use super::rows::{big, column, from_json, id, json};
use super::{PgTxn, Sequence, params};
use crate::model::{GatewayState, IntervalRead, OutboxEntry};
use crate::store::postgres::partitions::Partitioned;
use crate::store::{GatewayQueries, GatewayWrites, Result, StoreError};

/// A stored count (bigint) as meterd's u64.
fn count(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        what: "count",
        detail: format!("negative count {v}"),
    })
}

fn gateway_of(row: &tokio_postgres::Row) -> Result<GatewayState> {
    Ok(GatewayState {
        gateway: row.try_get(0).map_err(column)?,
        last_message_at: row.try_get(1).map_err(column)?,
        messages: count(row.try_get(2).map_err(column)?)?,
        undecodable: count(row.try_get(3).map_err(column)?)?,
        status: row.try_get(4).map_err(column)?,
        status_at: row.try_get(5).map_err(column)?,
        last_topic: row.try_get(6).map_err(column)?,
        decoded: count(row.try_get(7).map_err(column)?)?,
        undecodable_by: from_json("gateway health", row.try_get(8).map_err(column)?)?,
        window: from_json("gateway health", row.try_get(9).map_err(column)?)?,
        previous_window: row
            .try_get::<_, Option<serde_json::Value>>(10)
            .map_err(column)?
            .map(|v| from_json("gateway health", v))
            .transpose()?,
    })
}

impl GatewayQueries for PgTxn<'_> {
    fn seen(&self, namespace: &str, key: &[u8]) -> Result<Option<Timestamp>> {
        self.row(
            "reading a de-duplication key",
            "SELECT first_seen FROM seen WHERE namespace = $1 AND key = $2",
            params![namespace.to_owned(), key.to_vec()],
        )?
        .map(|r| r.try_get(0).map_err(column))
        .transpose()
    }

    fn gateways(&self) -> Result<Vec<GatewayState>> {
        // Byte order of the name, as the embedded store lists them, whatever the collation.
        self.rows(
            "reading gateways",
            "SELECT gateway, last_message_at, messages, undecodable, status, status_at, last_topic, \
               decoded, undecodable_by, health_window, previous_window \
             FROM gateways ORDER BY gateway COLLATE \"C\"",
            params![],
        )?
        .iter()
        .map(gateway_of)
        .collect()
    }

    fn gateway(&self, gateway: &str) -> Result<Option<GatewayState>> {
        self.row(
            "reading a gateway",
            "SELECT gateway, last_message_at, messages, undecodable, status, status_at, last_topic, \
               decoded, undecodable_by, health_window, previous_window \
             FROM gateways WHERE gateway = $1",
            params![gateway.to_owned()],
        )?
        .as_ref()
        .map(gateway_of)
        .transpose()
    }

    fn interval_reads(&self, meter_id: &str, from: Timestamp, to: Timestamp) -> Result<Vec<IntervalRead>> {
        self.rows(
            "reading interval reads",
            "SELECT end_at, number, consumption FROM interval_reads \
             WHERE meter_id = $1 AND end_at >= $2 AND end_at < $3 ORDER BY end_at",
            params![meter_id.to_owned(), super::rows::bound(from), super::rows::bound(to)],
        )?
        .iter()
        .map(|row| {
            let number: i16 = row.try_get(1).map_err(column)?;
            let consumption: i64 = row.try_get(2).map_err(column)?;
            Ok(IntervalRead {
                end: row.try_get(0).map_err(column)?,
                number: u8::try_from(number).map_err(|_| StoreError::Corrupt {
                    what: "interval read number",
                    detail: format!("{number} is not 0..=255"),
                })?,
                consumption: count(consumption)?,
            })
        })
        .collect()
    }

    fn count_interval_reads(&self) -> Result<u64> {
        let row = self.row(
            "counting interval reads",
            "SELECT count(*) FROM interval_reads",
            params![],
        )?;
        match row {
            Some(r) => count(r.try_get(0).map_err(column)?),
            None => Ok(0),
        }
    }

    fn tamper_state(&self, endpoint: &str) -> Result<Option<(Timestamp, u64)>> {
        self.row(
            "reading tamper counters",
            "SELECT read_at, counters FROM tamper_state WHERE endpoint = $1",
            params![endpoint.to_owned()],
        )?
        .map(|r| {
            let at: Timestamp = r.try_get(0).map_err(column)?;
            // Stored as the u64's bits: counters are a bit field, the top bit may be set.
            let counters: i64 = r.try_get(1).map_err(column)?;
            Ok((at, counters as u64))
        })
        .transpose()
    }

    fn outbox(&self, after: u64, max: usize) -> Result<Vec<(u64, OutboxEntry)>> {
        let after = big(after.min(i64::MAX as u64))?;
        let limit = super::rows::limit(max);
        self.rows(
            "reading the outbox",
            "SELECT id, topic, payload FROM outbox WHERE id > $1 ORDER BY id LIMIT $2",
            params![after, limit],
        )?
        .iter()
        .map(|r| {
            Ok((
                id(r.try_get(0).map_err(column)?)?,
                OutboxEntry {
                    topic: r.try_get(1).map_err(column)?,
                    payload: r.try_get(2).map_err(column)?,
                },
            ))
        })
        .collect()
    }

    fn outbox_len(&self) -> Result<u64> {
        let row = self.row("counting the outbox", "SELECT count(*) FROM outbox", params![])?;
        match row {
            Some(r) => count(r.try_get(0).map_err(column)?),
            None => Ok(0),
        }
    }
}

impl GatewayWrites for PgTxn<'_> {
    fn mark_seen(&mut self, namespace: &str, key: &[u8], at: Timestamp) -> Result<bool> {
        // The primary key decides between instances: a second inserter of the same key waits
        // for the first to commit and then inserts nothing.
        let inserted = self.exec(
            "noting a de-duplication key",
            "INSERT INTO seen (namespace, key, first_seen) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            params![namespace.to_owned(), key.to_vec(), at],
        )?;
        Ok(inserted == 1)
    }

    fn mark_seen_all(&mut self, namespace: &str, keys: &[&[u8]], at: Timestamp) -> Result<Vec<bool>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // Sorted and distinct: instances inserting overlapping keys take them in one order.
        let mut sorted: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let rows = self.rows(
            "noting de-duplication keys",
            "INSERT INTO seen (namespace, key, first_seen) \
             SELECT $1, k, $3 FROM UNNEST($2::bytea[]) AS u(k) ORDER BY k \
             ON CONFLICT DO NOTHING RETURNING key",
            params![namespace.to_owned(), sorted, at],
        )?;
        let mut new: std::collections::HashSet<Vec<u8>> = rows
            .iter()
            .map(|r| r.try_get::<_, Vec<u8>>(0).map_err(super::rows::column))
            .collect::<Result<_>>()?;
        // The first of a repeated key is the new one.
        Ok(keys.iter().map(|k| new.remove(*k)).collect())
    }

    fn forget_seen_before(&mut self, namespace: &str, before: Timestamp) -> Result<u64> {
        self.exec(
            "forgetting de-duplication keys",
            "DELETE FROM seen WHERE namespace = $1 AND first_seen < $2",
            params![namespace.to_owned(), before],
        )
    }

    fn put_gateway(&mut self, state: &GatewayState) -> Result<()> {
        self.exec(
            "storing a gateway",
            "INSERT INTO gateways (gateway, last_message_at, messages, undecodable, status, status_at, last_topic, \
               decoded, undecodable_by, health_window, previous_window) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (gateway) DO UPDATE SET last_message_at = EXCLUDED.last_message_at, \
               messages = EXCLUDED.messages, undecodable = EXCLUDED.undecodable, status = EXCLUDED.status, \
               status_at = EXCLUDED.status_at, last_topic = EXCLUDED.last_topic, decoded = EXCLUDED.decoded, \
               undecodable_by = EXCLUDED.undecodable_by, health_window = EXCLUDED.health_window, \
               previous_window = EXCLUDED.previous_window",
            params![
                state.gateway.clone(),
                state.last_message_at,
                big(state.messages)?,
                big(state.undecodable)?,
                state.status.clone(),
                state.status_at,
                state.last_topic.clone(),
                big(state.decoded)?,
                json(&state.undecodable_by)?,
                json(&state.window)?,
                state.previous_window.as_ref().map(json).transpose()?,
            ],
        )?;
        Ok(())
    }

    fn insert_interval_read(&mut self, meter_id: &str, read: &IntervalRead) -> Result<()> {
        self.ensure_months(Partitioned::IntervalReads, [read.end])?;
        // The same (meter, end) again replaces it, as the embedded store's insert does.
        self.exec(
            "storing an interval read",
            "INSERT INTO interval_reads (meter_id, end_at, number, consumption) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (meter_id, end_at) DO UPDATE SET number = EXCLUDED.number, \
               consumption = EXCLUDED.consumption",
            params![
                meter_id.to_owned(),
                read.end,
                i16::from(read.number),
                big(read.consumption)?
            ],
        )?;
        Ok(())
    }

    fn insert_interval_reads(&mut self, meter_id: &str, reads: &[IntervalRead]) -> Result<()> {
        if reads.is_empty() {
            return Ok(());
        }
        self.ensure_months(Partitioned::IntervalReads, reads.iter().map(|r| r.end))?;
        let ends: Vec<Timestamp> = reads.iter().map(|r| r.end).collect();
        let numbers: Vec<i16> = reads.iter().map(|r| i16::from(r.number)).collect();
        let consumptions = reads.iter().map(|r| big(r.consumption)).collect::<Result<Vec<i64>>>()?;
        // One row per end (a repeated end would make ON CONFLICT touch a row twice): the
        // last of a repeated end wins, as one insert after another would leave it.
        self.exec(
            "storing interval reads",
            "INSERT INTO interval_reads (meter_id, end_at, number, consumption) \
             SELECT DISTINCT ON (e) $1, e, n, c FROM UNNEST($2::timestamptz[], $3::smallint[], $4::bigint[]) \
               WITH ORDINALITY AS u(e, n, c, o) ORDER BY e, o DESC \
             ON CONFLICT (meter_id, end_at) DO UPDATE SET number = EXCLUDED.number, \
               consumption = EXCLUDED.consumption",
            params![meter_id.to_owned(), ends, numbers, consumptions],
        )?;
        Ok(())
    }

    fn set_tamper_state(&mut self, endpoint: &str, at: Timestamp, counters: u64) -> Result<()> {
        self.exec(
            "storing tamper counters",
            "INSERT INTO tamper_state (endpoint, read_at, counters) VALUES ($1, $2, $3) \
             ON CONFLICT (endpoint) DO UPDATE SET read_at = EXCLUDED.read_at, counters = EXCLUDED.counters",
            params![endpoint.to_owned(), at, counters as i64],
        )?;
        Ok(())
    }

    fn push_outbox(&mut self, entry: &OutboxEntry) -> Result<u64> {
        let id = self
            .next_ids(Sequence::Outbox, 1)?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Engine("outbox_ids gave no id".into()))?;
        self.exec(
            "adding to the outbox",
            "INSERT INTO outbox (id, topic, payload) VALUES ($1, $2, $3)",
            params![big(id)?, entry.topic.clone(), entry.payload.clone()],
        )?;
        Ok(id)
    }

    fn remove_outbox(&mut self, id: u64) -> Result<bool> {
        let Ok(id) = big(id) else { return Ok(false) };
        Ok(self.exec(
            "removing from the outbox",
            "DELETE FROM outbox WHERE id = $1",
            params![id],
        )? == 1)
    }
}
