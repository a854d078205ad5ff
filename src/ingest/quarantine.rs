//! Working the quarantine: its retention (`[quarantine]`) and the retry of entries with
//! today's configuration and keys.
//!
//! A retry decodes an entry's kept bytes again as its source would now. What decodes enters
//! the normal ingest path (de-duplication, VEE through `accept_in`) in ONE transaction with
//! the entry's resolution, so a retried entry becomes its reads exactly once: a second retry
//! finds it resolved, and even a copy of the entry finds its frames seen.

use jiff::Timestamp;
use meterd_protocols::decode::Keys;
use serde::{Deserialize, Serialize};

use super::mqtt::MqttConfig;
use super::mqtt::commit::{Job, Message, apply};
use super::mqtt::message::{Unit, decode_payload, gateway_of_topic, topic_of_source};
use crate::model::{Resolution, StoredQuarantine, to_store_precision};
use crate::store::{Finish, QuarantineLimits, Store, StoreError, WriteTxn};
use crate::vee::VeeConfig;

/// Largest `max_mib` accepted (1 TiB would be a mistake, not a limit).
const MAX_MIB: u64 = 64 * 1024;

/// `[quarantine]`: how much undecodable input is kept.
///
/// ```toml
/// [quarantine]
/// max_mib = 64        # stored bytes of all entries together
/// max_age_days = 90   # 0: no age limit
/// ```
/// Over a limit the oldest entries are removed, counted per source and reason in the
/// summary (`meterd quarantine list`, `/metrics`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuarantineConfig {
    pub max_mib: u64,
    pub max_age_days: u64,
}

impl Default for QuarantineConfig {
    fn default() -> Self {
        let d = QuarantineLimits::default();
        QuarantineConfig {
            max_mib: d.max_bytes >> 20,
            max_age_days: d.max_age.map_or(0, |a| (a.as_secs() / 86_400) as u64),
        }
    }
}

impl QuarantineConfig {
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_MIB).contains(&self.max_mib) {
            return Err(format!(
                "quarantine.max_mib = {} is outside 1..={MAX_MIB}",
                self.max_mib
            ));
        }
        if self.max_age_days > 36_500 {
            return Err(format!(
                "quarantine.max_age_days = {} is more than 100 years (0 means no age limit)",
                self.max_age_days
            ));
        }
        Ok(())
    }

    /// The limits the store applies.
    pub fn limits(&self) -> QuarantineLimits {
        QuarantineLimits {
            max_bytes: self.max_mib << 20,
            max_age: (self.max_age_days > 0).then(|| jiff::SignedDuration::from_hours(self.max_age_days as i64 * 24)),
            ..QuarantineLimits::default()
        }
    }
}

/// What a retry of one entry did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RetryOutcome {
    /// It decoded: reads stored (none when every frame was stored before), entry resolved.
    Resolved { reads: Vec<u64>, duplicates: u64 },
    /// It still does not decode (or decodes to nothing usable); the entry stays.
    StillBad { reason: String },
    /// It cannot be decoded again (head only kept, a source retry does not know).
    CannotRetry { reason: String },
    /// A retry resolved it before.
    AlreadyResolved,
}

/// What a retry needs of today's configuration.
pub struct Retry<'a> {
    pub mqtt: &'a MqttConfig,
    pub keys: &'a Keys,
    pub vee: &'a VeeConfig,
    pub intervals: &'a crate::vee::interval::IntervalConfig,
    /// Who retries (recorded in the resolution).
    pub by: &'a str,
}

