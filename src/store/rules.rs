//! The store's rules, written once above every engine.
//!
//! An engine ([`super::area`]) only stores and finds. What must happen the same way whatever
//! the engine is decided here: the audit trail's hash chain, the note that a read billing had
//! was changed, the recorder watermark that never goes down, the window in which an interval
//! heard twice is the same interval, and which batch is a client's open one. Times come from
//! the caller (`now`), never from inside the store, so a rule gives the same answer on every
//! engine and in every test.

use jiff::{SignedDuration, Timestamp};

use super::{Result, StoreError, WriteTxn};
use crate::model::billing::BilledReadChange;
use crate::model::{AuditEntry, Batch, BatchId, BatchStatus, IntervalRead, ReadId, ReadStatus, StoredRead};

/// An interval read of the same meter ending this close to one stored already is the same
/// interval heard again: gateway clocks differ, and IDM's interval ends carry a 1/16 s offset.
pub const INTERVAL_WINDOW: SignedDuration = SignedDuration::from_secs(60);

/// The rules, available on every write transaction (`txn.update_read(…)`); an engine cannot
/// replace them (the blanket implementation below is the only one).
pub trait Rules {
    /// Replace a stored read. A change of what billing has
    /// ([`BilledReadChange::changes_what_was_billed`]) opens a [`BilledReadChange`] at `now`
    /// unless one is due already: a billed read never changes silently.
    fn update_read(&mut self, read: &StoredRead, now: Timestamp) -> Result<()>;
    /// [`Rules::update_read`] for many reads at once.
    fn update_reads(&mut self, reads: &[StoredRead], now: Timestamp) -> Result<()>;
    /// Move reads (as stored, read in this transaction) to `status` in `batch`: batching
    /// (billable → `batched`) and ack (`batched` → `exported`). Refuses a read that is in
    /// another batch (moving it would lose which batch billed it) or changed since it was read.
    fn set_billing_state(&mut self, reads: &mut [StoredRead], status: ReadStatus, batch: BatchId) -> Result<()>;
    /// Create a batch with a fresh id; it becomes the client's open batch. Refused
    /// ([`StoreError::Conflict`]) while the client has an open batch already.
    fn create_batch(&mut self, client: &str, read_ids: Vec<ReadId>, created_at: Timestamp) -> Result<Batch>;
    /// Replace a batch; an acked batch stops being its client's open batch.
    fn update_batch(&mut self, batch: &Batch) -> Result<()>;
    /// Append an audit entry: `seq` (the chain's length + 1), `prev_hash` (the hash of the
    /// entry before) and `hash` are set here; returns the stored entry. `before` is the read as
    /// it was before the change (kept for undo).
    fn append_audit(&mut self, entry: AuditEntry, before: Option<&StoredRead>) -> Result<AuditEntry>;
    /// Raise the committed watermark of a recorder (never lowers it).
    fn set_cradle_watermark(&mut self, serial: &str, seq: u32) -> Result<()>;
    /// Store an interval read unless one of the same meter already ends within
    /// [`INTERVAL_WINDOW`] of it; `true` when stored.
    fn put_interval_read(&mut self, meter_id: &str, read: &IntervalRead) -> Result<bool>;
    /// [`Rules::put_interval_read`] for several reads of one meter, as if put one after the
    /// other, with one look-up and one insert; returns how many were stored.
    fn put_interval_reads(&mut self, meter_id: &str, reads: &[IntervalRead]) -> Result<u64>;
}

impl<T: WriteTxn + ?Sized> Rules for T {
    fn update_read(&mut self, read: &StoredRead, now: Timestamp) -> Result<()> {
        self.update_reads(std::slice::from_ref(read), now)
    }

    fn update_reads(&mut self, reads: &[StoredRead], now: Timestamp) -> Result<()> {
        let olds = self.replace_reads(reads)?;
        for (old, new) in olds.iter().zip(reads) {
            if BilledReadChange::changes_what_was_billed(old, new) {
                note_billed_read_changed(self, old, now)?;
            }
        }
        Ok(())
    }

