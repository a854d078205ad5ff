//! review on PostgreSQL (not written yet: every method answers an engine error).

use crate::model::{AuditEntry, HASH_LEN, MeterChange, ReadId, ServiceOrder, StoredRead};

use super::PgTxn;
use crate::store::{Result, ReviewQueries, ReviewWrites, StoreError};

fn unbuilt() -> StoreError {
    StoreError::Engine("not built yet on PostgreSQL".into())
}

impl ReviewQueries for PgTxn<'_> {
    fn audit_len(&self) -> Result<u64> {
        Err(unbuilt())
    }
    fn audit_scan(&self) -> Result<Vec<(u64, std::result::Result<AuditEntry, String>)>> {
        Err(unbuilt())
    }
    fn read_audit(&self, _read_id: ReadId) -> Result<Vec<AuditEntry>> {
        Err(unbuilt())
    }
    fn meter_audit(&self, _meter_id: &str) -> Result<Vec<AuditEntry>> {
        Err(unbuilt())
    }
    fn undo_snapshot(&self, _seq: u64) -> Result<Option<StoredRead>> {
        Err(unbuilt())
    }
    fn service_orders(&self) -> Result<Vec<ServiceOrder>> {
        Err(unbuilt())
    }
    fn service_order(&self, _id: u64) -> Result<Option<ServiceOrder>> {
        Err(unbuilt())
    }
    fn meter_changes(&self, _meter_id: &str) -> Result<Vec<MeterChange>> {
        Err(unbuilt())
    }
}

impl ReviewWrites for PgTxn<'_> {
    fn audit_tail(&mut self) -> Result<(u64, [u8; HASH_LEN])> {
        Err(unbuilt())
    }
    fn insert_audit(&mut self, _entry: &AuditEntry, _before: Option<&StoredRead>) -> Result<()> {
        Err(unbuilt())
    }
    fn put_service_order(&mut self, _order: &ServiceOrder) -> Result<u64> {
        Err(unbuilt())
    }
    fn put_meter_change(&mut self, _change: &MeterChange) -> Result<()> {
        Err(unbuilt())
    }
}
