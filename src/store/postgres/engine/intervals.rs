//! Interval data on PostgreSQL: channels, month-partitioned meter-channel-days (arrays per
//! day), interval batches. Many days are written in one statement: each array column travels
//! as the text of a PostgreSQL array literal (an array of arrays must be rectangular, a day's
//! arrays are not) and is cast back on the server.

use std::collections::BTreeSet;

use jiff::civil::Date;
use tokio_postgres::Row;

use super::rows::{big, column, from_json, id, json, name, named, status, status_code};
use super::{PgTxn, params};
use crate::model::interval::{
    Channel, DayKey, Direction, IntervalBatch, IntervalBatchContents, IntervalDay, Method, Quality,
};
use crate::model::{BatchId, Quantity, ReadStatus};
use crate::store::postgres::partitions::{Month, Partitioned};
use crate::store::{DayWindow, IntervalQueries, IntervalWrites, Result, StoreError};

/// A date bound PostgreSQL takes (its dates start in 4713 BC; stored days are in years 1 to
/// 9998, so the clamp changes no answer).
fn bound(d: Date) -> Date {
    d.max(jiff::civil::date(1, 1, 1))
}

fn corrupt(what: &'static str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.into(),
    }
}

fn method_of(s: &str) -> Result<Method> {
    match s {
        "linear" => Ok(Method::Linear),
        "like_day" => Ok(Method::LikeDay),
        other => other
            .strip_prefix("nem12_")
            .and_then(|n| n.parse().ok())
            .map(Method::Source)
            .ok_or_else(|| corrupt("interval method", format!("unknown method {other:?}"))),
    }
}

fn day_of(row: &Row) -> Result<IntervalDay> {
    day_at(row, 0)
}

/// A day from the row's columns starting at `o` (the day's columns in `interval_day`'s order).
fn day_at(row: &Row, o: usize) -> Result<IntervalDay> {
    let minutes: i16 = row.try_get(o + 3).map_err(column)?;
    let values: Vec<Option<i64>> = row.try_get(o + 4).map_err(column)?;
    let quality: String = row.try_get(o + 5).map_err(column)?;
    let methods: Vec<Option<String>> = row.try_get(o + 6).map_err(column)?;
    let outages: Vec<i16> = row.try_get(o + 7).map_err(column)?;
    let value_source: Vec<Option<i16>> = row.try_get(o + 11).map_err(column)?;
    let batch: Option<i64> = row.try_get(o + 14).map_err(column)?;
    let rev: i64 = row.try_get(o + 15).map_err(column)?;
    Ok(IntervalDay {
        meter_id: row.try_get(o).map_err(column)?,
        channel: row.try_get(o + 1).map_err(column)?,
        date: row.try_get(o + 2).map_err(column)?,
        interval_minutes: u16::try_from(minutes).map_err(|_| corrupt("interval length", minutes.to_string()))?,
        values: values.into_iter().map(|v| v.map(Quantity::from_micros)).collect(),
        quality: quality
            .chars()
            .map(|c| Quality::from_code(c).ok_or_else(|| corrupt("interval quality", c.to_string())))
            .collect::<Result<_>>()?,
        methods: methods
            .iter()
            .map(|m| m.as_deref().map(method_of).transpose())
            .collect::<Result<_>>()?,
        outages: outages
            .into_iter()
            .map(|n| u16::try_from(n).map_err(|_| corrupt("outage interval", n.to_string())))
            .collect::<Result<_>>()?,
        status: status(row.try_get(o + 8).map_err(column)?)?,
        flags: from_json("interval flags", row.try_get(o + 9).map_err(column)?)?,
        sources: row.try_get(o + 10).map_err(column)?,
        value_source: value_source
            .into_iter()
            .map(|v| {
                v.map(|v| u8::try_from(v).map_err(|_| corrupt("value source", v.to_string())))
                    .transpose()
            })
            .collect::<Result<_>>()?,
        received_at: row.try_get(o + 12).map_err(column)?,
        updated_at: row.try_get(o + 13).map_err(column)?,
        batch: batch.map(id).transpose()?,
        rev: id(rev)?,
    })
}

/// The text of a PostgreSQL array literal: `{1,NULL,"a \"b\""}`.
fn array_literal(items: impl IntoIterator<Item = Option<String>>) -> String {
    let mut out = String::from("{");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            None => out.push_str("NULL"),
            Some(s) => {
                out.push('"');
                for c in s.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        }
    }
    out.push('}');
    out
}

