//! MQTT gateway ingest: gateway health, interval reads from IDM/NetIDM, and the outbox of
//! messages published back to the broker.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::time_serde;

/// What meterd knows of one gateway (a fixed-network collector or drive-by receiver).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayState {
    /// The gateway id (envelope `gateway`, else the configured topic level).
    pub gateway: String,
    /// When meterd last received a meter message from it.
    #[serde(with = "time_serde::option")]
    pub last_message_at: Option<Timestamp>,
    /// Meter messages received (every copy, before de-duplication).
    pub messages: u64,
    /// Messages that did not decode (quarantined).
    pub undecodable: u64,
    /// Frames decoded (every copy, before de-duplication).
    pub decoded: u64,
    /// [`GatewayState::undecodable`] by reason.
    pub undecodable_by: BTreeMap<Undecodable, u64>,
    /// The health window now filling, and the one before it (a failing antenna or a wrong key
    /// roll-out shows as a rising undecodable share here long before the lifetime share moves).
    pub window: HealthWindow,
    pub previous_window: Option<HealthWindow>,
    /// Last status the gateway published on its status / LWT topic (`online`, `offline`, ...).
    pub status: Option<String>,
    #[serde(with = "time_serde::option")]
    pub status_at: Option<Timestamp>,
    /// Topic of the last message.
    pub last_topic: String,
}

impl GatewayState {
    pub fn new(gateway: &str) -> Self {
        GatewayState {
            gateway: gateway.to_owned(),
            last_message_at: None,
            messages: 0,
            undecodable: 0,
            decoded: 0,
            undecodable_by: BTreeMap::new(),
            window: HealthWindow::default(),
            previous_window: None,
            status: None,
            status_at: None,
            last_topic: String::new(),
        }
    }

    /// Counts one meter message unit heard at `at`: decoded, or undecodable for `reason`.
    /// Windows are `window_secs` long; one that has run its course becomes the previous one
    /// (dropped when it ended longer than a window ago: a quiet gateway starts afresh).
    pub fn count(&mut self, at: Timestamp, outcome: Option<Undecodable>, window_secs: u64) {
        self.count_held(at, window_secs);
        self.count_outcome(outcome);
    }

    /// Counts a message heard at `at` whose outcome comes later (a wM-Bus compact frame held
    /// until its layout is known): [`GatewayState::count_outcome`] completes it.
    pub fn count_held(&mut self, at: Timestamp, window_secs: u64) {
        let secs = |from: Timestamp| at.duration_since(from).as_secs();
        let window = i64::try_from(window_secs.max(1)).unwrap_or(i64::MAX);
        match self.window.started_at {
            Some(started) if secs(started) >= window => {
                let done = std::mem::take(&mut self.window);
                self.previous_window = (secs(started) < window.saturating_mul(2)).then_some(done);
                self.window.started_at = Some(at);
            }
            Some(_) => {}
            None => self.window.started_at = Some(at),
        }
        self.messages += 1;
        self.window.messages += 1;
        self.last_message_at = Some(self.last_message_at.map_or(at, |last| last.max(at)));
    }

    /// What became of a message already counted: decoded, or undecodable for `reason`.
    pub fn count_outcome(&mut self, outcome: Option<Undecodable>) {
        match outcome {
            None => self.decoded += 1,
            Some(reason) => {
                self.undecodable += 1;
                *self.undecodable_by.entry(reason).or_default() += 1;
                *self.window.undecodable.entry(reason).or_default() += 1;
            }
        }
    }

    /// The undecodable share of the current and the previous window together, with the
    /// messages it is over, and the undecodable counts by reason over the same span.
    pub fn recent(&self) -> RecentHealth {
        let mut out = RecentHealth::default();
        for w in std::iter::once(&self.window).chain(&self.previous_window) {
            out.messages += w.messages;
            for (reason, n) in &w.undecodable {
                out.undecodable += n;
                *out.by_reason.entry(*reason).or_default() += n;
            }
        }
        out
    }

    /// The latest sign of life: a meter message or a status message.
    pub fn last_seen(&self) -> Option<Timestamp> {
        match (self.last_message_at, self.status_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Why a gateway's message did not decode, as operators sort it: a transmission damaged on the
/// air (`crc`, `bch`, `reed_solomon`, `checksum`, `bcc`), a key problem (`key`: no key, wrong
/// key, a MAC that does not verify), a payload meterd does not understand (`format`), or a
/// text over its limit or with control characters (`limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Undecodable {
    Crc,
    Bch,
    ReedSolomon,
    Checksum,
    Bcc,
    Key,
    Format,
    Limit,
}

impl Undecodable {
    pub const ALL: [Undecodable; 8] = [
        Undecodable::Crc,
        Undecodable::Bch,
        Undecodable::ReedSolomon,
        Undecodable::Checksum,
        Undecodable::Bcc,
        Undecodable::Key,
        Undecodable::Format,
        Undecodable::Limit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Undecodable::Crc => "crc",
            Undecodable::Bch => "bch",
            Undecodable::ReedSolomon => "reed_solomon",
            Undecodable::Checksum => "checksum",
            Undecodable::Bcc => "bcc",
            Undecodable::Key => "key",
            Undecodable::Format => "format",
            Undecodable::Limit => "limit",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.name() == name)
    }
}

/// Counts of one health window of a gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthWindow {
    #[serde(with = "time_serde::option")]
    pub started_at: Option<Timestamp>,
    pub messages: u64,
    pub undecodable: BTreeMap<Undecodable, u64>,
}

/// [`GatewayState::recent`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentHealth {
    pub messages: u64,
    pub undecodable: u64,
    pub by_reason: BTreeMap<Undecodable, u64>,
}

impl RecentHealth {
    /// Undecodable share in 0..=1 (0 without messages).
    pub fn share(&self) -> f64 {
        if self.messages == 0 {
            0.0
        } else {
            self.undecodable as f64 / self.messages as f64
        }
    }
}

/// One interval of an IDM/NetIDM: usage in the 5 minutes ending at `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalRead {
    pub end: Timestamp,
    /// The meter's interval number (mod 256).
    pub number: u8,
    /// Usage in register units.
    pub consumption: u64,
}

/// A message waiting in the outbox until the broker acknowledged it (PUBACK).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub topic: String,
    pub payload: Vec<u8>,
}
