//! Billing: batches, what each batch carried, what billing last received per read, reads
//! changed after billing had them, and the billing API's tokens.

use crate::model::billing::{ApiToken, BatchContents, Billed, BilledReadChange};
use crate::model::{Batch, BatchId, BatchStatus, ReadId};
use crate::store::Result;

pub trait BillingQueries {
    fn batch(&self, id: BatchId) -> Result<Option<Batch>>;
    /// The batch a billing client has pulled but not acked yet.
    fn open_batch(&self, client: &str) -> Result<Option<Batch>>;
    /// Batches, oldest first, optionally only those with `status`.
    fn batches(&self, status: Option<BatchStatus>) -> Result<Vec<Batch>>;
    /// What a batch carried when it was created.
    fn batch_contents(&self, id: BatchId) -> Result<Option<BatchContents>>;
    /// What billing last received for a read.
    fn billed(&self, read: ReadId) -> Result<Option<Billed>>;
    /// Every read changed after billing had it (corrections due and sent), by read id.
    fn billed_read_changes(&self) -> Result<Vec<BilledReadChange>>;
    /// The record of one read changed after billing had it.
    fn billed_read_change(&self, read: ReadId) -> Result<Option<BilledReadChange>>;
    /// Every API token (revoked ones too), by name.
    fn api_tokens(&self) -> Result<Vec<ApiToken>>;
}

pub trait BillingWrites: BillingQueries {
    /// A fresh batch id (increasing, never reused).
    fn next_batch_id(&mut self) -> Result<BatchId>;
    /// Insert or replace a batch.
    fn put_batch(&mut self, batch: &Batch) -> Result<()>;
    /// The id of a client's open batch, locked against other writers until this transaction
    /// ends (two instances never hand one client two batches).
    fn lock_open_batch(&mut self, client: &str) -> Result<Option<BatchId>>;
    /// Set or clear a client's open batch.
    fn set_open_batch(&mut self, client: &str, batch: Option<BatchId>) -> Result<()>;
    fn put_batch_contents(&mut self, id: BatchId, contents: &BatchContents) -> Result<()>;
    fn put_billed(&mut self, billed: &[(ReadId, Billed)]) -> Result<()>;
    /// Insert or replace the record of a read changed after billing had it.
    fn put_billed_read_change(&mut self, change: &BilledReadChange) -> Result<()>;
    fn remove_billed_read_change(&mut self, read: ReadId) -> Result<()>;
    fn put_api_token(&mut self, token: &ApiToken) -> Result<()>;
}
