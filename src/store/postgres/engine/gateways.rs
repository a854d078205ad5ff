//! gateways on PostgreSQL (not written yet: every method answers an engine error).

use crate::model::{GatewayState, IntervalRead, OutboxEntry};
use jiff::Timestamp;

use super::PgTxn;
use crate::store::{GatewayQueries, GatewayWrites, Result, StoreError};

fn unbuilt() -> StoreError {
    StoreError::Engine("not built yet on PostgreSQL".into())
}

impl GatewayQueries for PgTxn<'_> {
    fn seen(&self, _namespace: &str, _key: &[u8]) -> Result<Option<Timestamp>> {
        Err(unbuilt())
    }
    fn gateways(&self) -> Result<Vec<GatewayState>> {
        Err(unbuilt())
    }
    fn gateway(&self, _gateway: &str) -> Result<Option<GatewayState>> {
        Err(unbuilt())
    }
    fn interval_reads(&self, _meter_id: &str, _from: Timestamp, _to: Timestamp) -> Result<Vec<IntervalRead>> {
        Err(unbuilt())
    }
    fn count_interval_reads(&self) -> Result<u64> {
        Err(unbuilt())
    }
    fn tamper_state(&self, _endpoint: &str) -> Result<Option<(Timestamp, u64)>> {
        Err(unbuilt())
    }
    fn outbox(&self, _after: u64, _limit: usize) -> Result<Vec<(u64, OutboxEntry)>> {
        Err(unbuilt())
    }
    fn outbox_len(&self) -> Result<u64> {
        Err(unbuilt())
    }
}

impl GatewayWrites for PgTxn<'_> {
    fn mark_seen(&mut self, _namespace: &str, _key: &[u8], _at: Timestamp) -> Result<bool> {
        Err(unbuilt())
    }
    fn forget_seen_before(&mut self, _namespace: &str, _before: Timestamp) -> Result<u64> {
        Err(unbuilt())
    }
    fn put_gateway(&mut self, _state: &GatewayState) -> Result<()> {
        Err(unbuilt())
    }
    fn insert_interval_read(&mut self, _meter_id: &str, _read: &IntervalRead) -> Result<()> {
        Err(unbuilt())
    }
    fn set_tamper_state(&mut self, _endpoint: &str, _at: Timestamp, _counters: u64) -> Result<()> {
        Err(unbuilt())
    }
    fn push_outbox(&mut self, _entry: &OutboxEntry) -> Result<u64> {
        Err(unbuilt())
    }
    fn remove_outbox(&mut self, _id: u64) -> Result<bool> {
        Err(unbuilt())
    }
}