impl Retry<'_> {
    /// Retries entry `id` in one transaction of its own (committed only when it resolved).
    pub fn one(&self, store: &dyn Store, id: u64) -> crate::store::Result<RetryOutcome> {
        // The whole retry runs again from the stored entry when the engine aborts it; nothing
        // is kept when it does not resolve the entry.
        crate::store::write_or_undo(store, crate::store::INTERACTIVE_DEADLINE, |txn| self.attempt(txn, id))
    }

    fn attempt(&self, txn: &mut dyn WriteTxn, id: u64) -> crate::store::Result<Finish<RetryOutcome>> {
        let Some(entry) = txn.quarantine_entry(id)? else {
            return Err(StoreError::NotFound {
                what: "quarantine entry",
                id: id.to_string(),
            });
        };
        if entry.resolution.is_some() {
            return Ok(Finish::Undo(RetryOutcome::AlreadyResolved));
        }
        let units = match self.decode(&entry) {
            Ok(units) => units,
            Err(outcome) => return Ok(Finish::Undo(outcome)),
        };
        if let Some(reason) = units.iter().find_map(|u| match u {
            Unit::Bad { reason, .. } => Some(reason.clone()),
            _ => None,
        }) {
            return Ok(Finish::Undo(RetryOutcome::StillBad { reason }));
        }
        let now = to_store_precision(Timestamp::now());
        let topic = topic_of_source(&entry.entry.source).unwrap_or_default().to_owned();
        let job = Job {
            messages: vec![Message {
                topic,
                units,
                received: entry.entry.received_at,
            }],
            replay: true,
            keys: std::sync::Arc::new(self.keys.clone()),
            ..Job::default()
        };
        // No outbox rows from a retry: the publisher is the daemon's MQTT session.
        let cfg = MqttConfig {
            publish_topic: None,
            ..self.mqtt.clone()
        };
        let done = apply(txn, &cfg, self.vee, self.intervals, job, now)?;
        if done.quarantined > 0 {
            // Decoded, but to nothing usable: dropping the transaction undoes it all.
            return Ok(Finish::Undo(RetryOutcome::StillBad {
                reason: "decodes now, but carries no usable read".into(),
            }));
        }
        let reads = done.reads.read_ids.clone();
        let outcome = if reads.is_empty() {
            format!("decoded; all {} frame(s) were stored before", done.frames)
        } else {
            format!("decoded; {} read(s) stored", reads.len())
        };
        txn.resolve_quarantine(
            id,
            &Resolution {
                at: now,
                by: self.by.to_owned(),
                reads: reads.clone(),
                outcome,
            },
        )?;
        Ok(Finish::Commit(RetryOutcome::Resolved {
            reads,
            duplicates: done.duplicates,
        }))
    }

    /// Retries the open entries quarantined for a key reason (`no key for meter …`,
    /// `key for meter … refused: …`) of meters that have a key now and whose kept bytes decode
    /// with today's keys: run when the keys are (re)loaded, so a telegram refused for a
    /// missing or wrong key is never ignored for good (wmbusmeters #2062). Entries that still
    /// do not decode are left as they are without a write. Returns (resolved, still open).
    pub fn key_reasons(&self, store: &dyn Store) -> crate::store::Result<(u64, u64)> {
        let candidates: Vec<u64> = store
            .begin_read()?
            .quarantine_entries()?
            .into_iter()
            .filter(|(_, q)| q.resolution.is_none())
            .filter(|(_, q)| {
                meterd_protocols::error::key_reason_meter(&q.entry.reason).is_some_and(|m| self.keys.get(m).is_some())
            })
            .filter(|(_, q)| {
                self.decode(q)
                    .is_ok_and(|units| !units.iter().any(|u| matches!(u, Unit::Bad { .. })))
            })
            .map(|(id, _)| id)
            .collect();
        let (mut resolved, mut open) = (0, 0);
        for id in candidates {
            match self.one(store, id)? {
                RetryOutcome::Resolved { .. } => resolved += 1,
                RetryOutcome::AlreadyResolved => {}
                _ => open += 1,
            }
        }
        Ok((resolved, open))
    }

    /// The entry's units as its source decodes them today, or why it cannot be retried.
    fn decode(&self, entry: &StoredQuarantine) -> Result<Vec<Unit>, RetryOutcome> {
        if entry.head_only() {
            return Err(RetryOutcome::CannotRetry {
                reason: format!(
                    "only the first {} of {} bytes were kept (large payloads are kept by reference)",
                    entry.entry.payload.len(),
                    entry.size
                ),
            });
        }
        // A serial receiver's telegram (`receiver PORT`): its bytes, decoded as the receiver
        // does, under the port's name (a receiver's own `name` is not known here).
        if let Some(port) = entry.entry.source.strip_prefix(crate::ingest::receiver::SOURCE_PREFIX) {
            return Ok(vec![crate::ingest::mqtt::message::binary(
                &entry.entry.source,
                &entry.entry.payload,
                port,
                entry.entry.received_at,
                self.keys,
                &meterd_protocols::wmbus::compact::NoFormats,
            )]);
        }
        let Some(topic) = topic_of_source(&entry.entry.source) else {
            return Err(RetryOutcome::CannotRetry {
                reason: format!(
                    "retry decodes MQTT gateway input only; `{}` is another source (send it again from there)",
                    entry.entry.source
                ),
            });
        };
        let gateway = gateway_of_topic(topic, self.mqtt.gateway_topic_level);
        Ok(decode_payload(
            topic,
            &entry.entry.payload,
            &gateway,
            entry.entry.received_at,
            self.keys,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::QuarantineUsage;

    #[test]
    fn config_defaults_and_checks() {
        let d = QuarantineConfig::default();
        assert_eq!((d.max_mib, d.max_age_days), (64, 90));
        assert_eq!(d.limits(), QuarantineLimits::default());
        assert!(
            QuarantineConfig {
                max_mib: 0,
                ..d.clone()
            }
            .check()
            .is_err()
        );
        assert!(
            QuarantineConfig {
                max_age_days: 40_000,
                ..d.clone()
            }
            .check()
            .is_err()
        );
        assert_eq!(QuarantineConfig { max_age_days: 0, ..d }.limits().max_age, None);
    }

    use crate::ingest::mqtt::commit::commit_group;
    use crate::model::QuarantineEntry;
    use crate::store::RedbStore;

    fn entry(source: &str, reason: &str, len: usize, at: Timestamp) -> QuarantineEntry {
        QuarantineEntry {
            source: source.into(),
            reason: reason.into(),
            payload: vec![0xAB; len],
            received_at: at,
        }
    }

    #[test]
    fn retention_keeps_the_store_bounded_and_the_summary_adds_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open_dir(dir.path()).unwrap();
        let limits = QuarantineLimits {
            max_bytes: 20_000,
            ..QuarantineLimits::default()
        };
        store.set_quarantine_limits(limits);
        let now = Timestamp::now();
        let (mut sent, mut sent_bytes) = (0u64, 0u64);
        for i in 0..1000u64 {
            let mut txn = store.begin_write().unwrap();
            for j in 0..3u64 {
                let source = format!("mqtt meters/gw{}/raw line {j}", i % 2);
                let reason = if j == 0 {
                    "BCH check failed: syndrome 5"
                } else {
                    "unrecognised frame: 9 bytes"
                };
                let len = 50 + (i as usize % 7) * 10;
                txn.quarantine(&entry(&source, reason, len, now)).unwrap();
                sent += 1;
                sent_bytes += len as u64;
            }
            txn.commit().unwrap();
            let usage = store.begin_read().unwrap().quarantine_usage().unwrap();
            assert!(usage.bytes <= limits.max_bytes, "{usage:?} after {sent}");
        }
        let txn = store.begin_read().unwrap();
        let kept = txn.quarantine_entries().unwrap();
        let summary = txn.quarantine_summary().unwrap();
        assert!(!kept.is_empty() && kept.len() < 1000, "{}", kept.len());
        let summarised: u64 = summary.iter().map(|s| s.count).sum();
        assert_eq!(summarised + kept.len() as u64, sent);
        let kept_bytes: u64 = kept.iter().map(|(_, q)| q.size).sum();
        assert_eq!(summary.iter().map(|s| s.bytes).sum::<u64>() + kept_bytes, sent_bytes);
        // The oldest went: what is kept is the newest, in order.
        assert_eq!(kept.last().unwrap().0, sent);
        let mut keys: Vec<(String, String)> = summary.iter().map(|s| (s.source.clone(), s.reason.clone())).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                ("mqtt meters/gw0/raw".to_owned(), "BCH check failed".to_owned()),
                ("mqtt meters/gw0/raw".to_owned(), "unrecognised frame".to_owned()),
                ("mqtt meters/gw1/raw".to_owned(), "BCH check failed".to_owned()),
                ("mqtt meters/gw1/raw".to_owned(), "unrecognised frame".to_owned()),
            ]
        );
        // The running total is what is stored: reopening (which recounts nothing) agrees
        // with a purge of everything.
        drop(txn);
        let usage = store.begin_read().unwrap().quarantine_usage().unwrap();
        let mut txn = store.begin_write().unwrap();
        let removed = txn.purge_quarantine_before(Timestamp::MAX).unwrap();
        txn.commit().unwrap();
        assert_eq!(removed, usage);
        let after = store.begin_read().unwrap().quarantine_usage().unwrap();
        assert_eq!(after, QuarantineUsage::default());
        let summary = store.begin_read().unwrap().quarantine_summary().unwrap();
        assert_eq!(summary.iter().map(|s| s.count).sum::<u64>(), sent);
    }

    #[test]
    fn old_entries_age_out_and_large_payloads_are_kept_by_reference() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open_dir(dir.path()).unwrap();
        store.set_quarantine_limits(
            QuarantineConfig {
                max_mib: 1,
                max_age_days: 1,
            }
            .limits(),
        );
        let now = Timestamp::now();
        let old = now - jiff::SignedDuration::from_hours(49);
        let mut txn = store.begin_write().unwrap();
        txn.quarantine(&entry("cradle /dev/ttyS0 recorder 7", "no meter", 10, old))
            .unwrap();
        txn.quarantine(&entry("cradle /dev/ttyS0 recorder 7", "no meter", 10, old))
            .unwrap();
        txn.commit().unwrap();
        // Age counts from the entry being added (or the daemon's start): these two stay
        // until something newer comes.
        assert_eq!(store.begin_read().unwrap().quarantine_usage().unwrap().entries, 2);
        let mut txn = store.begin_write().unwrap();
        let id = txn
            .quarantine(&entry(
                "mqtt t/gw/raw",
                "unrecognised frame: 200000 binary bytes",
                200_000,
                now,
            ))
            .unwrap();
        txn.commit().unwrap();
        let txn = store.begin_read().unwrap();
        let kept = txn.quarantine_entries().unwrap();
        assert_eq!(kept.len(), 1);
        let (kid, q) = &kept[0];
        assert_eq!(*kid, id);
        assert!(q.head_only());
        assert_eq!((q.entry.payload.len(), q.size), (4096, 200_000));
        let usage = txn.quarantine_usage().unwrap();
        assert!(usage.bytes < 5000, "{usage:?}");
        let summary = txn.quarantine_summary().unwrap();
        assert_eq!(summary.len(), 1);
        assert_eq!((summary[0].count, summary[0].bytes), (2, 20));
        assert_eq!(summary[0].source, "cradle /dev/ttyS0");
        // A retry of the head says why it cannot be decoded again.
        let (cfg, keys, vee) = (MqttConfig::default(), Keys::new(), VeeConfig::default());
        let retry = Retry {
            mqtt: &cfg,
            keys: &keys,
            vee: &vee,
            intervals: &Default::default(),
            by: "test",
        };
        drop(txn);
        let o = retry.one(&store, id).unwrap();
        assert!(
            matches!(&o, RetryOutcome::CannotRetry { reason } if reason.contains("first 4096 of 200000 bytes")),
            "{o:?}"
        );
    }

    /// A mode 5 wM-Bus telegram (AES-128-CBC, EN 13757-7) published with test key
    /// 000102…0f (the wmbusmeters test vector the protocol crate's tests use).
    const TELEGRAM: &str = "1e440c2e7856341201027a2a0010055e25183a152aa01322a8b355e717a5a8";

    fn keys(hex_key: &str) -> Keys {
        let mut k = Keys::new();
        k.insert("12345678", hex::decode(hex_key).unwrap().try_into().unwrap());
        k
    }

    #[test]
    fn a_wrong_key_quarantines_and_the_retry_with_the_right_one_reads_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open_dir(dir.path()).unwrap();
        let (cfg, vee) = (MqttConfig::default(), VeeConfig::default());
        let wrong = keys("ffffffffffffffffffffffffffffffff");
        let bytes = hex::decode(TELEGRAM).unwrap();
        let received = Timestamp::now();
        let units = decode_payload("meters/gw7/raw", &bytes, "gw7", received, &wrong);
        let job = Job {
            messages: vec![Message {
                topic: "meters/gw7/raw".into(),
                units,
                received,
            }],
            ..Job::default()
        };
        let c = commit_group(&store, &cfg, &vee, &Default::default(), job).unwrap();
        assert_eq!((c.quarantined, c.reads.imported), (1, 0));
        let (id, q) = store.begin_read().unwrap().quarantine_entries().unwrap().remove(0);
        assert!(
            q.entry
                .reason
                .contains("refused: decrypted data does not start with 2F 2F"),
            "{}",
            q.entry.reason
        );

        // Still the wrong key: still bad, nothing changes.
        let retry = |k: &Keys| {
            Retry {
                mqtt: &cfg,
                keys: k,
                vee: &vee,
                intervals: &Default::default(),
                by: "sue",
            }
            .one(&store, id)
            .unwrap()
        };
        assert!(matches!(retry(&wrong), RetryOutcome::StillBad { .. }));
        assert_eq!(store.begin_read().unwrap().count_reads().unwrap(), 0);

        let right = keys("000102030405060708090a0b0c0d0e0f");
        let RetryOutcome::Resolved { reads, .. } = retry(&right) else {
            panic!("not resolved")
        };
        assert_eq!(reads.len(), 1);
        let txn = store.begin_read().unwrap();
        let read = txn.read(reads[0]).unwrap().unwrap();
        assert_eq!(read.read.meter_id, "wmbus:12345678");
        assert_eq!(read.read.value.to_string(), "12345.678");
        let r = txn.quarantine_entry(id).unwrap().unwrap().resolution.unwrap();
        assert_eq!((r.by.as_str(), r.reads.as_slice()), ("sue", reads.as_slice()));
        drop(txn);
        // Again: nothing new.
        assert_eq!(retry(&right), RetryOutcome::AlreadyResolved);
        assert_eq!(store.begin_read().unwrap().count_reads().unwrap(), 1);
        // The gateway's health is not touched by a retry (it counted the message once).
        let g = store.begin_read().unwrap().gateway("gw7").unwrap().unwrap();
        assert_eq!((g.messages, g.undecodable), (1, 1));
    }

    /// A serial receiver's telegram refused for want of a key is retried from its bytes once
    /// the key is known (the receiver puts its layer in front of the reason).
    #[test]
    fn a_receiver_telegram_without_its_key_reads_on_retry() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open_dir(dir.path()).unwrap();
        let (cfg, vee) = (MqttConfig::default(), VeeConfig::default());
        let source = format!("{}/dev/meterd/stick-1", crate::ingest::receiver::SOURCE_PREFIX);
        let received = Timestamp::now();
        let units = crate::ingest::receiver::units::units_of(
            meterd_protocols::receiver::Kind::Im871a,
            &source,
            "stick-1",
            vec![meterd_protocols::receiver::Event::Telegram(
                meterd_protocols::receiver::Telegram {
                    frame: hex::decode(TELEGRAM).unwrap(),
                    rssi_dbm: None,
                },
            )],
            received,
            &Keys::new(),
        );
        let job = Job {
            messages: vec![Message {
                topic: source.clone(),
                units,
                received,
            }],
            ..Job::default()
        };
        let c = commit_group(&store, &cfg, &vee, &Default::default(), job).unwrap();
        assert_eq!(c.quarantined, 1);
        let (id, q) = store.begin_read().unwrap().quarantine_entries().unwrap().remove(0);
        assert_eq!(q.entry.source, source);
        assert_eq!(
            meterd_protocols::error::key_reason_meter(&q.entry.reason),
            Some("12345678")
        );
        let right = keys("000102030405060708090a0b0c0d0e0f");
        let outcome = Retry {
            mqtt: &cfg,
            keys: &right,
            vee: &vee,
            intervals: &Default::default(),
            by: "sue",
        }
        .one(&store, id)
        .unwrap();
        let RetryOutcome::Resolved { reads, .. } = outcome else {
            panic!("{outcome:?}")
        };
        let read = store.begin_read().unwrap().read(reads[0]).unwrap().unwrap();
        assert_eq!(read.read.meter_id, "wmbus:12345678");
        assert_eq!(read.read.value.to_string(), "12345.678");
    }

    #[test]
    fn other_sources_say_they_cannot_be_retried_here() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open_dir(dir.path()).unwrap();
        let mut txn = store.begin_write().unwrap();
        let id = txn
            .quarantine(&entry(
                "cradle /dev/ttyS0 recorder 7 seq 3",
                "no meter",
                10,
                Timestamp::now(),
            ))
            .unwrap();
        txn.commit().unwrap();
        let (cfg, keys, vee) = (MqttConfig::default(), Keys::new(), VeeConfig::default());
        let o = Retry {
            mqtt: &cfg,
            keys: &keys,
            vee: &vee,
            intervals: &Default::default(),
            by: "test",
        }
        .one(&store, id)
        .unwrap();
        assert!(
            matches!(&o, RetryOutcome::CannotRetry { reason } if reason.contains("MQTT")),
            "{o:?}"
        );
    }
}
