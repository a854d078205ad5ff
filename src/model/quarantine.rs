//! The quarantine as stored: each entry with its payload's size and digest (a large payload is
//! kept by reference: its head only), what a retry made of it, and the summary of entries the
//! retention limit removed.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{QuarantineEntry, ReadId, time_serde};

/// Payloads up to this size are kept whole; of a larger one only this many first bytes, its
/// size and its SHA-256 digest (a 200 KB garbage message should not cost 200 KB of store).
pub const KEEP_WHOLE_BYTES: usize = 4096;
/// Longest source or reason kept in an entry or a summary row (characters).
pub const MAX_TEXT_CHARS: usize = 1024;
/// Longest source or reason class a summary row keys on (characters).
pub const MAX_CLASS_CHARS: usize = 80;

/// One stored quarantine entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredQuarantine {
    /// The entry; its payload is the head only when [`Self::head_only`].
    pub entry: QuarantineEntry,
    /// Size of the whole payload received.
    pub size: u64,
    /// SHA-256 of the whole payload.
    pub sha256: [u8; 32],
    /// Set once a retry turned the entry into reads (or found them stored already).
    pub resolution: Option<Resolution>,
}

/// What a retry made of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    #[serde(with = "time_serde")]
    pub at: Timestamp,
    /// Who ran the retry.
    pub by: String,
    /// Reads stored by the retry (empty when every frame was a copy of a stored one).
    pub reads: Vec<ReadId>,
    /// What the retry did, in words.
    pub outcome: String,
}

impl StoredQuarantine {
    /// The entry as it is kept: texts cut to [`MAX_TEXT_CHARS`], a payload above `keep_whole`
    /// bytes cut to its head.
    pub fn new(entry: &QuarantineEntry, keep_whole: usize) -> Self {
        let size = entry.payload.len() as u64;
        let sha256: [u8; 32] = Sha256::digest(&entry.payload).into();
        let payload = entry.payload[..entry.payload.len().min(keep_whole)].to_vec();
        StoredQuarantine {
            entry: QuarantineEntry {
                source: cut(&entry.source, MAX_TEXT_CHARS),
                reason: cut(&entry.reason, MAX_TEXT_CHARS),
                payload,
                received_at: entry.received_at,
            },
            size,
            sha256,
            resolution: None,
        }
    }

    /// Only the head of the payload is kept (it cannot be decoded again).
    pub fn head_only(&self) -> bool {
        (self.entry.payload.len() as u64) < self.size
    }

    /// The summary row this entry counts in when removed.
    pub fn summary_key(&self) -> (String, String) {
        (source_class(&self.entry.source), reason_class(&self.entry.reason))
    }
}

/// `source` without what tells one message from the next: its first two words (`mqtt
/// meters/gw1/raw`, `cradle /dev/ttyUSB0`, `M-Bus /dev/ttyS0`), so a flood of garbage on one
/// topic is one summary row.
pub fn source_class(source: &str) -> String {
    let words: Vec<&str> = source.split_whitespace().take(2).collect();
    cut(&words.join(" "), MAX_CLASS_CHARS)
}

/// `reason` up to its first colon (`BCH check failed`, `unrecognised frame`, `invalid C
/// field`): the failed check without the details that differ per message.
pub fn reason_class(reason: &str) -> String {
    cut(reason.split(':').next().unwrap_or("").trim(), MAX_CLASS_CHARS)
}

fn cut(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

/// Entries of one source and reason class that the retention limit (or a purge) removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineSummary {
    pub source: String,
    pub reason: String,
    /// Entries removed.
    pub count: u64,
    /// Their payloads' bytes (whole sizes, as received).
    pub bytes: u64,
    #[serde(with = "time_serde")]
    pub oldest: Timestamp,
    #[serde(with = "time_serde")]
    pub newest: Timestamp,
}

/// How much the quarantine holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineUsage {
    pub entries: u64,
    /// Stored bytes of the entries (what `[quarantine] max_mib` limits).
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_payloads_keep_their_head_size_and_digest() {
        let e = QuarantineEntry {
            source: "mqtt meters/gw1/raw line 7".into(),
            reason: "unrecognised frame: 5000 binary bytes".into(),
            payload: vec![7; 5000],
            received_at: Timestamp::UNIX_EPOCH,
        };
        let s = StoredQuarantine::new(&e, KEEP_WHOLE_BYTES);
        assert_eq!((s.entry.payload.len(), s.size), (KEEP_WHOLE_BYTES, 5000));
        assert!(s.head_only());
        assert_eq!(s.sha256, <[u8; 32]>::from(Sha256::digest(&e.payload)));
        assert_eq!(
            s.summary_key(),
            ("mqtt meters/gw1/raw".to_owned(), "unrecognised frame".to_owned())
        );
        let small = StoredQuarantine::new(
            &QuarantineEntry {
                payload: vec![1, 2],
                ..e
            },
            KEEP_WHOLE_BYTES,
        );
        assert!(!small.head_only());
        assert_eq!(small.entry.payload, [1, 2]);
    }
}
