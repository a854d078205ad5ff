//! One `[[cradle]]` entry of `meterd.toml`.

use std::path::PathBuf;
use std::time::Duration;

use meterd_protocols::cradle::LineTiming;
use serde::{Deserialize, Serialize};

/// A handheld cradle on a serial port; the daemon docks on it continuously.
///
/// ```toml
/// [[cradle]]
/// port = "/dev/meterd/cradle-1"   # stable udev name (systemd/99-meterd-cradle.rules)
/// baud = 115200
/// turnaround_ms = 10
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CradleConfig {
    /// Serial device of the cradle; prefer stable udev names over `/dev/ttyUSB0`.
    pub port: PathBuf,
    /// Line speed, 8N1.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// The recorder's turnaround (ms), a hint for the retransmission timer.
    #[serde(default = "default_turnaround_ms")]
    pub turnaround_ms: u64,
}

fn default_baud() -> u32 {
    115_200
}

fn default_turnaround_ms() -> u64 {
    10
}

impl CradleConfig {
    pub fn timing(&self) -> LineTiming {
        LineTiming::new(self.baud, Duration::from_millis(self.turnaround_ms))
    }
}
