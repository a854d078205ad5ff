//! billing on PostgreSQL (not written yet: every method answers an engine error).

use crate::model::billing::{ApiToken, BatchContents, Billed, BilledReadChange};
use crate::model::{Batch, BatchId, BatchStatus, ReadId};

use super::PgTxn;
use crate::store::{BillingQueries, BillingWrites, Result, StoreError};

fn unbuilt() -> StoreError {
    StoreError::Engine("not built yet on PostgreSQL".into())
}

impl BillingQueries for PgTxn<'_> {
    fn batch(&self, _id: BatchId) -> Result<Option<Batch>> {
        Err(unbuilt())
    }
    fn open_batch(&self, _client: &str) -> Result<Option<Batch>> {
        Err(unbuilt())
    }
    fn batches(&self, _status: Option<BatchStatus>) -> Result<Vec<Batch>> {
        Err(unbuilt())
    }
    fn batch_contents(&self, _id: BatchId) -> Result<Option<BatchContents>> {
        Err(unbuilt())
    }
    fn billed(&self, _read: ReadId) -> Result<Option<Billed>> {
        Err(unbuilt())
    }
    fn billed_read_changes(&self) -> Result<Vec<BilledReadChange>> {
        Err(unbuilt())
    }
    fn billed_read_change(&self, _read: ReadId) -> Result<Option<BilledReadChange>> {
        Err(unbuilt())
    }
    fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        Err(unbuilt())
    }
}

impl BillingWrites for PgTxn<'_> {
    fn next_batch_id(&mut self) -> Result<BatchId> {
        Err(unbuilt())
    }
    fn put_batch(&mut self, _batch: &Batch) -> Result<()> {
        Err(unbuilt())
    }
    fn lock_open_batch(&mut self, _client: &str) -> Result<Option<BatchId>> {
        Err(unbuilt())
    }
    fn set_open_batch(&mut self, _client: &str, _batch: Option<BatchId>) -> Result<()> {
        Err(unbuilt())
    }
    fn put_batch_contents(&mut self, _id: BatchId, _contents: &BatchContents) -> Result<()> {
        Err(unbuilt())
    }
    fn put_billed(&mut self, _billed: &[(ReadId, Billed)]) -> Result<()> {
        Err(unbuilt())
    }
    fn put_billed_read_change(&mut self, _change: &BilledReadChange) -> Result<()> {
        Err(unbuilt())
    }
    fn remove_billed_read_change(&mut self, _read: ReadId) -> Result<()> {
        Err(unbuilt())
    }
    fn put_api_token(&mut self, _token: &ApiToken) -> Result<()> {
        Err(unbuilt())
    }
}
