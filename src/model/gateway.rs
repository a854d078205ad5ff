//! MQTT gateway ingest: gateway health, interval reads from IDM/NetIDM, and the outbox of
//! messages published back to the broker.

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
            status: None,
            status_at: None,
            last_topic: String::new(),
        }
    }

    /// The latest sign of life: a meter message or a status message.
    pub fn last_seen(&self) -> Option<Timestamp> {
        match (self.last_message_at, self.status_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
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
