//! The quarantine on PostgreSQL. Same behaviour as the embedded store: an entry's stored bytes
//! are the length of its postcard encoding (what redb stores), the running totals live in the
//! one-row `quarantine_usage`, and the oldest entries (by id) over the size or age limit are
//! removed as entries are added, each unresolved one counted in `quarantine_summary`.
//!
//! Every writer locks the `quarantine_usage` row first, so that instances adding, resolving and
//! trimming at once take their turns in one order (no deadlock) and keep the totals true.

use std::collections::BTreeMap;

use jiff::Timestamp;
use tokio_postgres::Row;

use super::rows::{big, column, from_json, id, json};
use super::{PgTxn, Sequence, params};
use crate::model::quarantine::{reason_class, source_class};
use crate::model::{QuarantineEntry, QuarantineSummary, QuarantineUsage, Resolution, StoredQuarantine};
use crate::store::{QuarantineQueries, QuarantineWrites, Result, StoreError};

/// Stored bytes of an entry: its postcard encoding's length, as the embedded store counts it,
/// so that one size limit means the same on both engines.
pub(super) fn stored_bytes(q: &StoredQuarantine) -> Result<u64> {
    postcard::to_allocvec(q)
        .map(|b| b.len() as u64)
        .map_err(|e| StoreError::Engine(format!("measuring a quarantine entry: {e}")))
}

fn count(what: &'static str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        what,
        detail: format!("negative value {v}"),
    })
}

fn stored_of(row: &Row) -> Result<(u64, StoredQuarantine)> {
    let digest: Vec<u8> = row.try_get(6).map_err(column)?;
    let sha256: [u8; 32] = digest.as_slice().try_into().map_err(|_| StoreError::Corrupt {
        what: "quarantine digest",
        detail: format!("{} bytes, not 32", digest.len()),
    })?;
    let resolved_at: Option<Timestamp> = row.try_get(7).map_err(column)?;
    let resolution = match resolved_at {
        Some(at) => {
            let by: Option<String> = row.try_get(8).map_err(column)?;
            let reads: Option<serde_json::Value> = row.try_get(9).map_err(column)?;
            let outcome: Option<String> = row.try_get(10).map_err(column)?;
            Some(Resolution {
                at,
                by: by.unwrap_or_default(),
                reads: match reads {
                    Some(v) => from_json("quarantine resolution reads", v)?,
                    None => Vec::new(),
                },
                outcome: outcome.unwrap_or_default(),
            })
        }
        None => None,
    };
    Ok((
        id(row.try_get(0).map_err(column)?)?,
        StoredQuarantine {
            entry: QuarantineEntry {
                source: row.try_get(1).map_err(column)?,
                reason: row.try_get(2).map_err(column)?,
                payload: row.try_get(3).map_err(column)?,
                received_at: row.try_get(4).map_err(column)?,
            },
            size: count("quarantine size", row.try_get(5).map_err(column)?)?,
            sha256,
            resolution,
        },
    ))
}

impl QuarantineQueries for PgTxn<'_> {
    fn quarantined(&self) -> Result<Vec<(u64, QuarantineEntry)>> {
        Ok(self
            .quarantine_entries()?
            .into_iter()
            .map(|(id, q)| (id, q.entry))
            .collect())
    }

    fn quarantine_entries(&self) -> Result<Vec<(u64, StoredQuarantine)>> {
        self.rows(
            "reading the quarantine",
            "SELECT id, source, reason, payload, received_at, size, sha256, \
               resolved_at, resolved_by, resolution_reads, resolution_outcome \
             FROM quarantine ORDER BY id",
            params![],
        )?
        .iter()
        .map(stored_of)
        .collect()
    }

    fn quarantine_entry(&self, id: u64) -> Result<Option<StoredQuarantine>> {
        let Ok(id) = big(id) else { return Ok(None) };
        self.row(
            "reading a quarantine entry",
            "SELECT id, source, reason, payload, received_at, size, sha256, \
               resolved_at, resolved_by, resolution_reads, resolution_outcome \
             FROM quarantine WHERE id = $1",
            params![id],
        )?
        .as_ref()
        .map(|r| stored_of(r).map(|(_, q)| q))
        .transpose()
    }

    fn quarantine_summary(&self) -> Result<Vec<QuarantineSummary>> {
        // Byte order of the classes, as the embedded store lists them.
        self.rows(
            "reading the quarantine summary",
            "SELECT source_class, reason_class, entries, bytes, oldest, newest FROM quarantine_summary \
             ORDER BY source_class COLLATE \"C\", reason_class COLLATE \"C\"",
            params![],
        )?
        .iter()
        .map(|r| {
            Ok(QuarantineSummary {
                source: r.try_get(0).map_err(column)?,
                reason: r.try_get(1).map_err(column)?,
                count: count("quarantine summary entries", r.try_get(2).map_err(column)?)?,
                bytes: count("quarantine summary bytes", r.try_get(3).map_err(column)?)?,
                oldest: r.try_get(4).map_err(column)?,
                newest: r.try_get(5).map_err(column)?,
            })
        })
        .collect()
    }

    fn quarantine_usage(&self) -> Result<QuarantineUsage> {
        let row = self
            .row(
                "reading the quarantine usage",
                "SELECT entries, bytes FROM quarantine_usage WHERE id = 1",
                params![],
            )?
            .ok_or_else(|| StoreError::Corrupt {
                what: "quarantine usage",
                detail: "the quarantine_usage row is missing".into(),
            })?;
        Ok(QuarantineUsage {
            entries: count("quarantine usage entries", row.try_get(0).map_err(column)?)?,
            bytes: count("quarantine usage bytes", row.try_get(1).map_err(column)?)?,
        })
    }
}

