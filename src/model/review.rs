//! What clerk review stores besides the reads: the hash-chained audit trail, re-read service
//! orders and meter changes (a clerk's change of an exported read is a
//! [`BilledReadChange`](super::billing::BilledReadChange)).
//!
//! Stored with postcard like the rest of the model: append new fields and variants at the end
//! only.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Quantity, ReadId, ReadStatus, time_serde};

/// What a clerk (or VEE, after a clerk's change) did to a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// Accepted as is.
    Accept,
    /// Value changed by hand, with a reason.
    Edit,
    /// Value estimated (ADU × days).
    Estimate,
    /// Rejected; a re-read service order was created.
    Reject,
    /// A note; the read is unchanged.
    Note,
    /// The clerk's last change on the read was undone.
    Undo,
    /// VEE looked at the read again because an earlier read of the meter changed.
    Revalidate,
    /// A supervisor approved an adjustment that awaited approval: the read became billable.
    Approve,
    /// A supervisor declined it: the read is back at its value before the adjustment, `flagged`.
    Decline,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Accept => "accept",
            AuditAction::Edit => "edit",
            AuditAction::Estimate => "estimate",
            AuditAction::Reject => "reject",
            AuditAction::Note => "note",
            AuditAction::Undo => "undo",
            AuditAction::Revalidate => "revalidate",
            AuditAction::Approve => "approve",
            AuditAction::Decline => "decline",
        }
    }

    /// Whether the action changes the read (a note does not, so it does not bump the
    /// read's revision and never makes another clerk's view stale).
    pub fn changes_read(self) -> bool {
        self != AuditAction::Note
    }
}

/// Length of a SHA-256 digest.
pub const HASH_LEN: usize = 32;

/// One entry of the append-only audit trail. `hash` = SHA-256(`prev_hash` ‖ the entry's
/// other fields, postcard-encoded; then, for an interval day's entry only, its
/// [`DayAudit`] postcard-encoded), so changing or removing an entry breaks the chain and the
/// entries written before interval days existed keep their hashes.
///
/// An entry is about a register read (`read_id`, `day` = `None`) or about an interval day
/// (`day` = `Some`, `read_id` = 0, `old_value` / `new_value` = the day's totals, the statuses
/// the day's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// 1, 2, 3, … without gaps.
    pub seq: u64,
    #[serde(with = "time_serde")]
    pub at: Timestamp,
    /// Who: the OS user who acted (`alice`, or `alice (entered by root)` when an admin acted for
    /// alice with `--on-behalf-of`); `vee` for re-validation.
    pub clerk: String,
    pub action: AuditAction,
    pub read_id: ReadId,
    pub meter_id: String,
    pub old_value: Quantity,
    pub new_value: Quantity,
    pub old_status: ReadStatus,
    pub new_status: ReadStatus,
    pub reason: String,
    /// Hash of the previous entry (all zero for the first).
    #[serde(with = "hex_bytes")]
    pub prev_hash: [u8; HASH_LEN],
    #[serde(with = "hex_bytes")]
    pub hash: [u8; HASH_LEN],
    /// The interval day the entry is about (appended last: entries stored before it decode
    /// with `None`). Left out when `None`, so a read's entry is stored and shown exactly as
    /// before days existed; safe in postcard only because it is the last field of a record
    /// stored on its own (never inside another record) and its decoder takes the end as `None`.
    #[serde(
        default,
        deserialize_with = "trailing::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub day: Option<DayAudit>,
}

/// What an audit entry of an interval day records besides the common fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayAudit {
    pub channel: String,
    pub date: Date,
    /// The day's revision after the change (what a later action names as seen).
    pub rev: u64,
    /// The intervals whose value changed, in interval order.
    pub changes: Vec<IntervalChange>,
}

/// One interval's value before and after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalChange {
    /// 1-based interval number.
    pub interval: u16,
    pub old: Option<Quantity>,
    pub new: Option<Quantity>,
    /// The interval as it was besides its value (a supervisor's decline puts it back).
    #[serde(default)]
    pub old_quality: Option<crate::model::interval::Quality>,
    #[serde(default)]
    pub old_method: Option<crate::model::interval::Method>,
    #[serde(default)]
    pub old_source: Option<u8>,
}

