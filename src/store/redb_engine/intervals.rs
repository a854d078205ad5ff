//! Interval data in the redb engine.
//!
//! | table | key | value | why |
//! |---|---|---|---|
//! | `iv_channels` | (meter id, channel) | postcard [`Channel`] | a meter's channels |
//! | `iv_days` | (meter id, channel, date as YYYYMMDD) | postcard [`IntervalDay`] | one record per meter-channel-day, values as arrays |
//! | `iv_status` | (status code, meter id, channel, date) | () | review queue and billable days by index |
//! | `iv_batches` | batch id | postcard [`IntervalBatch`] | interval batches (ids shared with read batches) |
//! | `iv_batch_contents` | batch id | postcard [`IntervalBatchContents`] | the batch as handed out |
//! | `iv_open_batches` | client | batch id | "re-asking before ack returns the same batch" |
//!
//! The tables came after schema version 3 without changing it: they are created when a store
//! is opened for writing, and a read of a store that does not have them yet finds nothing.

use jiff::civil::Date;
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};

use super::{RedbRead, RedbWrite, decode, encode, engine, noted};
use crate::model::interval::{Channel, DayKey, IntervalBatch, IntervalBatchContents, IntervalDay};
use crate::model::{BatchId, ReadStatus};
use crate::store::{DayWindow, IntervalQueries, IntervalWrites, Result, StoreError};

pub(in crate::store) const IV_CHANNELS: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("iv_channels");
pub(in crate::store) const IV_DAYS: TableDefinition<'_, (&str, &str, i32), &[u8]> = TableDefinition::new("iv_days");
pub(in crate::store) const IV_STATUS: TableDefinition<'_, (u8, &str, &str, i32), ()> =
    TableDefinition::new("iv_status");
pub(in crate::store) const IV_BATCHES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("iv_batches");
pub(in crate::store) const IV_BATCH_CONTENTS: TableDefinition<'_, u64, &[u8]> =
    TableDefinition::new("iv_batch_contents");
pub(in crate::store) const IV_OPEN_BATCHES: TableDefinition<'_, &str, u64> = TableDefinition::new("iv_open_batches");

/// Creates the tables (at open, so readers find them).
pub(super) fn create_tables(txn: &redb::WriteTransaction) -> Result<()> {
    txn.open_table(noted(IV_CHANNELS)).map_err(engine)?;
    txn.open_table(noted(IV_DAYS)).map_err(engine)?;
    txn.open_table(noted(IV_STATUS)).map_err(engine)?;
    txn.open_table(noted(IV_BATCHES)).map_err(engine)?;
    txn.open_table(noted(IV_BATCH_CONTENTS)).map_err(engine)?;
    txn.open_table(noted(IV_OPEN_BATCHES)).map_err(engine)?;
    Ok(())
}

/// A date as a sortable key: YYYYMMDD (negative years sort first, as dates do).
pub(super) fn date_key(d: Date) -> i32 {
    i32::from(d.year()) * 10_000 + i32::from(d.month()) * 100 + i32::from(d.day())
}

fn date_of_key(k: i32) -> Result<Date> {
    let (y, m, d) = (
        k.div_euclid(10_000),
        k.div_euclid(100).rem_euclid(100),
        k.rem_euclid(100),
    );
    i16::try_from(y)
        .ok()
        .and_then(|y| Date::new(y, m as i8, d as i8).ok())
        .ok_or_else(|| StoreError::Corrupt {
            what: "interval day key",
            detail: format!("{k} is not a date"),
        })
}

fn status_code(s: ReadStatus) -> u8 {
    s.code()
}

