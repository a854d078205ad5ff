//! MQTT gateways: de-duplication keys, gateway health, IDM/NetIDM interval reads, tamper
//! state and the outbox of messages published back.

use jiff::Timestamp;

use crate::model::{GatewayState, IntervalRead, OutboxEntry};
use crate::store::Result;

pub trait GatewayQueries {
    /// When a de-duplication key of `namespace` was first seen (MQTT gateway ingest).
    fn seen(&self, namespace: &str, key: &[u8]) -> Result<Option<Timestamp>>;
    /// Every gateway heard from, by id.
    fn gateways(&self) -> Result<Vec<GatewayState>>;
    fn gateway(&self, gateway: &str) -> Result<Option<GatewayState>>;
    /// Interval reads of one meter with `from <= end < to`, oldest first.
    fn interval_reads(&self, meter_id: &str, from: Timestamp, to: Timestamp) -> Result<Vec<IntervalRead>>;
    fn count_interval_reads(&self) -> Result<u64>;
    /// The last tamper counters seen from a radio endpoint, and when.
    fn tamper_state(&self, endpoint: &str) -> Result<Option<(Timestamp, u64)>>;
    /// Up to `limit` outbox entries with id > `after`, oldest first.
    fn outbox(&self, after: u64, limit: usize) -> Result<Vec<(u64, OutboxEntry)>>;
    fn outbox_len(&self) -> Result<u64>;
}

pub trait GatewayWrites: GatewayQueries {
    /// Record a de-duplication key; `true` when it was not seen before (also when another
    /// meterd instance recorded it meanwhile: then `false`, once that one committed).
    fn mark_seen(&mut self, namespace: &str, key: &[u8], at: Timestamp) -> Result<bool>;
    /// [`GatewayWrites::mark_seen`] for every key of `keys`, as if one after the other (a key
    /// given twice is `false` the second time); one statement on a server engine.
    fn mark_seen_all(&mut self, namespace: &str, keys: &[&[u8]], at: Timestamp) -> Result<Vec<bool>>;
    /// Drop de-duplication keys of `namespace` first seen before `before` (window expiry).
    fn forget_seen_before(&mut self, namespace: &str, before: Timestamp) -> Result<u64>;
    fn put_gateway(&mut self, state: &GatewayState) -> Result<()>;
    /// Store an interval read of a meter (replacing one with the same end). Callers go
    /// through [`crate::store::Rules::put_interval_read`], which keeps the ±60 s window.
    fn insert_interval_read(&mut self, meter_id: &str, read: &IntervalRead) -> Result<()>;
    /// [`GatewayWrites::insert_interval_read`] for many reads of one meter (an IDM frame's
    /// 47): one statement on a server engine.
    fn insert_interval_reads(&mut self, meter_id: &str, reads: &[IntervalRead]) -> Result<()>;
    fn set_tamper_state(&mut self, endpoint: &str, at: Timestamp, counters: u64) -> Result<()>;
    /// Append to the outbox; returns the entry's id (increasing).
    fn push_outbox(&mut self, entry: &OutboxEntry) -> Result<u64>;
    /// Remove an outbox entry (its PUBACK came); `true` when it was there.
    fn remove_outbox(&mut self, id: u64) -> Result<bool>;
}
