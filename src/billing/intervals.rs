//! Interval days handed to billing in batches of their own kind, each meter-channel-day billed
//! exactly once (`batches next --kind intervals`, `GET /v1/batches/next?kind=intervals`).
//!
//! As for reads: a client with an open interval batch gets it again; otherwise billable days
//! (validated, accepted, edited, estimated) are taken into a new batch (status `batched`), frozen
//! as they went out ([`IntervalBatchContents`]), so every format renders the same stored data and
//! asking again gives the same bytes. Ack marks the days that are still `batched` `exported`.
//! A day that changes after it went out (new values, a clerk's edit) keeps the batch that
//! carried it; once billable again it goes out in a later batch as a correction naming that
//! batch (`correction_of`). A day with an interval still missing (a day still going on, or
//! one whose meter fell silent before it ended) waits: billing gets whole days only.

use jiff::Timestamp;

use super::AckOutcome;
use crate::model::interval::{BatchDay, DayKey, Direction, IntervalBatch, IntervalBatchContents, IntervalDay};
use crate::model::{BatchId, BatchStatus, ReadStatus, to_store_precision};
use crate::store::{Result, Store, StoreError};

/// Default most days per interval batch.
pub const DEFAULT_MAX_DAYS: usize = 10_000;

/// An interval batch as handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalBatchDoc {
    pub batch: IntervalBatch,
    pub contents: IntervalBatchContents,
}

/// The statuses billing takes, in the order a batch takes them.
const BILLABLE: [ReadStatus; 4] = [
    ReadStatus::Validated,
    ReadStatus::Accepted,
    ReadStatus::Edited,
    ReadStatus::Estimated,
];

/// The client's open interval batch, or a new one of up to `max` billable days (key order
/// within each status). `None` when there is no open batch and nothing to bill.
pub fn pull_days(store: &dyn Store, client: &str, max: usize, now: Timestamp) -> Result<Option<IntervalBatchDoc>> {
    let now = to_store_precision(now);
    crate::store::write_within(store, crate::store::INTERACTIVE_DEADLINE, |txn| {
        if let Some(id) = txn.lock_open_interval_batch(client)? {
            let batch = txn.interval_batch(id)?.ok_or_else(|| StoreError::NotFound {
                what: "interval batch",
                id: id.to_string(),
            })?;
            let contents = txn.interval_batch_contents(id)?.unwrap_or_default();
            return Ok(Some(IntervalBatchDoc { batch, contents }));
        }
        // Days with a missing value are passed over, so a status is paged through rather than
        // asked once for `max`; each day is read once and kept.
        let mut days: Vec<IntervalDay> = Vec::new();
        for status in BILLABLE {
            let mut after: Option<DayKey> = None;
            while days.len() < max {
                let page = txn.interval_days_with_status(status, after.as_ref(), max - days.len())?;
                let Some(last) = page.last().cloned() else { break };
                for key in page {
                    if let Some(day) = txn.interval_day(&key)?
                        && day.values.iter().all(Option::is_some)
                    {
                        days.push(day);
                    }
                }
                after = Some(last);
            }
        }
        if days.is_empty() {
            return Ok(None);
        }
        days.sort_by(|a, b| (&a.meter_id, &a.channel, a.date).cmp(&(&b.meter_id, &b.channel, b.date)));
        let keys: Vec<DayKey> = days.iter().map(IntervalDay::key).collect();
        // The meters and channels of the batch, in one look-up each.
        let mut ids: Vec<String> = days.iter().map(|d| d.meter_id.clone()).collect();
        ids.dedup();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let found = txn.meters_by_id(&refs)?;
        let meters: std::collections::HashMap<String, Option<crate::model::Meter>> =
            ids.iter().cloned().zip(found).collect();
        let channels = {
            let pairs: Vec<(&str, &str)> = days.iter().map(|d| (d.meter_id.as_str(), d.channel.as_str())).collect();
            txn.channels_by_key(&pairs)?
        };
        let id = txn.next_batch_id()?;
        let mut lines = Vec::with_capacity(days.len());
        for (day, channel) in days.iter_mut().zip(channels) {
            let meter = meters.get(day.meter_id.as_str()).and_then(Option::as_ref);
            let correction_of = day.batch;
            day.status = ReadStatus::Batched;
            day.batch = Some(id);
            day.rev += 1;
            day.updated_at = now;
            lines.push(BatchDay {
                day: day.clone(),
                account: meter.map(|m| m.account.clone()).unwrap_or_default(),
                service: meter.map(|m| m.service),
                unit: channel
                    .as_ref()
                    .map(|c| c.unit.clone())
                    .or_else(|| meter.map(|m| m.unit.clone()))
                    .unwrap_or_default(),
                direction: channel.map(|c| c.direction).unwrap_or(Direction::Delivered),
                correction_of,
            });
        }
        txn.put_interval_days(&days)?;
        let batch = IntervalBatch {
            id,
            client: client.to_owned(),
            days: keys,
            status: BatchStatus::Open,
            created_at: now,
            acked_at: None,
        };
        let contents = IntervalBatchContents { days: lines };
        txn.put_interval_batch(&batch)?;
        txn.put_interval_batch_contents(id, &contents)?;
        txn.set_open_interval_batch(client, Some(id))?;
        Ok(Some(IntervalBatchDoc { batch, contents }))
    })
}

/// An interval batch as it was handed out.
pub fn get_interval_doc(store: &dyn Store, id: BatchId) -> Result<Option<IntervalBatchDoc>> {
    let txn = store.begin_read()?;
    let Some(batch) = txn.interval_batch(id)? else {
        return Ok(None);
    };
    let contents = txn.interval_batch_contents(id)?.unwrap_or_default();
    Ok(Some(IntervalBatchDoc { batch, contents }))
}

/// Whether `id` is an interval batch (ids are shared with read batches, so at most one is).
pub fn is_interval_batch(store: &dyn Store, id: BatchId) -> Result<bool> {
    Ok(store.begin_read()?.interval_batch(id)?.is_some())
}

/// Acknowledge an interval batch: billing has it. Idempotent.
pub fn ack_interval_batch(store: &dyn Store, id: BatchId, now: Timestamp) -> Result<AckOutcome> {
    let now = to_store_precision(now);
    crate::store::write_within(store, crate::store::INTERACTIVE_DEADLINE, |txn| {
        let mut batch = txn.interval_batch(id)?.ok_or_else(|| StoreError::NotFound {
            what: "batch",
            id: id.to_string(),
        })?;
        // The client's open batch row is locked first, as a pull does: an ack and a pull of
        // the same client never interleave.
        let open = txn.lock_open_interval_batch(&batch.client)?;
        if batch.status == BatchStatus::Acked {
            return Ok(AckOutcome::AlreadyAcked);
        }
        // Days changed while the batch was open keep their new status: their change goes out
        // as a correction now that billing has the original.
        let mut exported = Vec::new();
        for key in &batch.days {
            if let Some(mut day) = txn.interval_day(key)?
                && day.status == ReadStatus::Batched
                && day.batch == Some(id)
            {
                day.status = ReadStatus::Exported;
                day.rev += 1;
                day.updated_at = now;
                exported.push(day);
            }
        }
        txn.put_interval_days(&exported)?;
        batch.status = BatchStatus::Acked;
        batch.acked_at = Some(now);
        txn.put_interval_batch(&batch)?;
        if open == Some(id) {
            txn.set_open_interval_batch(&batch.client, None)?;
        }
        Ok(AckOutcome::Acked {
            reads: batch.days.len(),
        })
    })
}
