//! The daemon's own configuration sections: `[log]` and `[daemon]`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `journald` under systemd (`$JOURNAL_STREAM` or `$INVOCATION_ID` set), else `text`.
    #[default]
    Auto,
    /// Human-readable lines with timestamps and, on a terminal, colours.
    Text,
    /// No timestamps (the journal adds them), no colours, a `<N>` syslog priority prefix the
    /// journal turns into the entry's priority.
    Journald,
    /// One JSON object per line (for log shippers).
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter: `info`, `debug`, or per module, `info,meterd::ingest=debug`.
    /// `RUST_LOG`, when set, wins (for a one-off debugging session).
    pub level: String,
    /// `auto`, `text`, `journald` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Auto,
        }
    }
}

impl LogConfig {
    pub fn check(&self) -> Result<(), String> {
        tracing_subscriber::EnvFilter::builder()
            .parse(&self.level)
            .map(|_| ())
            .map_err(|e| format!("log.level {:?} is not a valid filter: {e}", self.level))
    }
}

/// `[daemon]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Unix socket where the daemon answers CLI commands forwarded to it (default:
    /// `<data_dir>/control.sock`; the packaged configuration uses `/run/meterd/control.sock`).
    /// Created with mode 0660: members of the daemon's group may use it.
    pub control_socket: Option<PathBuf>,
    /// After SIGTERM, components get this long to finish or abort their sessions before the
    /// daemon gives up, names the ones that did not stop and exits. Keep it below the unit's
    /// `TimeoutStopSec` (30 s) so meterd, not systemd's SIGKILL, decides.
    pub stop_deadline_secs: u64,
    /// Most memory the store's page cache may use, in MiB. The daemon runs for months while the
    /// store grows: this keeps its memory flat. More cache serves VEE history from memory.
    pub store_cache_mib: u64,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            control_socket: None,
            stop_deadline_secs: 25,
            store_cache_mib: (crate::store::DEFAULT_CACHE_BYTES >> 20) as u64,
        }
    }
}

/// File name of the control socket inside the data directory (the default).
pub const CONTROL_SOCKET_FILE: &str = "control.sock";

impl DaemonConfig {
    pub fn check(&self) -> Result<(), String> {
        if self.stop_deadline_secs == 0 {
            return Err("daemon.stop_deadline_secs must be at least 1".into());
        }
        if !(1..=65_536).contains(&self.store_cache_mib) {
            return Err(format!(
                "daemon.store_cache_mib must be between 1 and 65536, got {}",
                self.store_cache_mib
            ));
        }
        Ok(())
    }

    /// The store's page cache in bytes.
    pub fn store_cache_bytes(&self) -> usize {
        usize::try_from(self.store_cache_mib << 20).unwrap_or(usize::MAX)
    }

    /// Where the control socket is, for a daemon (or client) with this data directory.
    pub fn control_socket(&self, data_dir: &Path) -> PathBuf {
        self.control_socket
            .clone()
            .unwrap_or_else(|| data_dir.join(CONTROL_SOCKET_FILE))
    }
}