impl PgTxn<'_> {
    /// Locks the usage row (every quarantine writer takes it first) and answers the stored bytes.
    fn lock_quarantine_usage(&self) -> Result<i64> {
        let row = self
            .row(
                "locking the quarantine usage",
                "UPDATE quarantine_usage SET bytes = bytes WHERE id = 1 RETURNING bytes",
                params![],
            )?
            .ok_or_else(|| StoreError::Corrupt {
                what: "quarantine usage",
                detail: "the quarantine_usage row is missing".into(),
            })?;
        row.try_get(0).map_err(column)
    }

    /// Counts removed entries (rows of id, source, reason, size, received_at, stored_bytes,
    /// resolved) in the summary and takes them off the usage; answers what was removed.
    fn summarise_removed(&self, removed: &[Row]) -> Result<QuarantineUsage> {
        let mut classes: BTreeMap<(String, String), (i64, i64, Timestamp, Timestamp)> = BTreeMap::new();
        let mut bytes: i64 = 0;
        for r in removed {
            bytes = bytes.saturating_add(r.try_get::<_, i64>(5).map_err(column)?);
            let resolved: bool = r.try_get(6).map_err(column)?;
            // A resolved entry is not lost (a retry made reads of it): not counted.
            if resolved {
                continue;
            }
            let source: String = r.try_get(1).map_err(column)?;
            let reason: String = r.try_get(2).map_err(column)?;
            let size: i64 = r.try_get(3).map_err(column)?;
            let at: Timestamp = r.try_get(4).map_err(column)?;
            let e = classes
                .entry((source_class(&source), reason_class(&reason)))
                .or_insert((0, 0, at, at));
            e.0 += 1;
            e.1 = e.1.saturating_add(size);
            e.2 = e.2.min(at);
            e.3 = e.3.max(at);
        }
        if !classes.is_empty() {
            let n = classes.len();
            let (mut sources, mut reasons) = (Vec::with_capacity(n), Vec::with_capacity(n));
            let (mut entries, mut sizes) = (Vec::with_capacity(n), Vec::with_capacity(n));
            let (mut oldest, mut newest) = (Vec::with_capacity(n), Vec::with_capacity(n));
            for ((s, r), (c, b, o, w)) in classes {
                sources.push(s);
                reasons.push(r);
                entries.push(c);
                sizes.push(b);
                oldest.push(o);
                newest.push(w);
            }
            self.exec(
                "summarising removed quarantine entries",
                "INSERT INTO quarantine_summary AS s (source_class, reason_class, entries, bytes, oldest, newest) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], \
                                      $5::timestamptz[], $6::timestamptz[]) \
                 ON CONFLICT (source_class, reason_class) DO UPDATE SET \
                   entries = s.entries + EXCLUDED.entries, bytes = s.bytes + EXCLUDED.bytes, \
                   oldest = LEAST(s.oldest, EXCLUDED.oldest), newest = GREATEST(s.newest, EXCLUDED.newest)",
                params![sources, reasons, entries, sizes, oldest, newest],
            )?;
        }
        let gone = QuarantineUsage {
            entries: removed.len() as u64,
            bytes: count("quarantine stored bytes", bytes)?,
        };
        if gone.entries > 0 {
            self.exec(
                "taking removed entries off the quarantine usage",
                "UPDATE quarantine_usage SET entries = GREATEST(entries - $1, 0), bytes = GREATEST(bytes - $2, 0) \
                 WHERE id = 1",
                params![big(gone.entries)?, bytes],
            )?;
        }
        Ok(gone)
    }

    /// Removes the oldest entries (by id) while the quarantine is over its size or the oldest
    /// is over its age, as the embedded store does; a look at the front first, so that the
    /// usual add (under both limits) costs no scan.
    fn trim_quarantine(&self, now: Timestamp) -> Result<u64> {
        let limits = self.limits;
        let cutoff = limits.max_age.and_then(|a| now.checked_sub(a).ok());
        let total = self.lock_quarantine_usage()?;
        let max_bytes = big(limits.max_bytes.min(i64::MAX as u64))?;
        if total <= max_bytes {
            let Some(cutoff) = cutoff else { return Ok(0) };
            let front = self.row(
                "reading the oldest quarantine entry",
                "SELECT received_at FROM quarantine ORDER BY id LIMIT 1",
                params![],
            )?;
            let young = match front {
                Some(r) => r.try_get::<_, Timestamp>(0).map_err(column)? >= cutoff,
                None => true,
            };
            if young {
                return Ok(0);
            }
        }
        // The first entry (by id) that may stay: the bytes left before it are within the limit
        // and it is young enough; every entry before it goes.
        let removed = self.rows(
            "trimming the quarantine",
            "WITH stop AS ( \
               SELECT id FROM ( \
                 SELECT id, received_at, $1::bigint - COALESCE(SUM(stored_bytes) OVER \
                   (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::bigint AS left_before \
                 FROM quarantine) q \
               WHERE left_before <= $2::bigint AND NOT COALESCE(received_at < $3::timestamptz, false) \
               ORDER BY id LIMIT 1) \
             DELETE FROM quarantine \
             WHERE NOT EXISTS (SELECT 1 FROM stop) OR id < (SELECT id FROM stop) \
             RETURNING id, source, reason, size, received_at, stored_bytes, resolved_at IS NOT NULL",
            params![total, max_bytes, cutoff],
        )?;
        Ok(self.summarise_removed(&removed)?.entries)
    }
}

