//! Migrations of older redb stores, run by `RedbStore::open` inside its opening write
//! transaction: a store is migrated completely or not at all.
//!
//! Each step reads the old tables with the old record layouts (kept here, private), writes the
//! new ones and drops the old tables; the caller then records the new schema version.

use std::collections::{BTreeMap, BTreeSet};

use redb::{ReadableTable, TableHandle};

use super::redb_engine::{AUDIT, BILLED_READ_CHANGES, GW_GATEWAYS, QUARANTINE, READS, decode, encode, engine};
use super::{Result, SCHEMA_VERSION};
use crate::model::billing::{Billed, BilledReadChange};
use crate::model::{AuditEntry, QuarantineEntry, StoredQuarantine, StoredRead};

/// Whether a store of schema version `found` can be migrated to this build's.
pub(super) fn migrates_from(found: u64) -> bool {
    (1..SCHEMA_VERSION).contains(&found)
}

/// Bring a store of schema version `from` to [`SCHEMA_VERSION`], step by step, in `txn`.
pub(super) fn migrate(txn: &redb::WriteTransaction, from: u64, path: &str) -> Result<()> {
    tracing::info!(
        "store {path}: migrating schema version {from} to {SCHEMA_VERSION}; older meterd releases cannot open it \
         afterwards, so keep a backup of the store file from before the upgrade"
    );
    for version in from..SCHEMA_VERSION {
        match version {
            1 => v1_to_v2(txn)?,
            2 => v2_to_v3(txn)?,
            3 => v3_to_v4(txn)?,
            _ => unreachable!("migrates_from admits versions with a step only"),
        }
    }
    Ok(())
}

/// The records version 1 kept in two tables, as postcard wrote them.
mod v1 {
    use jiff::Timestamp;
    use redb::TableDefinition;
    use serde::{Deserialize, Serialize};

    use crate::model::billing::Billed;
    use crate::model::{BatchId, Quantity, ReadId, ReadStatus, time_serde};

    /// Billed reads changed since: corrections due (the row went when the correction was sent).
    pub const BILLING_CHANGES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("billing_changes");
    /// Originals of exported reads a clerk edited.
    pub const CORRECTIONS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("corrections");

    /// A `billing_changes` value.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct BillingChange {
        pub reason: Option<String>,
        pub by: Option<String>,
        #[serde(with = "time_serde")]
        pub at: Timestamp,
        pub billed: Option<Billed>,
    }

    /// A `corrections` value.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Correction {
        pub read_id: ReadId,
        pub meter_id: String,
        pub original_value: Quantity,
        pub original_consumption: Option<Quantity>,
        pub original_status: ReadStatus,
        pub batch: Option<BatchId>,
        pub audit_seq: u64,
        #[serde(with = "time_serde")]
        pub at: Timestamp,
    }
}

