//! Billing's records: the batches, the snapshot of every batch as it was handed out (so asking
//! again returns the same bytes even if a read changes later), what was last billed for each
//! read (to detect edits after export), reads changed after billing had them, and API tokens.
//! Stored with postcard: append fields and variants at the end only.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{BatchId, Quantity, ReadId, ReadStatus, ReadType, Service, time_serde};

/// Whether a batch is still waiting for billing's ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    Open,
    Acked,
}

/// A billing batch: a set of reads handed to one billing client, each read in at most one batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub id: BatchId,
    /// The billing client that pulled it (`default` for the CLI).
    pub client: String,
    pub read_ids: Vec<ReadId>,
    pub status: BatchStatus,
    #[serde(with = "time_serde")]
    pub created_at: Timestamp,
    #[serde(with = "time_serde::option")]
    pub acked_at: Option<Timestamp>,
}

/// One read as it went out in a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchLine {
    pub read_id: ReadId,
    pub meter_id: String,
    /// Empty when the meter is not in the meter list.
    pub account: String,
    pub route: String,
    pub service: Option<Service>,
    pub unit: String,
    pub multiplier: Quantity,
    #[serde(with = "time_serde")]
    pub read_at: Timestamp,
    pub value: Quantity,
    pub consumption: Option<Quantity>,
    /// The read's status when it was batched (validated, accepted, edited, estimated).
    pub status: ReadStatus,
    pub read_type: ReadType,
    pub codes: Vec<String>,
}

/// The correction line a batch carries for a [`BilledReadChange`]: what billing had, what the
/// read is now, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    /// The read as it is now (value, time, status); for a withdrawn read, as it was billed.
    pub line: BatchLine,
    /// The batch that last carried this read.
    pub original_batch: BatchId,
    pub old_value: Quantity,
    #[serde(with = "time_serde")]
    pub old_read_at: Timestamp,
    /// `None`: the read was rejected after billing; billing should reverse it.
    pub new_value: Option<Quantity>,
    pub reason: String,
    #[serde(with = "time_serde")]
    pub corrected_at: Timestamp,
}

/// Everything a batch carries, frozen when the batch was created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchContents {
    pub lines: Vec<BatchLine>,
    pub corrections: Vec<Correction>,
}

/// What billing last received for a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Billed {
    pub batch: BatchId,
    pub value: Quantity,
    #[serde(with = "time_serde")]
    pub read_at: Timestamp,
    /// Billing was told to reverse the read.
    pub withdrawn: bool,
}

/// A read changed after billing had it: what billing had, how the read was before the change,
/// who changed it, when and why, and whether billing still needs a correction for it. One per
/// read, kept after its correction went out (the record the review screen shows).
///
/// While a correction is due, further changes keep what billing had; once billing has heard of
/// it, the read's next change starts a new record (keeping only [`audit_seq`](Self::audit_seq)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BilledReadChange {
    pub read_id: ReadId,
    pub meter_id: String,
    /// What billing had before the change. `None` when nothing was captured (a change noted
    /// for a read not in a batch): billing then goes by its [`Billed`] record of the read.
    pub billed: Option<Billed>,
    /// The read's status before the change.
    pub original_status: ReadStatus,
    /// The read's consumption before the change.
    pub original_consumption: Option<Quantity>,
    /// Why (the clerk's reason); `None` when the change came without one.
    pub reason: Option<String>,
    /// Who changed it.
    pub by: Option<String>,
    /// When the change was last noted.
    #[serde(with = "time_serde")]
    pub at: Timestamp,
    /// The audit entry of the clerk's edit of the exported read; the review screen shows the
    /// record while it is set (undoing that edit clears it). `None` for changes made otherwise.
    pub audit_seq: Option<u64>,
    /// A correction is due in the next batch of the client that billed the read; `false` once it
    /// went out, or when the read went back to what billing has.
    pub correction_due: bool,
}

impl BilledReadChange {
    /// Whether changing `old` into `new` changes what billing already has: the read was in a
    /// batch and its value or time changed, or it was rejected or un-rejected. The store notes
    /// such changes, and a clerk's action gives them its reason.
    pub fn changes_what_was_billed(old: &super::StoredRead, new: &super::StoredRead) -> bool {
        old.batch.is_some()
            && (old.read.value != new.read.value
                || old.read.read_at != new.read.read_at
                || (new.status == ReadStatus::Rejected) != (old.status == ReadStatus::Rejected))
    }

    /// What billing has of `read` as stored now, if it went out in a batch.
    pub fn billed_of(read: &super::StoredRead) -> Option<Billed> {
        read.batch.map(|batch| Billed {
            batch,
            value: read.read.value,
            read_at: read.read.read_at,
            withdrawn: read.status == ReadStatus::Rejected,
        })
    }

    /// A new record of a change of `old` (the read as stored before it), due, without a reason
    /// yet. `earlier` is the read's previous record, whose correction went out: only the
    /// clerk's edit the review screen shows carries over.
    pub fn opened(old: &super::StoredRead, earlier: Option<&BilledReadChange>, at: Timestamp) -> Self {
        BilledReadChange {
            read_id: old.id,
            meter_id: old.read.meter_id.clone(),
            billed: Self::billed_of(old),
            original_status: old.status,
            original_consumption: old.consumption,
            reason: None,
            by: None,
            at,
            audit_seq: earlier.and_then(|c| c.audit_seq),
            correction_due: true,
        }
    }
}

/// A billing client's API token; only its SHA-256 is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub name: String,
    pub sha256: [u8; 32],
    #[serde(with = "time_serde")]
    pub created_at: Timestamp,
    #[serde(with = "time_serde::option")]
    pub revoked_at: Option<Timestamp>,
}
