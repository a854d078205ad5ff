//! The `[http]` section of `meterd.toml`: the billing API.

use std::net::SocketAddr;
use std::path::PathBuf;

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

/// `[http]`: the billing API. Present = the daemon serves it.
///
/// ```toml
/// [http]
/// listen = "127.0.0.1:8417"        # default; binding elsewhere without TLS logs a warning
/// tls_cert = "/etc/meterd/api.crt" # PEM chain; with tls_key: HTTPS
/// tls_key = "/etc/meterd/api.key"  # PEM key, mode 0600 (checked)
/// layouts_dir = "/etc/meterd/layouts"  # the utility's fixed-width layouts (*.toml)
/// time_zone = "America/Chicago"    # dates/times in fixed-width layouts (CMEP is always UTC)
/// max_reads = 100000               # most reads per batch (caps ?max=)
/// ```
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
        }
    }
}

impl HttpConfig {
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
}