/// Version 2 keeps one record per read changed after billing had it: `billing_changes` (due
/// corrections) and `corrections` (the clerk's originals) merge into `billed_read_changes`.
fn v1_to_v2(txn: &redb::WriteTransaction) -> Result<()> {
    let changes: BTreeMap<u64, v1::BillingChange> = rows(txn, v1::BILLING_CHANGES, "billing change")?;
    let originals: BTreeMap<u64, v1::Correction> = rows(txn, v1::CORRECTIONS, "correction")?;
    {
        let reads = txn.open_table(READS).map_err(engine)?;
        let audit = txn.open_table(AUDIT).map_err(engine)?;
        let mut out = txn.open_table(BILLED_READ_CHANGES).map_err(engine)?;
        let ids: BTreeSet<u64> = changes.keys().chain(originals.keys()).copied().collect();
        for id in ids {
            let (change, original) = (changes.get(&id), originals.get(&id));
            let read: Option<StoredRead> = match reads.get(id).map_err(engine)? {
                Some(v) => Some(decode("read", v.value())?),
                None => None,
            };
            let record = match (change, original) {
                // A clerk's edit whose correction is still due.
                (Some(c), Some(o)) => BilledReadChange {
                    read_id: id,
                    meter_id: o.meter_id.clone(),
                    billed: c.billed,
                    original_status: o.original_status,
                    original_consumption: o.original_consumption,
                    reason: c.reason.clone(),
                    by: c.by.clone(),
                    at: c.at,
                    audit_seq: Some(o.audit_seq),
                    correction_due: true,
                },
                // A due correction of a change outside review (or of an undone edit). Version 1
                // did not keep the read's status before it: the read as stored stands in (the
                // review screen does not show such records). A read that is gone was due for
                // nothing (billing would have dropped the note).
                (Some(c), None) => {
                    let Some(read) = read else { continue };
                    BilledReadChange {
                        read_id: id,
                        meter_id: read.read.meter_id.clone(),
                        billed: c.billed,
                        original_status: read.status,
                        original_consumption: read.consumption,
                        reason: c.reason.clone(),
                        by: c.by.clone(),
                        at: c.at,
                        audit_seq: None,
                        correction_due: true,
                    }
                }
                // A clerk's edit whose correction went out. What billing had is the original
                // value in its batch at the read's time (edits never re-time a read); who and
                // why are in the edit's audit entry.
                (None, Some(o)) => {
                    let entry: Option<AuditEntry> = match audit.get(o.audit_seq).map_err(engine)? {
                        Some(v) => Some(decode("audit entry", v.value())?),
                        None => None,
                    };
                    BilledReadChange {
                        read_id: id,
                        meter_id: o.meter_id.clone(),
                        billed: o.batch.zip(read.as_ref()).map(|(batch, r)| Billed {
                            batch,
                            value: o.original_value,
                            read_at: r.read.read_at,
                            withdrawn: false,
                        }),
                        original_status: o.original_status,
                        original_consumption: o.original_consumption,
                        reason: entry.as_ref().map(|e| e.reason.clone()),
                        by: entry.map(|e| e.clerk),
                        at: o.at,
                        audit_seq: Some(o.audit_seq),
                        correction_due: false,
                    }
                }
                (None, None) => continue,
            };
            out.insert(id, encode(&record)?.as_slice()).map_err(engine)?;
        }
    }
    for old in [v1::BILLING_CHANGES, v1::CORRECTIONS] {
        txn.delete_table(old).map_err(engine)?;
    }
    Ok(())
}

/// Version 3 keeps each quarantine entry with its payload's size and digest and what a retry
/// made of it (payloads stay whole here; the retention at start applies today's limits; the
/// opening transaction counts the stored bytes afterwards).
fn v2_to_v3(txn: &redb::WriteTransaction) -> Result<()> {
    let old: BTreeMap<u64, QuarantineEntry> = rows(txn, QUARANTINE, "quarantine entry")?;
    let mut t = txn.open_table(QUARANTINE).map_err(engine)?;
    for (id, entry) in old {
        let bytes = encode(&StoredQuarantine::new(&entry, usize::MAX))?;
        t.insert(id, bytes.as_slice()).map_err(engine)?;
    }
    Ok(())
}

/// The gateway record up to version 3, as postcard wrote it.
mod v3 {
    use jiff::Timestamp;
    use serde::{Deserialize, Serialize};

    use crate::model::time_serde;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct GatewayState {
        pub gateway: String,
        #[serde(with = "time_serde::option")]
        pub last_message_at: Option<Timestamp>,
        pub messages: u64,
        pub undecodable: u64,
        pub status: Option<String>,
        #[serde(with = "time_serde::option")]
        pub status_at: Option<Timestamp>,
        pub last_topic: String,
    }
}

