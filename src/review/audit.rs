//! `audit verify`: walk the hash chain and say where it breaks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{AuditEntry, HASH_LEN, ReadId};
use crate::store::{Result, Store};

/// One thing wrong with the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyProblem {
    /// The entry number where it shows.
    pub entry: u64,
    pub what: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Entries the store says were appended.
    pub recorded: u64,
    /// Entries found.
    pub found: u64,
    pub problems: Vec<VerifyProblem>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn short(h: &[u8; HASH_LEN]) -> String {
    hex::encode(&h[..6])
}

/// Check every entry: numbers 1..=recorded without gaps, each entry's hash over its own
/// contents and the previous hash, the links between entries, each entry's old value and
/// status against the read saved before the change, each read's chain of values (an entry's
/// old value is the previous change's new value), and that every read's current value is
/// the one its last entry recorded.
pub fn verify(store: &dyn Store) -> Result<VerifyReport> {
    let txn = store.begin_read()?;
    let recorded = txn.audit_len()?;
    let scan = txn.audit_scan()?;
    let mut report = VerifyReport {
        recorded,
        found: scan.len() as u64,
        problems: Vec::new(),
    };
    let mut problem = |entry: u64, what: String| report.problems.push(VerifyProblem { entry, what });
    let by_key: BTreeMap<u64, &std::result::Result<AuditEntry, String>> = scan.iter().map(|(k, v)| (*k, v)).collect();

    let mut prev_hash: Option<[u8; HASH_LEN]> = Some([0; HASH_LEN]);
    let mut last_of_read: BTreeMap<ReadId, AuditEntry> = BTreeMap::new();
    for seq in 1..=recorded {
        let entry = match by_key.get(&seq) {
            None => {
                problem(seq, format!("entry {seq} is missing: it was removed from the trail"));
                prev_hash = None;
                continue;
            }
            Some(Err(e)) => {
                problem(seq, format!("entry {seq} does not decode ({e}): it was overwritten"));
                prev_hash = None;
                continue;
            }
            Some(Ok(e)) => e,
        };
        let what = match &entry.day {
            Some(d) => format!("day {} {} {}", entry.meter_id, d.channel, d.date),
            None => format!("read {}", entry.read_id),
        };
        let who = format!(
            "entry {seq} ({} of {what} by {} at {})",
            entry.action.as_str(),
            entry.clerk,
            entry.at
        );
        if entry.seq != seq {
            problem(
                seq,
                format!("{who} is stored under number {seq} but says it is number {}", entry.seq),
            );
        }
        let computed = entry.compute_hash();
        if computed != entry.hash {
            problem(
                seq,
                format!(
                    "{who}: its contents do not match its hash (stored {}…, computed {}…): it was changed after it was written",
                    short(&entry.hash),
                    short(&computed)
                ),
            );
        }
        if let Some(p) = prev_hash
            && entry.prev_hash != p
        {
            problem(
                seq,
                format!(
                    "{who}: previous-hash link {}… does not match entry {}'s hash {}…: entry {} was changed or replaced",
                    short(&entry.prev_hash),
                    seq - 1,
                    short(&p),
                    seq - 1
                ),
            );
        }
        // The read as it was before the change (kept for undo) pins the entry's old side.
        if let Some(before) = txn.undo_snapshot(seq)? {
            if before.read.value != entry.old_value {
                problem(
                    seq,
                    format!(
                        "{who} says old value {}, the read before that change had {}",
                        entry.old_value, before.read.value
                    ),
                );
            }
            if before.status != entry.old_status {
                problem(
                    seq,
                    format!(
                        "{who} says old status {}, the read before that change was {}",
                        entry.old_status, before.status
                    ),
                );
            }
        }
        // An interval day's entry links in the chain like any other; its day changes between
        // clerks' actions too (new data, VEE), so there is no value chain to follow.
        if entry.action.changes_read() && entry.day.is_none() {
            if let Some(before) = last_of_read.get(&entry.read_id)
                && before.new_value != entry.old_value
            {
                problem(
                    seq,
                    format!(
                        "{who} starts from value {}, but entry {} left read {} at {}",
                        entry.old_value, before.seq, entry.read_id, before.new_value
                    ),
                );
            }
            last_of_read.insert(entry.read_id, entry.clone());
        }
        prev_hash = Some(entry.hash);
    }
    for (&k, _) in by_key.range(recorded + 1..) {
        problem(
            k,
            format!("entry {k} is beyond the recorded length {recorded}: it was added behind meterd's back"),
        );
    }
    for (read_id, e) in &last_of_read {
        match txn.read(*read_id)? {
            None => problem(
                e.seq,
                format!("read {read_id} of entry {} is gone from the store", e.seq),
            ),
            Some(r) if r.read.value != e.new_value => problem(
                e.seq,
                format!(
                    "read {read_id} has value {} but its last audit entry {} set {}: it was changed without an audit entry",
                    r.read.value, e.seq, e.new_value
                ),
            ),
            Some(_) => {}
        }
    }
    Ok(report)
}