fn batch_of(row: &Row) -> Result<IntervalBatch> {
    let status_text: String = row.try_get(3).map_err(column)?;
    Ok(IntervalBatch {
        id: id(row.try_get(0).map_err(column)?)?,
        client: row.try_get(1).map_err(column)?,
        days: from_json("interval batch days", row.try_get(2).map_err(column)?)?,
        status: named("batch status", &status_text)?,
        created_at: row.try_get(4).map_err(column)?,
        acked_at: row.try_get(5).map_err(column)?,
    })
}

impl IntervalQueries for PgTxn<'_> {
    fn channel(&self, meter_id: &str, channel: &str) -> Result<Option<Channel>> {
        self.row(
            "reading a channel",
            "SELECT meter_id, channel, unit, direction FROM channels WHERE meter_id = $1 AND channel = $2",
            params![meter_id.to_owned(), channel.to_owned()],
        )?
        .as_ref()
        .map(channel_of)
        .transpose()
    }

    fn channels_by_key(&self, keys: &[(&str, &str)]) -> Result<Vec<Option<Channel>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let meters: Vec<String> = keys.iter().map(|(m, _)| (*m).to_owned()).collect();
        let channels: Vec<String> = keys.iter().map(|(_, c)| (*c).to_owned()).collect();
        let rows = self.rows(
            "reading channels",
            "SELECT k.i, ch.meter_id, ch.channel, ch.unit, ch.direction \
             FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY AS k(m, c, i) \
             JOIN channels ch ON ch.meter_id = k.m AND ch.channel = k.c",
            params![meters, channels],
        )?;
        let mut out = vec![None; keys.len()];
        for r in &rows {
            let i: i64 = r.try_get(0).map_err(column)?;
            let c = Channel {
                meter_id: r.try_get(1).map_err(column)?,
                channel: r.try_get(2).map_err(column)?,
                unit: r.try_get(3).map_err(column)?,
                direction: direction_of(&r.try_get::<_, String>(4).map_err(column)?)?,
            };
            if let Some(slot) = usize::try_from(i - 1).ok().and_then(|i| out.get_mut(i)) {
                *slot = Some(c);
            }
        }
        Ok(out)
    }

    fn day_windows(&self, windows: &[DayWindow<'_>]) -> Result<Vec<Vec<IntervalDay>>> {
        let mut out = vec![Vec::new(); windows.len()];
        if windows.is_empty() {
            return Ok(out);
        }
        let meters: Vec<String> = windows.iter().map(|w| w.meter_id.to_owned()).collect();
        let channels: Vec<String> = windows.iter().map(|w| w.channel.to_owned()).collect();
        let froms: Vec<Date> = windows.iter().map(|w| bound(w.from)).collect();
        let tos: Vec<Date> = windows.iter().map(|w| bound(w.to)).collect();
        let rows = self.rows(
            "reading interval days",
            "SELECT w.i, d.meter_id, d.channel, d.date, d.interval_minutes, d.vals, d.quality, d.methods, \
               d.outages, d.status, d.flags, d.sources, d.value_source, d.received_at, d.updated_at, d.batch_id, d.rev \
             FROM UNNEST($1::text[], $2::text[], $3::date[], $4::date[]) WITH ORDINALITY AS w(m, c, f, t, i) \
             JOIN interval_days d ON d.meter_id = w.m AND d.channel = w.c AND d.date >= w.f AND d.date < w.t \
             ORDER BY w.i, d.date",
            params![meters, channels, froms, tos],
        )?;
        for r in &rows {
            let i: i64 = r.try_get(0).map_err(column)?;
            let day = day_at(r, 1)?;
            if let Some(slot) = usize::try_from(i - 1).ok().and_then(|i| out.get_mut(i)) {
                slot.push(day);
            }
        }
        Ok(out)
    }

    fn channels(&self, meter_id: &str) -> Result<Vec<Channel>> {
        self.rows(
            "reading channels",
            "SELECT meter_id, channel, unit, direction FROM channels WHERE meter_id = $1 \
             ORDER BY channel COLLATE \"C\"",
            params![meter_id.to_owned()],
        )?
        .iter()
        .map(channel_of)
        .collect()
    }

    fn interval_day(&self, key: &DayKey) -> Result<Option<IntervalDay>> {
        self.row(
            "reading an interval day",
            "SELECT meter_id, channel, date, interval_minutes, vals, quality, methods, outages, status, flags, \
             sources, value_source, received_at, updated_at, batch_id, rev \
             FROM interval_days WHERE meter_id = $1 AND channel = $2 AND date = $3",
            params![key.meter_id.clone(), key.channel.clone(), key.date],
        )?
        .as_ref()
        .map(day_of)
        .transpose()
    }

    fn interval_days(&self, meter_id: &str, from: Date, to: Date) -> Result<Vec<IntervalDay>> {
        if from >= to {
            return Ok(Vec::new());
        }
        self.rows(
            "reading interval days",
            "SELECT meter_id, channel, date, interval_minutes, vals, quality, methods, outages, status, flags, \
             sources, value_source, received_at, updated_at, batch_id, rev \
             FROM interval_days WHERE meter_id = $1 AND date >= $2 AND date < $3 \
             ORDER BY channel COLLATE \"C\", date",
            params![meter_id.to_owned(), bound(from), bound(to)],
        )?
        .iter()
        .map(day_of)
        .collect()
    }

    fn interval_days_with_status(
        &self,
        wanted: ReadStatus,
        after: Option<&DayKey>,
        limit: usize,
    ) -> Result<Vec<DayKey>> {
        // Key order as the embedded store's: byte order of the names, then the date.
        let (m, c, d) = match after {
            Some(k) => (k.meter_id.clone(), k.channel.clone(), k.date),
            None => (String::new(), String::new(), bound(Date::MIN)),
        };
        self.rows(
            "reading interval days by status",
            "SELECT meter_id, channel, date FROM interval_days WHERE status = $1 \
             AND (meter_id COLLATE \"C\", channel COLLATE \"C\", date) > ($2 COLLATE \"C\", $3 COLLATE \"C\", $4) \
             ORDER BY meter_id COLLATE \"C\", channel COLLATE \"C\", date LIMIT $5",
            params![status_code(wanted), m, c, d, super::rows::limit(limit)],
        )?
        .iter()
        .map(|r| {
            Ok(DayKey {
                meter_id: r.try_get(0).map_err(column)?,
                channel: r.try_get(1).map_err(column)?,
                date: r.try_get(2).map_err(column)?,
            })
        })
        .collect()
    }

    fn count_interval_days(&self) -> Result<u64> {
        match self.row(
            "counting interval days",
            "SELECT count(*) FROM interval_days",
            params![],
        )? {
            Some(r) => id(r.try_get(0).map_err(column)?),
            None => Ok(0),
        }
    }

    fn interval_batch(&self, batch: BatchId) -> Result<Option<IntervalBatch>> {
        self.row(
            "reading an interval batch",
            "SELECT id, client, days, status, created_at, acked_at FROM interval_batches WHERE id = $1",
            params![big(batch)?],
        )?
        .as_ref()
        .map(batch_of)
        .transpose()
    }

    fn interval_batches(&self) -> Result<Vec<IntervalBatch>> {
        self.rows(
            "reading interval batches",
            "SELECT id, client, days, status, created_at, acked_at FROM interval_batches ORDER BY id",
            params![],
        )?
        .iter()
        .map(batch_of)
        .collect()
    }

    fn interval_batch_contents(&self, batch: BatchId) -> Result<Option<IntervalBatchContents>> {
        self.row(
            "reading an interval batch's contents",
            "SELECT contents FROM interval_batch_contents WHERE batch_id = $1",
            params![big(batch)?],
        )?
        .map(|r| from_json("interval batch contents", r.try_get(0).map_err(column)?))
        .transpose()
    }
}