macro_rules! impl_interval_queries {
    ($ty:ty) => {
        impl IntervalQueries for $ty {
            fn channel(&self, meter_id: &str, channel: &str) -> Result<Option<Channel>> {
                let t = table!(self.txn, IV_CHANNELS);
                match t.get((meter_id, channel)).map_err(engine)? {
                    Some(v) => decode("channel", v.value()).map(Some),
                    None => Ok(None),
                }
            }

            fn channels_by_key(&self, keys: &[(&str, &str)]) -> Result<Vec<Option<Channel>>> {
                keys.iter().map(|(m, c)| self.channel(m, c)).collect()
            }

            fn day_windows(&self, windows: &[DayWindow<'_>]) -> Result<Vec<Vec<IntervalDay>>> {
                let t = match self.txn.open_table(noted(IV_DAYS)) {
                    Ok(t) => t,
                    Err(redb::TableError::TableDoesNotExist(_)) => return Ok(vec![Vec::new(); windows.len()]),
                    Err(e) => return Err(engine(e)),
                };
                let mut out = Vec::with_capacity(windows.len());
                for w in windows {
                    let mut days = Vec::new();
                    if w.from < w.to {
                        let range = (w.meter_id, w.channel, date_key(w.from))..(w.meter_id, w.channel, date_key(w.to));
                        for e in t.range(range).map_err(engine)? {
                            days.push(decode("interval day", e.map_err(engine)?.1.value())?);
                        }
                    }
                    out.push(days);
                }
                Ok(out)
            }

            fn channels(&self, meter_id: &str) -> Result<Vec<Channel>> {
                let t = table!(self.txn, IV_CHANNELS);
                let mut out = Vec::new();
                for e in t.range((meter_id, "")..).map_err(engine)? {
                    let (k, v) = e.map_err(engine)?;
                    if k.value().0 != meter_id {
                        break;
                    }
                    out.push(decode("channel", v.value())?);
                }
                Ok(out)
            }

            fn interval_day(&self, key: &DayKey) -> Result<Option<IntervalDay>> {
                let t = table!(self.txn, IV_DAYS);
                match t
                    .get((key.meter_id.as_str(), key.channel.as_str(), date_key(key.date)))
                    .map_err(engine)?
                {
                    Some(v) => decode("interval day", v.value()).map(Some),
                    None => Ok(None),
                }
            }

            fn interval_days(&self, meter_id: &str, from: Date, to: Date) -> Result<Vec<IntervalDay>> {
                let mut out = Vec::new();
                if from >= to {
                    return Ok(out);
                }
                let channels = self.channels(meter_id)?;
                let t = table!(self.txn, IV_DAYS);
                for c in &channels {
                    let range =
                        (meter_id, c.channel.as_str(), date_key(from))..(meter_id, c.channel.as_str(), date_key(to));
                    for e in t.range(range).map_err(engine)? {
                        out.push(decode("interval day", e.map_err(engine)?.1.value())?);
                    }
                }
                Ok(out)
            }

            fn interval_days_with_status(
                &self,
                status: ReadStatus,
                after: Option<&DayKey>,
                limit: usize,
            ) -> Result<Vec<DayKey>> {
                let t = table!(self.txn, IV_STATUS);
                let code = status_code(status);
                let mut out = Vec::new();
                let range = match after {
                    Some(k) => t.range((code, k.meter_id.as_str(), k.channel.as_str(), date_key(k.date))..),
                    None => t.range((code, "", "", i32::MIN)..),
                }
                .map_err(engine)?;
                for e in range {
                    if out.len() >= limit {
                        break;
                    }
                    let (k, _) = e.map_err(engine)?;
                    let (c, meter, channel, date) = k.value();
                    if c != code {
                        break;
                    }
                    let key = DayKey {
                        meter_id: meter.to_owned(),
                        channel: channel.to_owned(),
                        date: date_of_key(date)?,
                    };
                    if after.is_some_and(|a| *a == key) {
                        continue;
                    }
                    out.push(key);
                }
                Ok(out)
            }

            fn count_interval_days(&self) -> Result<u64> {
                let t = table!(self.txn, IV_DAYS);
                t.len().map_err(engine)
            }

            fn interval_batch(&self, id: BatchId) -> Result<Option<IntervalBatch>> {
                let t = table!(self.txn, IV_BATCHES);
                match t.get(id).map_err(engine)? {
                    Some(v) => decode("interval batch", v.value()).map(Some),
                    None => Ok(None),
                }
            }

            fn interval_batches(&self) -> Result<Vec<IntervalBatch>> {
                let t = table!(self.txn, IV_BATCHES);
                let mut out = Vec::new();
                for e in t.iter().map_err(engine)? {
                    out.push(decode("interval batch", e.map_err(engine)?.1.value())?);
                }
                Ok(out)
            }

            fn interval_batch_contents(&self, id: BatchId) -> Result<Option<IntervalBatchContents>> {
                let t = table!(self.txn, IV_BATCH_CONTENTS);
                match t.get(id).map_err(engine)? {
                    Some(v) => decode("interval batch contents", v.value()).map(Some),
                    None => Ok(None),
                }
            }
        }
    };
}

impl_interval_queries!(RedbRead);
impl_interval_queries!(RedbWrite);

impl IntervalWrites for RedbWrite {
    fn put_channel(&mut self, channel: &Channel) -> Result<()> {
        let bytes = encode(channel)?;
        self.txn
            .open_table(noted(IV_CHANNELS))
            .map_err(engine)?
            .insert((channel.meter_id.as_str(), channel.channel.as_str()), bytes.as_slice())
            .map_err(engine)?;
        Ok(())
    }

    fn put_channels(&mut self, channels: &[Channel]) -> Result<()> {
        channels.iter().try_for_each(|c| self.put_channel(c))
    }

    fn put_interval_days(&mut self, days: &[IntervalDay]) -> Result<()> {
        let mut t = self.txn.open_table(noted(IV_DAYS)).map_err(engine)?;
        let mut index = self.txn.open_table(noted(IV_STATUS)).map_err(engine)?;
        for day in days {
            let key = (day.meter_id.as_str(), day.channel.as_str(), date_key(day.date));
            let bytes = encode(day)?;
            let old = t.insert(key, bytes.as_slice()).map_err(engine)?;
            if let Some(old) = old {
                let old: IntervalDay = decode("interval day", old.value())?;
                index
                    .remove((status_code(old.status), key.0, key.1, key.2))
                    .map_err(engine)?;
            }
            index
                .insert((status_code(day.status), key.0, key.1, key.2), ())
                .map_err(engine)?;
        }
        Ok(())
    }

    fn put_interval_batch(&mut self, batch: &IntervalBatch) -> Result<()> {
        let bytes = encode(batch)?;
        self.txn
            .open_table(noted(IV_BATCHES))
            .map_err(engine)?
            .insert(batch.id, bytes.as_slice())
            .map_err(engine)?;
        Ok(())
    }

    fn put_interval_batch_contents(&mut self, id: BatchId, contents: &IntervalBatchContents) -> Result<()> {
        let bytes = encode(contents)?;
        self.txn
            .open_table(noted(IV_BATCH_CONTENTS))
            .map_err(engine)?
            .insert(id, bytes.as_slice())
            .map_err(engine)?;
        Ok(())
    }

    fn lock_open_interval_batch(&mut self, client: &str) -> Result<Option<BatchId>> {
        // redb has one writer: holding the write transaction is the lock.
        Ok(self
            .txn
            .open_table(noted(IV_OPEN_BATCHES))
            .map_err(engine)?
            .get(client)
            .map_err(engine)?
            .map(|v| v.value()))
    }

    fn set_open_interval_batch(&mut self, client: &str, batch: Option<BatchId>) -> Result<()> {
        let mut t = self.txn.open_table(noted(IV_OPEN_BATCHES)).map_err(engine)?;
        match batch {
            Some(id) => t.insert(client, id).map_err(engine)?,
            None => t.remove(client).map_err(engine)?,
        };
        Ok(())
    }
}

/// Every interval row of a store, from one snapshot (`meterd store migrate` copies them).
#[derive(Debug, Default)]
pub struct IntervalListing {
    pub channels: Vec<Channel>,
    pub days: Vec<IntervalDay>,
    pub batches: Vec<IntervalBatch>,
    pub contents: Vec<(BatchId, IntervalBatchContents)>,
    /// (client, open interval batch)
    pub open_batches: Vec<(String, BatchId)>,
}

impl super::RedbStore {
    pub fn interval_listing(&self) -> Result<IntervalListing> {
        let txn = RedbRead {
            txn: self.db().begin_read()?,
        };
        let mut out = IntervalListing::default();
        let list = |out: &mut IntervalListing| -> Result<()> {
            let t = table!(txn.txn, IV_CHANNELS);
            for e in t.iter().map_err(engine)? {
                out.channels.push(decode("channel", e.map_err(engine)?.1.value())?);
            }
            let t = table!(txn.txn, IV_DAYS);
            for e in t.iter().map_err(engine)? {
                out.days.push(decode("interval day", e.map_err(engine)?.1.value())?);
            }
            let t = table!(txn.txn, IV_BATCH_CONTENTS);
            for e in t.iter().map_err(engine)? {
                let (k, v) = e.map_err(engine)?;
                out.contents
                    .push((k.value(), decode("interval batch contents", v.value())?));
            }
            let t = table!(txn.txn, IV_OPEN_BATCHES);
            for e in t.iter().map_err(engine)? {
                let (k, v) = e.map_err(engine)?;
                out.open_batches.push((k.value().to_owned(), v.value()));
            }
            Ok(())
        };
        list(&mut out)?;
        out.batches = txn.interval_batches()?;
        Ok(out)
    }
}