impl QuarantineWrites for PgTxn<'_> {
    fn quarantine(&mut self, entry: &QuarantineEntry) -> Result<u64> {
        let stored = StoredQuarantine::new(entry, self.limits.keep_whole_bytes);
        let len = big(stored_bytes(&stored)?)?;
        self.lock_quarantine_usage()?;
        let id = self
            .next_ids(Sequence::Quarantine, 1)?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Engine("quarantine_ids gave no id".into()))?;
        self.exec(
            "quarantining an entry",
            "INSERT INTO quarantine (id, source, reason, payload, received_at, size, sha256, stored_bytes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            params![
                big(id)?,
                stored.entry.source.clone(),
                stored.entry.reason.clone(),
                stored.entry.payload.clone(),
                stored.entry.received_at,
                big(stored.size)?,
                stored.sha256.to_vec(),
                len
            ],
        )?;
        self.exec(
            "counting a quarantined entry",
            "UPDATE quarantine_usage SET entries = entries + 1, bytes = bytes + $1 WHERE id = 1",
            params![len],
        )?;
        self.trim_quarantine(entry.received_at)?;
        Ok(id)
    }

    fn resolve_quarantine(&mut self, id: u64, resolution: &Resolution) -> Result<()> {
        let not_found = || StoreError::NotFound {
            what: "quarantine entry",
            id: id.to_string(),
        };
        let key = big(id).map_err(|_| not_found())?;
        self.lock_quarantine_usage()?;
        let row = self
            .row(
                "reading a quarantine entry to resolve",
                "SELECT id, source, reason, payload, received_at, size, sha256, \
                   resolved_at, resolved_by, resolution_reads, resolution_outcome, stored_bytes \
                 FROM quarantine WHERE id = $1 FOR UPDATE",
                params![key],
            )?
            .ok_or_else(not_found)?;
        let (_, mut stored) = stored_of(&row)?;
        let old_len: i64 = row.try_get(11).map_err(column)?;
        if let Some(r) = &stored.resolution {
            return Err(StoreError::Conflict(format!(
                "quarantine entry {id} was retried already ({} by {})",
                r.at, r.by
            )));
        }
        stored.resolution = Some(resolution.clone());
        let new_len = big(stored_bytes(&stored)?)?;
        self.exec(
            "resolving a quarantine entry",
            "UPDATE quarantine SET resolved_at = $2, resolved_by = $3, resolution_reads = $4, \
               resolution_outcome = $5, stored_bytes = $6 WHERE id = $1",
            params![
                key,
                resolution.at,
                resolution.by.clone(),
                json(&resolution.reads)?,
                resolution.outcome.clone(),
                new_len
            ],
        )?;
        self.exec(
            "recounting a resolved quarantine entry",
            "UPDATE quarantine_usage SET bytes = GREATEST(bytes + $1 - $2, 0) WHERE id = 1",
            params![new_len, old_len],
        )?;
        Ok(())
    }

    fn purge_quarantine_before(&mut self, before: Timestamp) -> Result<QuarantineUsage> {
        self.lock_quarantine_usage()?;
        let removed = self.rows(
            "purging the quarantine",
            "DELETE FROM quarantine WHERE received_at < $1 \
             RETURNING id, source, reason, size, received_at, stored_bytes, resolved_at IS NOT NULL",
            params![before],
        )?;
        self.summarise_removed(&removed)
    }

    fn enforce_quarantine_retention(&mut self, now: Timestamp) -> Result<u64> {
        self.trim_quarantine(now)
    }
}