fn direction_of(s: &str) -> Result<Direction> {
    match s {
        "delivered" => Ok(Direction::Delivered),
        "received" => Ok(Direction::Received),
        other => Err(corrupt("channel direction", other)),
    }
}

fn channel_of(row: &Row) -> Result<Channel> {
    let direction: String = row.try_get(3).map_err(column)?;
    Ok(Channel {
        meter_id: row.try_get(0).map_err(column)?,
        channel: row.try_get(1).map_err(column)?,
        unit: row.try_get(2).map_err(column)?,
        direction: direction_of(&direction)?,
    })
}

impl IntervalWrites for PgTxn<'_> {
    fn put_channel(&mut self, channel: &Channel) -> Result<()> {
        self.exec(
            "storing a channel",
            "INSERT INTO channels (meter_id, channel, unit, direction) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (meter_id, channel) DO UPDATE SET unit = EXCLUDED.unit, direction = EXCLUDED.direction",
            params![
                channel.meter_id.clone(),
                channel.channel.clone(),
                channel.unit.clone(),
                channel.direction.as_str().to_owned(),
            ],
        )?;
        Ok(())
    }

    fn put_channels(&mut self, channels: &[Channel]) -> Result<()> {
        if channels.is_empty() {
            return Ok(());
        }
        // One row per key, the last wins (as one put after another); sorted for lock order.
        let mut last: std::collections::BTreeMap<(&str, &str), &Channel> = Default::default();
        for c in channels {
            last.insert((c.meter_id.as_str(), c.channel.as_str()), c);
        }
        let (mut m, mut ch, mut u, mut d) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for c in last.into_values() {
            m.push(c.meter_id.clone());
            ch.push(c.channel.clone());
            u.push(c.unit.clone());
            d.push(c.direction.as_str().to_owned());
        }
        self.exec(
            "storing channels",
            "INSERT INTO channels (meter_id, channel, unit, direction) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) \
             ON CONFLICT (meter_id, channel) DO UPDATE SET unit = EXCLUDED.unit, direction = EXCLUDED.direction",
            params![m, ch, u, d],
        )?;
        Ok(())
    }

    fn put_interval_days(&mut self, days: &[IntervalDay]) -> Result<()> {
        if days.is_empty() {
            return Ok(());
        }
        let months = days
            .iter()
            .map(|d| {
                Month::of_date(d.date)
                    .ok_or_else(|| StoreError::Engine(format!("date {} is outside the years 1 to 9998", d.date)))
            })
            .collect::<Result<BTreeSet<Month>>>()?;
        self.ensure_month_set(Partitioned::IntervalDays, months)?;
        // One row per key (ON CONFLICT may touch a row once per statement): the last wins, as
        // one put after another would leave it; sorted, so instances lock rows in one order.
        let mut last: std::collections::BTreeMap<(&str, &str, Date), &IntervalDay> = Default::default();
        for d in days {
            last.insert((d.meter_id.as_str(), d.channel.as_str(), d.date), d);
        }
        let n = last.len();
        let mut meter = Vec::with_capacity(n);
        let mut channel = Vec::with_capacity(n);
        let mut date = Vec::with_capacity(n);
        let mut minutes = Vec::with_capacity(n);
        let mut vals = Vec::with_capacity(n);
        let mut quality = Vec::with_capacity(n);
        let mut methods = Vec::with_capacity(n);
        let mut outages = Vec::with_capacity(n);
        let mut statuses = Vec::with_capacity(n);
        let mut flags = Vec::with_capacity(n);
        let mut sources = Vec::with_capacity(n);
        let mut value_source = Vec::with_capacity(n);
        let mut received = Vec::with_capacity(n);
        let mut updated = Vec::with_capacity(n);
        let mut batch = Vec::with_capacity(n);
        let mut rev = Vec::with_capacity(n);
        for d in last.into_values() {
            meter.push(d.meter_id.clone());
            channel.push(d.channel.clone());
            date.push(d.date);
            minutes.push(i16::try_from(d.interval_minutes).map_err(|_| StoreError::Engine("interval length".into()))?);
            vals.push(array_literal(
                d.values.iter().map(|v| v.map(|q| q.micros().to_string())),
            ));
            quality.push(d.quality.iter().map(|q| q.code()).collect::<String>());
            methods.push(array_literal(d.methods.iter().map(|m| m.map(Method::name))));
            outages.push(array_literal(d.outages.iter().map(|n| Some(n.to_string()))));
            statuses.push(status_code(d.status));
            flags.push(serde_json::to_string(&json(&d.flags)?).map_err(|e| StoreError::Engine(e.to_string()))?);
            sources.push(array_literal(d.sources.iter().map(|s| Some(s.clone()))));
            value_source.push(array_literal(d.value_source.iter().map(|v| v.map(|v| v.to_string()))));
            received.push(d.received_at);
            updated.push(d.updated_at);
            batch.push(d.batch.map(big).transpose()?);
            rev.push(big(d.rev)?);
        }
        self.exec(
            "storing interval days",
            "INSERT INTO interval_days (meter_id, channel, date, interval_minutes, vals, quality, methods, outages, \
               status, flags, sources, value_source, received_at, updated_at, batch_id, rev) \
             SELECT m, c, d, im, v::bigint[], q, me::text[], o::smallint[], st, f::jsonb, so::text[], vs::smallint[], \
               ra, ua, b, r \
             FROM UNNEST($1::text[], $2::text[], $3::date[], $4::smallint[], $5::text[], $6::text[], $7::text[], \
               $8::text[], $9::smallint[], $10::text[], $11::text[], $12::text[], $13::timestamptz[], \
               $14::timestamptz[], $15::bigint[], $16::bigint[]) \
               AS u(m, c, d, im, v, q, me, o, st, f, so, vs, ra, ua, b, r) \
             ON CONFLICT (meter_id, channel, date) DO UPDATE SET interval_minutes = EXCLUDED.interval_minutes, \
               vals = EXCLUDED.vals, quality = EXCLUDED.quality, methods = EXCLUDED.methods, \
               outages = EXCLUDED.outages, status = EXCLUDED.status, flags = EXCLUDED.flags, \
               sources = EXCLUDED.sources, value_source = EXCLUDED.value_source, \
               received_at = EXCLUDED.received_at, updated_at = EXCLUDED.updated_at, \
               batch_id = EXCLUDED.batch_id, rev = EXCLUDED.rev",
            params![
                meter,
                channel,
                date,
                minutes,
                vals,
                quality,
                methods,
                outages,
                statuses,
                flags,
                sources,
                value_source,
                received,
                updated,
                batch,
                rev,
            ],
        )?;
        Ok(())
    }

    fn put_interval_batch(&mut self, b: &IntervalBatch) -> Result<()> {
        self.exec(
            "storing an interval batch",
            "INSERT INTO interval_batches (id, client, days, status, created_at, acked_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET client = EXCLUDED.client, days = EXCLUDED.days, \
               status = EXCLUDED.status, created_at = EXCLUDED.created_at, acked_at = EXCLUDED.acked_at",
            params![
                big(b.id)?,
                b.client.clone(),
                json(&b.days)?,
                name(&b.status),
                b.created_at,
                b.acked_at
            ],
        )?;
        Ok(())
    }

    fn put_interval_batch_contents(&mut self, batch: BatchId, contents: &IntervalBatchContents) -> Result<()> {
        self.exec(
            "storing an interval batch's contents",
            "INSERT INTO interval_batch_contents (batch_id, contents) VALUES ($1, $2) \
             ON CONFLICT (batch_id) DO UPDATE SET contents = EXCLUDED.contents",
            params![big(batch)?, json(contents)?],
        )?;
        Ok(())
    }

    fn lock_open_interval_batch(&mut self, client: &str) -> Result<Option<BatchId>> {
        // As lock_open_batch: a row to lock exists before it is locked.
        self.exec(
            "locking a client's open interval batch",
            "INSERT INTO open_interval_batches (client, batch_id) VALUES ($1, NULL) ON CONFLICT (client) DO NOTHING",
            params![client.to_owned()],
        )?;
        match self.row(
            "locking a client's open interval batch",
            "SELECT batch_id FROM open_interval_batches WHERE client = $1 FOR UPDATE",
            params![client.to_owned()],
        )? {
            Some(r) => r.try_get::<_, Option<i64>>(0).map_err(column)?.map(id).transpose(),
            None => Ok(None),
        }
    }

    fn set_open_interval_batch(&mut self, client: &str, batch: Option<BatchId>) -> Result<()> {
        self.exec(
            "setting a client's open interval batch",
            "INSERT INTO open_interval_batches (client, batch_id) VALUES ($1, $2) \
             ON CONFLICT (client) DO UPDATE SET batch_id = EXCLUDED.batch_id",
            params![client.to_owned(), batch.map(big).transpose()?],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn array_literals_quote_and_escape() {
        assert_eq!(
            super::array_literal([Some("a".into()), None, Some("x\"y\\z".into())]),
            "{\"a\",NULL,\"x\\\"y\\\\z\"}"
        );
        assert_eq!(super::array_literal(Vec::<Option<String>>::new()), "{}");
    }
}
