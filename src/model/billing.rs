//! Billing's records: the batches, the snapshot of every batch as it was handed out (so asking
//! again returns the same bytes even if a read changes later), what was last billed for each
//! read (to detect edits after export), pending changes, and API tokens.
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

/// A read changed after it was billed: what billing had, what it is now, and why.
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

/// A billed read changed: a correction is due in the client's next batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingChange {
    /// Why (the clerk's reason); `None` when the change came without one.
    pub reason: Option<String>,
    /// Who changed it.
    pub by: Option<String>,
    #[serde(with = "time_serde")]
    pub at: Timestamp,
    /// What billing had before the change (captured from the read as it was stored).
    pub billed: Option<Billed>,
}

impl BillingChange {
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
