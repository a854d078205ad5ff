//! quarantine on PostgreSQL (not written yet: every method answers an engine error).

use crate::model::{QuarantineEntry, QuarantineSummary, QuarantineUsage, Resolution, StoredQuarantine};
use jiff::Timestamp;

use super::PgTxn;
use crate::store::{QuarantineQueries, QuarantineWrites, Result, StoreError};

fn unbuilt() -> StoreError {
    StoreError::Engine("not built yet on PostgreSQL".into())
}

impl QuarantineQueries for PgTxn<'_> {
    fn quarantined(&self) -> Result<Vec<(u64, QuarantineEntry)>> {
        Err(unbuilt())
    }
    fn quarantine_entries(&self) -> Result<Vec<(u64, StoredQuarantine)>> {
        Err(unbuilt())
    }
    fn quarantine_entry(&self, _id: u64) -> Result<Option<StoredQuarantine>> {
        Err(unbuilt())
    }
    fn quarantine_summary(&self) -> Result<Vec<QuarantineSummary>> {
        Err(unbuilt())
    }
    fn quarantine_usage(&self) -> Result<QuarantineUsage> {
        Err(unbuilt())
    }
}

impl QuarantineWrites for PgTxn<'_> {
    fn quarantine(&mut self, _entry: &QuarantineEntry) -> Result<u64> {
        Err(unbuilt())
    }
    fn resolve_quarantine(&mut self, _id: u64, _resolution: &Resolution) -> Result<()> {
        Err(unbuilt())
    }
    fn purge_quarantine_before(&mut self, _before: Timestamp) -> Result<QuarantineUsage> {
        Err(unbuilt())
    }
    fn enforce_quarantine_retention(&mut self, _now: Timestamp) -> Result<u64> {
        Err(unbuilt())
    }
}