/// Version 4 counts gateway health by reason and in windows: each gateway record gains
/// `decoded` (what was not undecodable), no reasons for the undecodable messages counted before
/// (they were not recorded) and empty windows.
fn v3_to_v4(txn: &redb::WriteTransaction) -> Result<()> {
    let exists = txn
        .list_tables()
        .map_err(engine)?
        .any(|t| t.name() == GW_GATEWAYS.name());
    if !exists {
        return Ok(());
    }
    let mut old = Vec::new();
    {
        let t = txn.open_table(GW_GATEWAYS).map_err(engine)?;
        for e in t.iter().map_err(engine)? {
            let (_, v) = e.map_err(engine)?;
            old.push(decode::<v3::GatewayState>("gateway", v.value())?);
        }
    }
    let mut t = txn.open_table(GW_GATEWAYS).map_err(engine)?;
    for g in old {
        let mut new = crate::model::GatewayState::new(&g.gateway);
        new.last_message_at = g.last_message_at;
        new.messages = g.messages;
        new.undecodable = g.undecodable;
        new.decoded = g.messages.saturating_sub(g.undecodable);
        new.status = g.status;
        new.status_at = g.status_at;
        new.last_topic = g.last_topic;
        let bytes = encode(&new)?;
        t.insert(g.gateway.as_str(), bytes.as_slice()).map_err(engine)?;
    }
    Ok(())
}

