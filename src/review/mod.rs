//! What clerks do with the reads VEE held back. Today: the review queue.

use crate::model::{ReadStatus, StoredRead};
use crate::store::{Result, Store};

/// The reads awaiting review (status `flagged`), by meter then time.
pub fn queue(store: &dyn Store) -> Result<Vec<StoredRead>> {
    let mut reads = store.begin_read()?.reads_with_status(ReadStatus::Flagged, usize::MAX)?;
    reads.sort_by(|a, b| a.read.meter_id.cmp(&b.read.meter_id).then(a.read.read_at.cmp(&b.read.read_at)));
    Ok(reads)
}