/// A trailing optional field in postcard: an entry written before the field existed ends
/// where it would start. postcard is not self-describing, so the end of input is the only
/// sign; any failure there reads as `None`, and the hash (which covers the field when it is
/// present) then tells a damaged entry from an old one.
mod trailing {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
        if d.is_human_readable() {
            Option::<T>::deserialize(d)
        } else {
            Ok(Option::<T>::deserialize(d).unwrap_or(None))
        }
    }
}

/// Hashes as hex text in JSON, raw bytes in the store.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(h))
        } else {
            serde::Serialize::serialize(h, s)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            let v = hex::decode(&s).map_err(serde::de::Error::custom)?;
            v.try_into()
                .map_err(|_| serde::de::Error::custom("hash must be 32 bytes"))
        } else {
            <[u8; 32]>::deserialize(d)
        }
    }
}

impl AuditEntry {
    /// The hash this entry must carry, given its `prev_hash` and its other fields.
    pub fn compute_hash(&self) -> [u8; HASH_LEN] {
        #[derive(Serialize)]
        struct Hashed<'a> {
            seq: u64,
            at: i64,
            clerk: &'a str,
            action: AuditAction,
            read_id: ReadId,
            meter_id: &'a str,
            old_value: Quantity,
            new_value: Quantity,
            old_status: ReadStatus,
            new_status: ReadStatus,
            reason: &'a str,
        }
        let body = Hashed {
            seq: self.seq,
            at: self.at.as_microsecond(),
            clerk: &self.clerk,
            action: self.action,
            read_id: self.read_id,
            meter_id: &self.meter_id,
            old_value: self.old_value,
            new_value: self.new_value,
            old_status: self.old_status,
            new_status: self.new_status,
            reason: &self.reason,
        };
        let bytes = postcard::to_allocvec(&body).expect("postcard encodes plain data");
        let mut h = Sha256::new();
        h.update(self.prev_hash);
        h.update(&bytes);
        // Only when present: a register read's entry hashes exactly as before days existed.
        if let Some(day) = &self.day {
            h.update(postcard::to_allocvec(day).expect("postcard encodes plain data"));
        }
        h.finalize().into()
    }
}

/// Whether a service order still needs a field visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Open,
    Completed,
    /// Withdrawn (the reject that created it was undone).
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Open => "open",
            OrderStatus::Completed => "completed",
            OrderStatus::Cancelled => "cancelled",
        }
    }
}

/// A re-read service order: send a reader back to the meter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceOrder {
    pub id: u64,
    pub meter_id: String,
    /// The rejected read that asked for it.
    pub read_id: ReadId,
    pub route: String,
    pub sequence: u32,
    pub address: String,
    pub reason: String,
    pub due: Date,
    pub status: OrderStatus,
    #[serde(with = "time_serde")]
    pub created_at: Timestamp,
    pub created_by: String,
    #[serde(with = "time_serde::option")]
    pub closed_at: Option<Timestamp>,
    pub closed_by: Option<String>,
    /// What the field visit found (or why it was cancelled).
    pub outcome: String,
}

