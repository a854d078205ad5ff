//! Wireless M-Bus state that must survive a restart: the compact-frame layouts learned from
//! full frames (per meter type and format signature), and the compact frames held until their
//! layout is known (bounded: [`MAX_HELD`]).

use jiff::Timestamp;
use meterd_protocols::wmbus::compact::FormatKey;
use serde::{Deserialize, Serialize};

use crate::store::Result;

/// Most compact frames held at once; past it a compact frame goes to the quarantine with the
/// reason (nothing is dropped). At one telegram per meter every 16 s (mbus.md §2.10) this is
/// an hour of 2,000 meters whose full frame has not come yet.
pub const MAX_HELD: u64 = 10_000;

/// A compact frame waiting for its layout: the message unit as received, and what it waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldTelegram {
    /// The MQTT topic and the unit's locator (`topic` or `topic line N`).
    pub topic: String,
    pub locator: String,
    pub gateway: String,
    /// The frame's bytes: a binary payload as received, a hex line decoded.
    pub payload: Vec<u8>,
    pub received_at: Timestamp,
    /// The meter (8 digits) and the layout it waits for.
    pub meter: String,
    pub manufacturer: u16,
    pub version: u8,
    pub device_type: u8,
    pub signature: u16,
}

impl HeldTelegram {
    /// The layout it waits for.
    pub fn format_key(&self) -> FormatKey {
        FormatKey {
            manufacturer: self.manufacturer,
            version: self.version,
            device_type: self.device_type,
            signature: self.signature,
        }
    }
}

pub trait WmbusQueries {
    /// The layout learned for a meter type and format signature.
    fn wmbus_layout(&self, key: &FormatKey) -> Result<Option<Vec<u8>>>;
    /// Every layout learned, by key.
    fn wmbus_layouts(&self) -> Result<Vec<(FormatKey, Vec<u8>)>>;
    /// The compact frames held, oldest first.
    fn held_telegrams(&self) -> Result<Vec<(u64, HeldTelegram)>>;
    fn count_held_telegrams(&self) -> Result<u64>;
}

pub trait WmbusWrites: WmbusQueries {
    /// Keep a layout (replacing the one of the same key: the same signature is the same layout).
    fn put_wmbus_layout(&mut self, key: &FormatKey, layout: &[u8]) -> Result<()>;
    /// Hold a compact frame; returns its id (increasing).
    fn hold_telegram(&mut self, held: &HeldTelegram) -> Result<u64>;
    /// Remove a held frame (decoded now); `true` when it was there.
    fn release_held_telegram(&mut self, id: u64) -> Result<bool>;
}
