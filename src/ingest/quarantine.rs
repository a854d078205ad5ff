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

use super::mqtt::commit::{Job, Message, apply};
use super::mqtt::message::{Unit, decode_payload, gateway_of_topic, topic_of_source};
use super::mqtt::MqttConfig;
use crate::model::{Resolution, StoredQuarantine, to_store_precision};
use crate::store::{QuarantineLimits, Store, StoreError};
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
            max_age: (self.max_age_days > 0)
                .then(|| jiff::SignedDuration::from_hours(self.max_age_days as i64 * 24)),
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
    /// Who retries (recorded in the resolution).
    pub by: &'a str,
}

impl Retry<'_> {
    /// Retries entry `id` in one transaction of its own (committed only when it resolved).
    pub fn one(&self, store: &dyn Store, id: u64) -> crate::store::Result<RetryOutcome> {
        let mut txn = store.begin_write()?;
        let Some(entry) = txn.quarantine_entry(id)? else {
            return Err(StoreError::NotFound {
                what: "quarantine entry",
                id: id.to_string(),
            });
        };
        if entry.resolution.is_some() {
            return Ok(RetryOutcome::AlreadyResolved);
        }
        let units = match self.decode(&entry) {
            Ok(units) => units,
            Err(outcome) => return Ok(outcome),
        };
        if let Some(reason) = units.iter().find_map(|u| match u {
            Unit::Bad { reason, .. } => Some(reason.clone()),
            _ => None,
        }) {
            return Ok(RetryOutcome::StillBad { reason });
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
            ..Job::default()
        };
        // No outbox rows from a retry: the publisher is the daemon's MQTT session.
        let cfg = MqttConfig {
            publish_topic: None,
            ..self.mqtt.clone()
        };
        let done = apply(txn.as_mut(), &cfg, self.vee, job, now)?;
        if done.quarantined > 0 {
            // Decoded, but to nothing usable: dropping the transaction undoes it all.
            return Ok(RetryOutcome::StillBad {
                reason: "decodes now, but carries no usable read".into(),
            });
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
        txn.commit()?;
        Ok(RetryOutcome::Resolved {
            reads,
            duplicates: done.duplicates,
        })
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

    #[test]
    fn config_defaults_and_checks() {
        let d = QuarantineConfig::default();
        assert_eq!((d.max_mib, d.max_age_days), (64, 90));
        assert_eq!(d.limits(), QuarantineLimits::default());
        assert!(QuarantineConfig { max_mib: 0, ..d.clone() }.check().is_err());
        assert!(QuarantineConfig { max_age_days: 40_000, ..d.clone() }.check().is_err());
        assert_eq!(QuarantineConfig { max_age_days: 0, ..d }.limits().max_age, None);
    }
}