/// Every row of a version-1 table keyed by read id (none when the table is missing).
fn rows<T: serde::de::DeserializeOwned>(
    txn: &redb::WriteTransaction,
    table: redb::TableDefinition<'_, u64, &[u8]>,
    what: &'static str,
) -> Result<BTreeMap<u64, T>> {
    let exists = txn.list_tables().map_err(engine)?.any(|t| t.name() == table.name());
    if !exists {
        return Ok(BTreeMap::new());
    }
    let t = txn.open_table(table).map_err(engine)?;
    let mut out = BTreeMap::new();
    for e in t.iter().map_err(engine)? {
        let (k, v) = e.map_err(engine)?;
        out.insert(k.value(), decode(what, v.value())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::store::Rules;
    use jiff::Timestamp;
    use redb::{Database, ReadableDatabase};

    use super::*;
    use crate::model::{AuditAction, HASH_LEN, Origin, Quantity, Read, ReadStatus, ReadType, StoredRead};
    use crate::store::redb_engine::{K_SCHEMA, META};
    use crate::store::{RedbStore, Store};

    fn q(units: i64) -> Quantity {
        Quantity::from_units(units).unwrap()
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn stored(value: i64, at: &str, status: ReadStatus, batch: u64) -> StoredRead {
        StoredRead {
            id: 0,
            read: Read {
                meter_id: "W-100".into(),
                read_at: t(at),
                value: q(value),
                raw: value.to_string(),
                read_type: ReadType::Manual,
                codes: vec![],
                reader: None,
                origin: Origin::file_line("routes.csv", 1),
            },
            status,
            flags: vec![],
            consumption: Some(q(300)),
            received_at: t(at),
            batch: Some(batch),
        }
    }

    fn edit_entry(read_id: u64, clerk: &str, reason: &str) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at: t("2026-02-01T00:00:00Z"),
            clerk: clerk.into(),
            action: AuditAction::Edit,
            read_id,
            meter_id: "W-100".into(),
            old_value: q(1),
            new_value: q(2),
            old_status: ReadStatus::Exported,
            new_status: ReadStatus::Edited,
            reason: reason.into(),
            prev_hash: [0; HASH_LEN],
            hash: [0; HASH_LEN],
            day: None,
        }
    }

    fn billed(batch: u64, value: i64, at: &str, withdrawn: bool) -> Billed {
        Billed {
            batch,
            value: q(value),
            read_at: t(at),
            withdrawn,
        }
    }

    #[test]
    fn version_1_corrections_and_billing_changes_become_billed_read_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.redb");
        // The reads and the audit trail, whose layouts version 2 keeps.
        let (edited, resent, rejected) = {
            let store = RedbStore::open(&path).unwrap();
            let mut txn = store.begin_write().unwrap();
            let edited = txn
                .insert_read(&stored(13920, "2025-11-01T00:00:00Z", ReadStatus::Edited, 1))
                .unwrap();
            let resent = txn
                .insert_read(&stored(500, "2025-12-01T00:00:00Z", ReadStatus::Exported, 2))
                .unwrap();
            let rejected = txn
                .insert_read(&stored(700, "2026-01-01T00:00:00Z", ReadStatus::Rejected, 1))
                .unwrap();
            txn.append_audit(edit_entry(edited, "ann", "reader misread"), None)
                .unwrap();
            txn.append_audit(edit_entry(resent, "bob", "dial 4 for 5"), None)
                .unwrap();
            txn.commit().unwrap();
            (edited, resent, rejected)
        };
        // What version 1 wrote beside them: two tables instead of the new one.
        let changes = [
            (
                edited,
                v1::BillingChange {
                    reason: Some("reader misread".into()),
                    by: Some("ann".into()),
                    at: t("2026-02-01T00:00:00Z"),
                    billed: Some(billed(1, 13308, "2025-11-01T00:00:00Z", false)),
                },
            ),
            (
                rejected,
                v1::BillingChange {
                    reason: None,
                    by: None,
                    at: t("2026-02-02T00:00:00Z"),
                    billed: Some(billed(1, 700, "2026-01-01T00:00:00Z", false)),
                },
            ),
            // Of a read that is not stored: billing would have dropped it.
            (
                999,
                v1::BillingChange {
                    reason: None,
                    by: None,
                    at: t("2026-02-02T00:00:00Z"),
                    billed: None,
                },
            ),
        ];
        let originals = [
            v1::Correction {
                read_id: edited,
                meter_id: "W-100".into(),
                original_value: q(13308),
                original_consumption: Some(q(612)),
                original_status: ReadStatus::Exported,
                batch: Some(1),
                audit_seq: 1,
                at: t("2026-02-01T00:00:00Z"),
            },
            // Its correction went out in batch 2 (the read is exported again).
            v1::Correction {
                read_id: resent,
                meter_id: "W-100".into(),
                original_value: q(450),
                original_consumption: Some(q(50)),
                original_status: ReadStatus::Exported,
                batch: Some(1),
                audit_seq: 2,
                at: t("2026-02-01T12:00:00Z"),
            },
        ];
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            assert!(txn.delete_table(BILLED_READ_CHANGES).unwrap());
            {
                let mut t = txn.open_table(v1::BILLING_CHANGES).unwrap();
                for (id, c) in &changes {
                    t.insert(*id, postcard::to_allocvec(c).unwrap().as_slice()).unwrap();
                }
                let mut t = txn.open_table(v1::CORRECTIONS).unwrap();
                for c in &originals {
                    t.insert(c.read_id, postcard::to_allocvec(c).unwrap().as_slice())
                        .unwrap();
                }
                txn.open_table(META).unwrap().insert(K_SCHEMA, 1).unwrap();
            }
            txn.commit().unwrap();
        }

        let store = RedbStore::open(&path).unwrap();
        let got = store.begin_read().unwrap().billed_read_changes().unwrap();
        let expected = vec![
            BilledReadChange {
                read_id: edited,
                meter_id: "W-100".into(),
                billed: Some(billed(1, 13308, "2025-11-01T00:00:00Z", false)),
                original_status: ReadStatus::Exported,
                original_consumption: Some(q(612)),
                reason: Some("reader misread".into()),
                by: Some("ann".into()),
                at: t("2026-02-01T00:00:00Z"),
                audit_seq: Some(1),
                correction_due: true,
            },
            BilledReadChange {
                read_id: resent,
                meter_id: "W-100".into(),
                billed: Some(billed(1, 450, "2025-12-01T00:00:00Z", false)),
                original_status: ReadStatus::Exported,
                original_consumption: Some(q(50)),
                reason: Some("dial 4 for 5".into()),
                by: Some("bob".into()),
                at: t("2026-02-01T12:00:00Z"),
                audit_seq: Some(2),
                correction_due: false,
            },
            BilledReadChange {
                read_id: rejected,
                meter_id: "W-100".into(),
                billed: Some(billed(1, 700, "2026-01-01T00:00:00Z", false)),
                original_status: ReadStatus::Rejected,
                original_consumption: Some(q(300)),
                reason: None,
                by: None,
                at: t("2026-02-02T00:00:00Z"),
                audit_seq: None,
                correction_due: true,
            },
        ];
        assert_eq!(got, expected);
        drop(store);

        // The old tables are gone and the version is recorded: opening again changes nothing.
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_read().unwrap();
            let names: Vec<String> = txn.list_tables().unwrap().map(|t| t.name().to_owned()).collect();
            assert!(
                names.iter().all(|n| n != "billing_changes" && n != "corrections"),
                "{names:?}"
            );
            let version = txn.open_table(META).unwrap().get(K_SCHEMA).unwrap().map(|v| v.value());
            assert_eq!(version, Some(SCHEMA_VERSION));
        }
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.begin_read().unwrap().billed_read_changes().unwrap(), expected);
    }

    #[test]
    fn version_2_quarantine_entries_get_their_size_digest_and_byte_total() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meterd.redb");
        drop(RedbStore::open(&path).unwrap());
        let old = [
            QuarantineEntry {
                source: "mqtt meters/gw1/raw".into(),
                reason: "BCH check failed: syndrome 3".into(),
                payload: vec![1, 2, 3],
                received_at: t("2026-01-01T00:00:00Z"),
            },
            QuarantineEntry {
                source: "cradle /dev/ttyS0 recorder 9".into(),
                reason: "no meter".into(),
                payload: vec![7; 9000],
                received_at: t("2026-01-02T00:00:00Z"),
            },
        ];
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(QUARANTINE).unwrap();
                for (i, e) in old.iter().enumerate() {
                    t.insert(i as u64 + 1, postcard::to_allocvec(e).unwrap().as_slice())
                        .unwrap();
                }
                let mut meta = txn.open_table(META).unwrap();
                meta.insert(K_SCHEMA, 2).unwrap();
                meta.remove("quarantine_bytes").unwrap();
            }
            txn.commit().unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        let txn = store.begin_read().unwrap();
        let got = txn.quarantine_entries().unwrap();
        let want: Vec<(u64, StoredQuarantine)> = old
            .iter()
            .enumerate()
            .map(|(i, e)| (i as u64 + 1, StoredQuarantine::new(e, usize::MAX)))
            .collect();
        assert_eq!(got, want);
        // Kept whole (the retention at the daemon's start applies today's limits).
        assert!(!got[1].1.head_only());
        let bytes: usize = want.iter().map(|(_, q)| encode(q).unwrap().len()).sum();
        assert_eq!(txn.quarantine_usage().unwrap().bytes, bytes as u64);
        assert_eq!(txn.quarantine_usage().unwrap().entries, 2);
    }

    #[test]
    fn version_3_gateways_keep_their_counts_and_gain_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meterd.redb");
        drop(RedbStore::open(&path).unwrap());
        let old = v3::GatewayState {
            gateway: "pole-17".into(),
            last_message_at: Some(t("2026-03-01T10:00:00Z")),
            messages: 120,
            undecodable: 7,
            status: Some("online".into()),
            status_at: Some(t("2026-03-01T09:00:00Z")),
            last_topic: "meters/pole-17/raw".into(),
        };
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(GW_GATEWAYS).unwrap();
                t.insert("pole-17", postcard::to_allocvec(&old).unwrap().as_slice())
                    .unwrap();
                txn.open_table(META).unwrap().insert(K_SCHEMA, 3).unwrap();
            }
            txn.commit().unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        let g = store.begin_read().unwrap().gateway("pole-17").unwrap().unwrap();
        assert_eq!((g.messages, g.undecodable, g.decoded), (120, 7, 113));
        assert_eq!(
            (g.status.as_deref(), g.last_topic.as_str()),
            (Some("online"), "meters/pole-17/raw")
        );
        assert_eq!(g.last_message_at, old.last_message_at);
        assert!(g.undecodable_by.is_empty() && g.previous_window.is_none());
    }
}
