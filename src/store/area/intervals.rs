//! Interval data: a meter's channels, its meter-channel-days (one record per meter, channel
//! and local day, values and quality as arrays), the days by status (review queue, billing),
//! and interval batches with what each carried.

use jiff::civil::Date;

use crate::model::interval::{Channel, DayKey, IntervalBatch, IntervalBatchContents, IntervalDay};
use crate::model::{BatchId, ReadStatus};
use crate::store::Result;

/// One meter and channel's days with `from <= date < to`, for [`IntervalQueries::day_windows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayWindow<'a> {
    pub meter_id: &'a str,
    pub channel: &'a str,
    pub from: Date,
    pub to: Date,
}

pub trait IntervalQueries {
    fn channel(&self, meter_id: &str, channel: &str) -> Result<Option<Channel>>;
    /// [`IntervalQueries::channel`] for many (meter, channel) pairs, in their order; one
    /// statement on a server engine.
    fn channels_by_key(&self, keys: &[(&str, &str)]) -> Result<Vec<Option<Channel>>>;
    /// The days of each window, in the windows' order, each by date; one statement on a
    /// server engine (an import reads the history of thousands of meters at once).
    fn day_windows(&self, windows: &[DayWindow<'_>]) -> Result<Vec<Vec<IntervalDay>>>;
    /// A meter's channels, by name.
    fn channels(&self, meter_id: &str) -> Result<Vec<Channel>>;
    fn interval_day(&self, key: &DayKey) -> Result<Option<IntervalDay>>;
    /// A meter's days with `from <= date < to`, every channel: by channel name, then date.
    fn interval_days(&self, meter_id: &str, from: Date, to: Date) -> Result<Vec<IntervalDay>>;
    /// Keys of days with `status` greater than `after` (all when `None`), in key order (meter,
    /// channel, date), at most `limit`: an index scan.
    fn interval_days_with_status(
        &self,
        status: ReadStatus,
        after: Option<&DayKey>,
        limit: usize,
    ) -> Result<Vec<DayKey>>;
    fn count_interval_days(&self) -> Result<u64>;
    fn interval_batch(&self, id: BatchId) -> Result<Option<IntervalBatch>>;
    /// Every interval batch, oldest first.
    fn interval_batches(&self) -> Result<Vec<IntervalBatch>>;
    fn interval_batch_contents(&self, id: BatchId) -> Result<Option<IntervalBatchContents>>;
}

pub trait IntervalWrites: IntervalQueries {
    /// Insert or replace a channel.
    fn put_channel(&mut self, channel: &Channel) -> Result<()>;
    /// [`IntervalWrites::put_channel`] for many; one statement on a server engine.
    fn put_channels(&mut self, channels: &[Channel]) -> Result<()>;
    /// Insert or replace days (the status index follows); one statement on a server engine.
    fn put_interval_days(&mut self, days: &[IntervalDay]) -> Result<()>;
    /// Insert or replace an interval batch (its id from `next_batch_id`).
    fn put_interval_batch(&mut self, batch: &IntervalBatch) -> Result<()>;
    fn put_interval_batch_contents(&mut self, id: BatchId, contents: &IntervalBatchContents) -> Result<()>;
    /// The id of a client's open interval batch, locked against other writers until this
    /// transaction ends (two instances never hand one client two batches).
    fn lock_open_interval_batch(&mut self, client: &str) -> Result<Option<BatchId>>;
    /// Set or clear a client's open interval batch.
    fn set_open_interval_batch(&mut self, client: &str, batch: Option<BatchId>) -> Result<()>;
}