/// A meter exchanged (or its register replaced) at a service point: reads after `at` count
/// from `install_read`, not from the old meter's last read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterChange {
    pub meter_id: String,
    #[serde(with = "time_serde")]
    pub at: Timestamp,
    pub old_serial: String,
    pub new_serial: String,
    pub old_dials: u8,
    pub new_dials: u8,
    /// Register value of the new meter when it was installed.
    pub install_read: Quantity,
    /// Last register value of the old meter when it was removed, if known: its usage since
    /// the previous read is billed too.
    pub removal_read: Option<Quantity>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> AuditEntry {
        AuditEntry {
            seq: 1,
            at: Timestamp::from_second(1_700_000_000).unwrap(),
            clerk: "ann".into(),
            action: AuditAction::Edit,
            read_id: 7,
            meter_id: "M1".into(),
            old_value: Quantity::from_units(912).unwrap(),
            new_value: Quantity::from_units(612).unwrap(),
            old_status: ReadStatus::Flagged,
            new_status: ReadStatus::Edited,
            reason: "keyed 9 for 6".into(),
            prev_hash: [0; 32],
            hash: [0; 32],
            day: None,
        }
    }

    fn day_audit() -> DayAudit {
        DayAudit {
            channel: "E1".into(),
            date: jiff::civil::date(2025, 3, 4),
            rev: 3,
            changes: vec![IntervalChange {
                interval: 37,
                old: Some(Quantity::from_units(9).unwrap()),
                new: Some(Quantity::from_micros(250_000)),
                old_quality: Some(crate::model::interval::Quality::Actual),
                old_method: None,
                old_source: Some(0),
            }],
        }
    }

    #[test]
    fn an_entry_stored_before_interval_days_decodes_and_keeps_its_hash() {
        // The layout before `day` was appended, as postcard wrote it.
        #[derive(Serialize)]
        struct Old<'a> {
            seq: u64,
            #[serde(with = "time_serde")]
            at: Timestamp,
            clerk: &'a str,
            action: AuditAction,
            read_id: ReadId,
            meter_id: &'a str,
            old_value: Quantity,
            new_value: Quantity,
            old_status: ReadStatus,
            new_status: ReadStatus,
            reason: &'a str,
            prev_hash: [u8; 32],
            hash: [u8; 32],
        }
        let mut e = entry();
        e.hash = e.compute_hash();
        let old = Old {
            seq: e.seq,
            at: e.at,
            clerk: &e.clerk,
            action: e.action,
            read_id: e.read_id,
            meter_id: &e.meter_id,
            old_value: e.old_value,
            new_value: e.new_value,
            old_status: e.old_status,
            new_status: e.new_status,
            reason: &e.reason,
            prev_hash: e.prev_hash,
            hash: e.hash,
        };
        let bytes = postcard::to_allocvec(&old).unwrap();
        let back: AuditEntry = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.compute_hash(), e.hash);
        // A pinned hash: the hashed content of a read's entry never changes.
        assert_eq!(
            hex::encode(e.hash),
            "fde171246b1dbc912407e31300c491ce2e19dceaf01be8d59265193fb835f319"
        );
    }

    #[test]
    fn a_day_entry_round_trips_and_its_hash_covers_the_day() {
        let mut e = entry();
        e.read_id = 0;
        e.day = Some(day_audit());
        e.hash = e.compute_hash();
        let back: AuditEntry = postcard::from_bytes(&postcard::to_allocvec(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        let json: AuditEntry = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(json, e);
        let mut changed = e.clone();
        changed.day.as_mut().unwrap().changes[0].new = Some(Quantity::from_micros(260_000));
        assert_ne!(changed.compute_hash(), e.hash);
        let mut gone = e.clone();
        gone.day = None;
        assert_ne!(gone.compute_hash(), e.hash, "dropping the day breaks the hash");
        // A read's entry is stored and shown as before: no `day` at all.
        let v = serde_json::to_value(entry()).unwrap();
        assert!(v.get("day").is_none(), "{v}");
        assert_eq!(serde_json::from_value::<AuditEntry>(v).unwrap(), entry());
        let mut read = entry();
        read.hash = read.compute_hash();
        let bytes = postcard::to_allocvec(&read).unwrap();
        assert_eq!(postcard::from_bytes::<AuditEntry>(&bytes).unwrap(), read);
    }

    #[test]
    fn hash_covers_every_field_and_the_previous_hash() {
        let e = entry();
        let h = e.compute_hash();
        let mut changed = e.clone();
        changed.new_value = Quantity::from_units(613).unwrap();
        assert_ne!(changed.compute_hash(), h);
        let mut changed = e.clone();
        changed.reason.push('!');
        assert_ne!(changed.compute_hash(), h);
        let mut changed = e.clone();
        changed.prev_hash[0] = 1;
        assert_ne!(changed.compute_hash(), h);
        // The stored hash itself is not part of the input.
        let mut same = e.clone();
        same.hash = h;
        assert_eq!(same.compute_hash(), h);
    }

    #[test]
    fn audit_actions_are_appended_so_stored_entries_keep_their_meaning() {
        let all = [
            AuditAction::Accept,
            AuditAction::Edit,
            AuditAction::Estimate,
            AuditAction::Reject,
            AuditAction::Note,
            AuditAction::Undo,
            AuditAction::Revalidate,
            AuditAction::Approve,
            AuditAction::Decline,
        ];
        for (i, a) in all.iter().enumerate() {
            assert_eq!(postcard::to_allocvec(a).unwrap(), [i as u8], "{}", a.as_str());
        }
        assert_eq!(
            (AuditAction::Approve.as_str(), AuditAction::Decline.as_str()),
            ("approve", "decline")
        );
        assert!(AuditAction::Approve.changes_read() && AuditAction::Decline.changes_read());
    }
}
