//! Records of routes read with handheld recorders: when a route went into a recorder, and the
//! meters its reader skipped.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::time_serde;

/// One time a route went into a recorder. `cleared_at` is set when the recorder was cleared
/// (its reads committed and its routes unloaded); until then the route counts as loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteLoad {
    pub route: String,
    pub serial: String,
    #[serde(with = "time_serde")]
    pub loaded_at: Timestamp,
    /// Meters sent.
    pub meters: u32,
    #[serde(with = "time_serde::option")]
    pub cleared_at: Option<Timestamp>,
}

impl RouteLoad {
    pub fn is_loaded(&self) -> bool {
        self.cleared_at.is_none()
    }
}

/// A meter the reader did not read: a skip code, or left blank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSkip {
    pub route: String,
    pub meter_id: String,
    #[serde(with = "time_serde")]
    pub at: Timestamp,
    /// The skip code keyed (`None`: left blank, which does not excuse the meter).
    pub code: Option<String>,
    pub trouble_codes: Vec<String>,
    pub serial: String,
    pub seq: u32,
    /// When meterd stored it.
    #[serde(with = "time_serde")]
    pub received_at: Timestamp,
}
