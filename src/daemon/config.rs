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
    /// Unix socket where the daemon serves the client API (`meterd` commands and the review
    /// screen while it runs; default `<data_dir>/control.sock`; the packaged configuration uses
    /// `/run/meterd/control.sock`).
    pub control_socket: Option<PathBuf>,
    /// The socket's mode, octal: who may connect at all. Who may do what once connected is
    /// `[access]`; a user in no role is refused at the handshake.
    pub control_socket_mode: String,
    /// The socket's group (default: the daemon's own group). The packaged unit's group is
    /// `meterd`, so its members may connect.
    pub control_socket_group: Option<String>,
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
            control_socket_mode: "0660".into(),
            control_socket_group: None,
            stop_deadline_secs: 25,
            store_cache_mib: (crate::store::DEFAULT_CACHE_BYTES >> 20) as u64,
        }
    }
}

/// File name of the control socket inside the data directory (the default).
pub const CONTROL_SOCKET_FILE: &str = "control.sock";

impl DaemonConfig {
    pub fn check(&self) -> Result<(), String> {
        self.socket_mode()?;
        if let Some(g) = &self.control_socket_group
            && (g.is_empty() || g.len() > 64 || !g.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
        {
            return Err(format!("daemon.control_socket_group {g:?} is not a group name"));
        }
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

    /// The socket's mode bits.
    pub fn socket_mode(&self) -> Result<u32, String> {
        match u32::from_str_radix(self.control_socket_mode.trim_start_matches("0o"), 8) {
            Ok(m) if m <= 0o777 => Ok(m),
            _ => Err(format!(
                "daemon.control_socket_mode {:?} is not an octal mode such as \"0660\"",
                self.control_socket_mode
            )),
        }
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
