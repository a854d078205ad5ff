//! The `[http]` section of `meterd.toml`: the billing API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// Default port of the billing API.
pub const DEFAULT_PORT: u16 = 8417;
/// Default and largest `max` of a pulled batch.
pub const DEFAULT_MAX_READS: usize = 100_000;

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT))
}
fn default_time_zone() -> String {
    "UTC".into()
}
fn default_max_reads() -> usize {
    DEFAULT_MAX_READS
}
fn default_header_read_timeout() -> u64 {
    DEFAULT_HEADER_READ_TIMEOUT_SECS
}
fn default_keep_alive_timeout() -> u64 {
    DEFAULT_KEEP_ALIVE_TIMEOUT_SECS
}
fn default_request_timeout() -> u64 {
    DEFAULT_REQUEST_TIMEOUT_SECS
}
fn default_tls_handshake_timeout() -> u64 {
    DEFAULT_TLS_HANDSHAKE_TIMEOUT_SECS
}
fn default_max_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}
fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

/// Default `header_read_timeout_secs`.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// Default `keep_alive_timeout_secs`.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT_SECS: u64 = 15;
/// Default `request_timeout_secs`.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 120;
/// Default `tls_handshake_timeout_secs`.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT_SECS: u64 = 10;
/// Default `max_connections`: well below systemd's default soft limit of 1024 open files, so a
/// flood of connections cannot starve the store, the serial ports or the control socket.
pub const DEFAULT_MAX_CONNECTIONS: usize = 128;
/// Default `max_body_bytes`: the API takes no request bodies; this is only a bound.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest timeout accepted (a day): longer is a typo, not a policy.
const MAX_TIMEOUT_SECS: u64 = 86_400;

/// `[http]`: the billing API. Present = the daemon serves it.
///
/// ```toml
/// [http]
/// listen = "127.0.0.1:8417"        # default; binding elsewhere without TLS logs a warning
/// tls_cert = "/etc/meterd/api.crt" # PEM chain; with tls_key: HTTPS
/// tls_key = "/etc/meterd/api.key"  # PEM key, mode 0600 (checked)
/// layouts_dir = "/etc/meterd/layouts"  # the utility's fixed-width layouts (*.toml)
/// time_zone = "America/Chicago"    # dates/times in fixed-width layouts (CMEP is always UTC)
/// max_reads = 100000               # most reads per batch (?max= must be 1..=max_reads)
/// # Limits (defaults shown). A connection is closed, without an answer, when:
/// header_read_timeout_secs = 10     # a request's headers are not complete this long after its first byte
/// keep_alive_timeout_secs = 15      # no request starts this long after the connection opened or the last answer
/// request_timeout_secs = 120        # an answer makes no progress (no byte read or written) this long;
///                                   # a request whose handling takes longer gets 503
/// tls_handshake_timeout_secs = 10   # the TLS handshake is not done this long after the connection opened
/// max_connections = 128             # connections served at once; more get 503 and are closed
/// max_body_bytes = 16384            # a longer request body gets 413
/// ```
///
/// Fixed limits: a request target longer than 8 KiB gets 414, request headers over 16 KiB in all
/// get 431 (both JSON). HTTP/1.1 only (no HTTP/2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    #[serde(default)]
    pub layouts_dir: Option<PathBuf>,
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    #[serde(default = "default_max_reads")]
    pub max_reads: usize,
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_secs: u64,
    #[serde(default = "default_keep_alive_timeout")]
    pub keep_alive_timeout_secs: u64,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    #[serde(default = "default_tls_handshake_timeout")]
    pub tls_handshake_timeout_secs: u64,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            tls_cert: None,
            tls_key: None,
            layouts_dir: None,
            time_zone: default_time_zone(),
            max_reads: DEFAULT_MAX_READS,
            header_read_timeout_secs: DEFAULT_HEADER_READ_TIMEOUT_SECS,
            keep_alive_timeout_secs: DEFAULT_KEEP_ALIVE_TIMEOUT_SECS,
            request_timeout_secs: DEFAULT_REQUEST_TIMEOUT_SECS,
            tls_handshake_timeout_secs: DEFAULT_TLS_HANDSHAKE_TIMEOUT_SECS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// The connection and request limits of `[http]`, as the server uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub request_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub max_connections: usize,
    pub max_body_bytes: usize,
}