    fn set_billing_state(&mut self, reads: &mut [StoredRead], status: ReadStatus, batch: BatchId) -> Result<()> {
        for r in reads.iter() {
            if let Some(b) = r.batch.filter(|b| *b != batch) {
                return Err(StoreError::Conflict(format!(
                    "read {} is in batch {b}, not {batch}",
                    r.id
                )));
            }
        }
        self.store_billing_state(reads, status, batch)
    }

    fn create_batch(&mut self, client: &str, read_ids: Vec<ReadId>, created_at: Timestamp) -> Result<Batch> {
        if let Some(open) = self.lock_open_batch(client)? {
            return Err(StoreError::Conflict(format!(
                "billing client {client} has batch {open} open; ack it before a new one"
            )));
        }
        let batch = Batch {
            id: self.next_batch_id()?,
            client: client.to_owned(),
            read_ids,
            status: BatchStatus::Open,
            created_at,
            acked_at: None,
        };
        self.put_batch(&batch)?;
        self.set_open_batch(client, Some(batch.id))?;
        Ok(batch)
    }

    fn update_batch(&mut self, batch: &Batch) -> Result<()> {
        let open = self.lock_open_batch(&batch.client)?;
        self.put_batch(batch)?;
        match batch.status {
            BatchStatus::Open if open != Some(batch.id) => self.set_open_batch(&batch.client, Some(batch.id)),
            BatchStatus::Acked if open == Some(batch.id) => self.set_open_batch(&batch.client, None),
            _ => Ok(()),
        }
    }

    fn append_audit(&mut self, mut entry: AuditEntry, before: Option<&StoredRead>) -> Result<AuditEntry> {
        let (len, last_hash) = self.audit_tail()?;
        entry.seq = len + 1;
        entry.prev_hash = last_hash;
        entry.hash = entry.compute_hash();
        self.insert_audit(&entry, before)?;
        Ok(entry)
    }

    fn set_cradle_watermark(&mut self, serial: &str, seq: u32) -> Result<()> {
        match self.cradle_watermark(serial)? {
            Some(old) if old >= seq => Ok(()),
            _ => self.put_cradle_watermark(serial, seq),
        }
    }

    fn put_interval_read(&mut self, meter_id: &str, read: &IntervalRead) -> Result<bool> {
        Ok(self.put_interval_reads(meter_id, std::slice::from_ref(read))? == 1)
    }

    fn put_interval_reads(&mut self, meter_id: &str, reads: &[IntervalRead]) -> Result<u64> {
        let (Some(first), Some(last)) = (reads.iter().map(|r| r.end).min(), reads.iter().map(|r| r.end).max()) else {
            return Ok(0);
        };
        let from = first.checked_sub(INTERVAL_WINDOW).unwrap_or(Timestamp::MIN);
        let to = last
            .checked_add(INTERVAL_WINDOW + SignedDuration::from_micros(1))
            .unwrap_or(Timestamp::MAX);
        let mut taken: Vec<Timestamp> = self.interval_reads(meter_id, from, to)?.iter().map(|r| r.end).collect();
        let mut new = Vec::new();
        for read in reads {
            let near = |end: &Timestamp| (read.end.duration_since(*end)).abs() <= INTERVAL_WINDOW;
            if !taken.iter().any(near) {
                taken.push(read.end);
                new.push(*read);
            }
        }
        self.insert_interval_reads(meter_id, &new)?;
        Ok(new.len() as u64)
    }
}

/// Billed read `old` changed: a new record unless one is due (billing has not heard of the
/// earlier change yet; what it captured then stays).
fn note_billed_read_changed<T: WriteTxn + ?Sized>(txn: &mut T, old: &StoredRead, now: Timestamp) -> Result<()> {
    let earlier = txn.billed_read_change(old.id)?;
    if earlier.as_ref().is_some_and(|c| c.correction_due) {
        return Ok(());
    }
    txn.put_billed_read_change(&BilledReadChange::opened(old, earlier.as_ref(), now))
}
