//! Quarantine: undecodable input kept with its reason, what a retry made of it, and what the
//! retention limits removed.

use jiff::Timestamp;

use crate::model::{QuarantineEntry, QuarantineSummary, QuarantineUsage, Resolution, StoredQuarantine};
use crate::store::Result;

pub trait QuarantineQueries {
    /// Quarantined input, oldest first (a large payload's head only).
    fn quarantined(&self) -> Result<Vec<(u64, QuarantineEntry)>>;
    /// Entries as stored (size, digest, resolution), oldest first.
    fn quarantine_entries(&self) -> Result<Vec<(u64, StoredQuarantine)>>;
    fn quarantine_entry(&self, id: u64) -> Result<Option<StoredQuarantine>>;
    /// Entries the retention limit or a purge removed, per source and reason class.
    fn quarantine_summary(&self) -> Result<Vec<QuarantineSummary>>;
    /// Entries and stored bytes in the quarantine now (no scan).
    fn quarantine_usage(&self) -> Result<QuarantineUsage>;
}

/// Retention ([`crate::store::QuarantineLimits`]) is applied by the engine, as entries are
/// added: it is bookkeeping of the engine's own space, amortised per engine (redb looks at the
/// oldest entry only when a limit may be crossed).
pub trait QuarantineWrites: QuarantineQueries {
    /// Keep undecodable input with the reason; returns its id. Applies the engine's
    /// [`crate::store::QuarantineLimits`]: the oldest entries over a limit are summarised and
    /// removed.
    fn quarantine(&mut self, entry: &QuarantineEntry) -> Result<u64>;
    /// Record what a retry made of an entry (in the transaction holding its reads). Refuses an
    /// entry resolved already ([`crate::store::StoreError::Conflict`]) or not stored.
    fn resolve_quarantine(&mut self, id: u64, resolution: &Resolution) -> Result<()>;
    /// Remove the entries received before `before`, counting the unresolved ones in the
    /// summary; returns what was removed.
    fn purge_quarantine_before(&mut self, before: Timestamp) -> Result<QuarantineUsage>;
    /// Apply the limits as of `now` (at start, after a limit was lowered); returns the number
    /// of entries removed.
    fn enforce_quarantine_retention(&mut self, now: Timestamp) -> Result<u64>;
}