impl HttpConfig {
    /// Refuse limits that would switch a protection off (0) or are surely typos.
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("keep_alive_timeout_secs", self.keep_alive_timeout_secs),
            ("request_timeout_secs", self.request_timeout_secs),
            ("tls_handshake_timeout_secs", self.tls_handshake_timeout_secs),
        ] {
            if !(1..=MAX_TIMEOUT_SECS).contains(&v) {
                return Err(format!("[http] {name} = {v}: use 1..={MAX_TIMEOUT_SECS} seconds"));
            }
        }
        if !(1..=65_536).contains(&self.max_connections) {
            return Err(format!(
                "[http] max_connections = {}: use 1..=65536",
                self.max_connections
            ));
        }
        if self.max_body_bytes > 64 * 1024 * 1024 {
            return Err(format!(
                "[http] max_body_bytes = {}: at most 67108864 (64 MiB)",
                self.max_body_bytes
            ));
        }
        if self.max_reads == 0 {
            return Err("[http] max_reads = 0: use at least 1".into());
        }
        Ok(())
    }

    /// The limits the server applies.
    pub fn limits(&self) -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            keep_alive_timeout: Duration::from_secs(self.keep_alive_timeout_secs),
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            tls_handshake_timeout: Duration::from_secs(self.tls_handshake_timeout_secs),
            max_connections: self.max_connections.max(1),
            max_body_bytes: self.max_body_bytes,
        }
    }

    pub fn time_zone(&self) -> anyhow::Result<TimeZone> {
        TimeZone::get(&self.time_zone).with_context(|| format!("[http] time_zone {:?}", self.time_zone))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_section_defaults_and_refuses_unknown_keys() {
        let c = crate::config::Config::parse("[http]\n", "t").unwrap();
        let h = c.http.unwrap();
        assert_eq!(h.listen.to_string(), "127.0.0.1:8417");
        assert_eq!((h.max_reads, h.time_zone.as_str()), (DEFAULT_MAX_READS, "UTC"));
        assert!(
            crate::config::Config::parse("", "t").unwrap().http.is_none(),
            "no section, no API"
        );
        let e = crate::config::Config::parse("[http]\nlisen = \"0.0.0.0:1\"\n", "m.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lisen"), "{e}");
        let h = crate::config::Config::parse("[http]\ntime_zone = \"Mars/Olympus\"\n", "t")
            .unwrap()
            .http
            .unwrap();
        assert!(format!("{:#}", h.time_zone().unwrap_err()).contains("Mars/Olympus"));
    }

    #[test]
    fn limits_default_safely_and_refuse_zero() {
        let h = crate::config::Config::parse("[http]\n", "t").unwrap().http.unwrap();
        let l = h.limits();
        assert_eq!(
            l.header_read_timeout,
            Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT_SECS)
        );
        assert_eq!(l.max_connections, DEFAULT_MAX_CONNECTIONS);
        let h = crate::config::Config::parse("[http]\nkeep_alive_timeout_secs = 2\nmax_connections = 3\n", "t")
            .unwrap()
            .http
            .unwrap();
        assert_eq!(
            (h.limits().keep_alive_timeout, h.limits().max_connections),
            (Duration::from_secs(2), 3)
        );
        for bad in [
            "header_read_timeout_secs = 0",
            "keep_alive_timeout_secs = 0",
            "request_timeout_secs = 0",
            "tls_handshake_timeout_secs = 0",
            "max_connections = 0",
            "max_reads = 0",
            "request_timeout_secs = 999999",
        ] {
            let e = crate::config::Config::parse(&format!("[http]\n{bad}\n"), "m.toml")
                .unwrap_err()
                .to_string();
            let key = bad.split(' ').next().unwrap();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }
}
