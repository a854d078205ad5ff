//! Clerk review: the hash-chained audit trail, undo snapshots, service orders, meter changes.

use crate::model::{AuditEntry, HASH_LEN, MeterChange, ReadId, ServiceOrder, StoredRead};
use crate::store::Result;

pub trait ReviewQueries {
    /// How many audit entries were appended (the chain's recorded length).
    fn audit_len(&self) -> Result<u64>;
    /// Every stored audit entry by key, oldest first; an entry that does not decode is kept
    /// as its error text (`audit verify` reports it rather than stopping).
    fn audit_scan(&self) -> Result<Vec<(u64, std::result::Result<AuditEntry, String>)>>;
    /// Audit entries of one read, oldest first.
    fn read_audit(&self, read_id: ReadId) -> Result<Vec<AuditEntry>>;
    /// Audit entries of one meter's reads, oldest first.
    fn meter_audit(&self, meter_id: &str) -> Result<Vec<AuditEntry>>;
    /// The read as it was before the change recorded in audit entry `seq` (for undo).
    fn undo_snapshot(&self, seq: u64) -> Result<Option<StoredRead>>;
    /// All service orders, by id.
    fn service_orders(&self) -> Result<Vec<ServiceOrder>>;
    fn service_order(&self, id: u64) -> Result<Option<ServiceOrder>>;
    /// A meter's recorded exchanges, oldest first.
    fn meter_changes(&self, meter_id: &str) -> Result<Vec<MeterChange>>;
}

pub trait ReviewWrites: ReviewQueries {
    /// The chain's length and the hash of its last entry (zeros when empty), locked against
    /// other writers until this transaction ends: appends are serialised across instances.
    fn audit_tail(&mut self) -> Result<(u64, [u8; HASH_LEN])>;
    /// Store an audit entry whose `seq`, `prev_hash` and `hash` are set (by
    /// [`crate::store::Rules::append_audit`]); it becomes the chain's tail. `before` is the
    /// read as it was before the change (kept for undo).
    fn insert_audit(&mut self, entry: &AuditEntry, before: Option<&StoredRead>) -> Result<()>;
    /// Insert (id 0: a fresh id is assigned) or replace a service order; returns its id.
    fn put_service_order(&mut self, order: &ServiceOrder) -> Result<u64>;
    fn put_meter_change(&mut self, change: &MeterChange) -> Result<()>;
}
