//! `meterd.toml`: where the store lives and the VEE factors per service.
//!
//! ```toml
//! data_dir = "/var/lib/meterd"
//!
//! [vee.water]
//! high_factor = 1.8      # H = max(high_factor × E, E + min_high_delta)
//! low_factor = 0.4       # low limit = low_factor × E
//! min_high_delta = 10    # register units
//! ```
//! Every key is optional; unknown keys are an error (a typo must not silently fall back to a
//! default), and the error names the line and column.
//!
//! Each section is defined with its component: `[vee]` in `vee/config.rs`, `[[cradle]]` in
//! `ingest/cradle/config.rs`, `[mqtt]` in `ingest/mqtt/config.rs`, `[meterbus]` in
//! `ingest/meterbus/config.rs`, `[log]` and `[daemon]` in `daemon/config.rs`, `[http]` in
//! `billing/http/config.rs`, `[access]` in `api/config.rs`, `[store]` in `store/postgres/config.rs`; this file
//! assembles them and checks the file as a whole.
//!
//! Every option is documented in `systemd/meterd.toml`, the commented default configuration the
//! Debian package installs as `/etc/meterd/meterd.toml`.
//!
//! # Conventions every section follows (so `meterd check-config` checks them all)
//! - A key ending in `_file` or `_path` (or `tls_cert`) names a file; `check-config` reports it
//!   when it does not exist. Directories and devices (`port`) are not checked.
//! - Secrets are never written into this file: a key `password_file`, `key_file`,
//!   `*_key_file`, `secret_file`, `token_file` or `tls_key` names a file readable by its owner only
//!   ([`crate::secrets::read_private`]); `check-config` enforces the permissions.
//! - A key containing `password`, `secret` or `token` that is not a `_file` is printed redacted.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::vee::VeeConfig;

pub use crate::daemon::config::{DaemonConfig, LogConfig, LogFormat};

/// The configuration file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory of the store (`--data-dir` overrides it).
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub vee: VeeConfig,
    /// Handheld cradles (`[[cradle]]`), one daemon task each.
    #[serde(default)]
    pub cradle: Vec<crate::ingest::cradle::CradleConfig>,
    /// wM-Bus receivers on serial ports or FIFOs (`[[receiver]]`), one daemon task each.
    #[serde(default)]
    pub receiver: Vec<crate::ingest::receiver::ReceiverConfig>,
    /// MQTT gateway ingest; the daemon runs it when the section is present.
    #[serde(default)]
    pub mqtt: Option<crate::ingest::mqtt::MqttConfig>,
    /// Meters meterd reads itself over serial lines (probe, M-Bus, P1): see
    /// [`crate::ingest::meterbus::config`].
    #[serde(default)]
    pub meterbus: crate::ingest::meterbus::MeterbusConfig,
    // -- operations (issue 8): logging, the daemon's control socket and stop deadline --
    /// `[log]`: level and format of the daemon's log.
    #[serde(default)]
    pub log: LogConfig,
    /// `[daemon]`: control socket, stop deadline.
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// The billing API (`[http]`); served by `meterd run` when present.
    #[serde(default)]
    pub http: Option<crate::billing::http::HttpConfig>,
    /// `[access]`: which users and groups are clerks, supervisors and admins.
    #[serde(default)]
    pub access: crate::api::AccessConfig,
    /// `[quarantine]`: how much undecodable input is kept.
    #[serde(default)]
    pub quarantine: crate::ingest::quarantine::QuarantineConfig,
    /// `[store]`: a PostgreSQL store instead of the embedded one (`METERD_STORE_URL` overrides
    /// its `url` when the file is loaded).
    #[serde(default)]
    pub store: crate::store::postgres::StoreConfig,
    /// `[intervals]`: the utility's time zone, holidays, interval VEE thresholds.
    #[serde(default)]
    pub intervals: crate::vee::interval::IntervalConfig,
    /// `[tou]`: time-of-use periods; interval exports add per-period day totals.
    #[serde(default)]
    pub tou: Option<crate::billing::tou::TouConfig>,
}

/// Default configuration file, looked for in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "meterd.toml";
/// Default data directory when neither the flag nor the config names one.
pub const DEFAULT_DATA_DIR: &str = "meterd-data";

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("config {path}: {message}")]
    Invalid { path: String, message: String },
}

impl Config {
    /// Parse configuration text (`path` only names it in errors).
    pub fn parse(text: &str, path: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            message: located(text, &e),
        })?;
        config.vee.check().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        if let Some(m) = &config.mqtt {
            m.check().map_err(|message| ConfigError::Invalid {
                path: path.to_owned(),
                message,
            })?;
        }
        crate::ingest::receiver::config::check_all(&config.receiver).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        config.meterbus.check().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        config.log.check().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        config.daemon.check().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        config.access.check().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        if let Some(h) = &config.http {
            h.check().map_err(|message| ConfigError::Invalid {
                path: path.to_owned(),
                message,
            })?;
        }
        config.quarantine.check().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        config.store.check().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok(config)
    }

    /// This configuration with the environment's overrides applied and checked again:
    /// `METERD_STORE_URL` in place of `[store] url` (an error then names the variable).
    pub fn with_env(mut self, path: &str) -> Result<Self, ConfigError> {
        let mut path = path.to_owned();
        if std::env::var_os(crate::store::postgres::URL_ENV).is_some_and(|v| !v.is_empty()) {
            self.store = self.store.with_env();
            path = format!("{path} with {}", crate::store::postgres::URL_ENV);
        }
        self.store.check_complete().map_err(|message| ConfigError::Invalid {
            path: path.clone(),
            message,
        })?;
        // Values serde cannot check: a time zone name must be known, TOU hours sensible.
        self.intervals.time_zone().map_err(|message| ConfigError::Invalid {
            path: path.clone(),
            message,
        })?;
        if let Some(tou) = &self.tou {
            tou.check().map_err(|message| ConfigError::Invalid { path, message })?;
        }
        Ok(self)
    }

    /// The file [`Config::load`] reads: `path`, else `./meterd.toml` when it exists.
    pub fn file(path: Option<&Path>) -> Option<PathBuf> {
        match path {
            Some(p) => Some(p.to_owned()),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => Some(PathBuf::from(DEFAULT_CONFIG_FILE)),
            None => None,
        }
    }

    /// Load `path`; without one, `./meterd.toml` when it exists, else the defaults. The
    /// environment's overrides are applied ([`Config::with_env`]).
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = Self::file(path) else {
            return Config::default().with_env("(no file: defaults)");
        };
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)?.with_env(&shown)
    }

    /// The configuration with every default filled in, as TOML, secrets redacted (what
    /// `meterd check-config` prints).
    pub fn effective_toml(&self) -> String {
        let mut value = toml::Value::try_from(self).expect("the configuration serialises to TOML");
        redact(&mut value);
        toml::to_string_pretty(&value).expect("a TOML table prints")
    }

    /// Checks what the file refers to on disk (see the conventions above): files that must
    /// exist, secret files that must be private. Returns one message per problem.
    pub fn check_files(&self) -> Vec<String> {
        let value = toml::Value::try_from(self).expect("the configuration serialises to TOML");
        let mut problems = Vec::new();
        walk_files(&value, String::new(), &mut problems);
        // mqtts://: the CA, certificate and key files must also load (PEM, a key that fits).
        if let Some(m) = &self.mqtt
            && m.broker_addr().is_ok_and(|b| b.tls)
            && !problems.iter().any(|p| p.starts_with("mqtt."))
            && let Err(e) = crate::ingest::mqtt::tls::client_config(&m.tls())
        {
            problems.push(format!("mqtt (TLS): {e:#}"));
        }
        problems
    }

    /// The data directory: the flag, else the config, else `./meterd-data`.
    pub fn data_dir(&self, flag: Option<&Path>) -> PathBuf {
        flag.map(Path::to_owned)
            .or_else(|| self.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }
}

/// A TOML error on one line (journald keeps one entry per line): `line L, column C: message`.
fn located(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.chars().rev().take_while(|&c| c != '\n').count() + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// A key that names a secret file (permissions checked).
fn is_secret_file_key(key: &str) -> bool {
    matches!(
        key,
        "password_file" | "key_file" | "secret_file" | "token_file" | "tls_key"
    ) || key.ends_with("_key_file")
}

/// A key that names a file that must exist (devices such as `port` are not checked: a cradle
/// may be unplugged when the configuration is checked).
fn is_path_key(key: &str) -> bool {
    key.ends_with("_file") || key.ends_with("_path") || key == "tls_cert"
}

/// A key whose value is itself secret (printed redacted).
fn is_secret_value_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    !k.ends_with("_file") && (k.contains("password") || k.contains("secret") || k.contains("token"))
}

fn redact(value: &mut toml::Value) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                if is_secret_value_key(k) && !v.is_table() && !v.is_array() {
                    *v = toml::Value::String("<redacted>".into());
                } else if k == "url"
                    && let Some(url) = v.as_str()
                {
                    // A database URL may carry a password (refused when checked; hidden anyway).
                    *v = toml::Value::String(crate::store::postgres::redact_url(url));
                } else {
                    redact(v);
                }
            }
        }
        toml::Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

fn walk_files(value: &toml::Value, at: String, problems: &mut Vec<String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let here = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                match v.as_str() {
                    Some(path) if is_secret_file_key(k) => {
                        if let Err(e) = crate::secrets::read_private(Path::new(path)) {
                            problems.push(format!("{here}: {e:#}"));
                        }
                    }
                    Some(path) if is_path_key(k) => {
                        if !Path::new(path).exists() {
                            problems.push(format!("{here}: {path} does not exist"));
                        }
                    }
                    _ => walk_files(v, here, problems),
                }
            }
        }
        toml::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                walk_files(v, format!("{at}[{i}]"), problems);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Quantity, Service};

    #[test]
    fn defaults_when_empty() {
        let c = Config::parse("", "t").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.vee.factors(Service::Gas).high_factor, Quantity::parse("1.8").unwrap());
        assert_eq!(c.data_dir(None), PathBuf::from("meterd-data"));
        assert_eq!(c.data_dir(Some(Path::new("/x"))), PathBuf::from("/x"));
    }

    #[test]
    fn per_service_factors() {
        let c = Config::parse(
            "data_dir = \"/d\"\n[vee.gas]\nhigh_factor = 2.5\nmin_high_delta = 3\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.data_dir(None), PathBuf::from("/d"));
        assert_eq!(c.vee.gas.high_factor, Quantity::parse("2.5").unwrap());
        assert_eq!(c.vee.gas.min_high_delta, Quantity::parse("3").unwrap());
        assert_eq!(c.vee.gas.low_factor, Quantity::parse("0.4").unwrap());
        assert_eq!(c.vee.water.high_factor, Quantity::parse("1.8").unwrap());
    }

    #[test]
    fn unknown_keys_and_bad_factors_are_errors() {
        let e = Config::parse("[vee.water]\nhigh_factr = 2\n", "m.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("m.toml") && e.contains("high_factr"), "{e}");
        let e = Config::parse("datadir = \"x\"\n", "m.toml").unwrap_err().to_string();
        assert!(e.contains("datadir"), "{e}");
        let e = Config::parse("[vee.electric]\nlow_factor = 1.5\n", "m.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("vee.electric.low_factor"), "{e}");
    }

    #[test]
    fn unknown_key_error_names_line_and_column() {
        let e = Config::parse("data_dir = \"/d\"\n\n[log]\n  levl = \"debug\"\n", "m.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("m.toml") && e.contains("line 4, column 3") && e.contains("levl"),
            "{e}"
        );
    }

    #[test]
    fn effective_config_fills_defaults_and_redacts() {
        let c = Config::parse("[log]\nlevel = \"debug\"\n", "t").unwrap();
        let text = c.effective_toml();
        assert!(
            text.contains("level = \"debug\"") && text.contains("high_factor") && text.contains("stop_deadline_secs"),
            "{text}"
        );
        // Printed defaults parse back to the same configuration.
        assert_eq!(Config::parse(&text, "effective").unwrap(), c);

        let mut v: toml::Value =
            toml::from_str("[mqtt]\npassword = \"hunter2\"\npassword_file = \"/etc/p\"\n[[cradle]]\ntoken = \"x\"\n")
                .unwrap();
        redact(&mut v);
        let shown = toml::to_string(&v).unwrap();
        assert!(
            !shown.contains("hunter2") && !shown.contains("\"x\"") && shown.contains("/etc/p"),
            "{shown}"
        );
    }

    #[test]
    fn referenced_files_are_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("aes.keys");
        std::fs::write(&key, "12345678=00112233445566778899AABBCCDDEEFF\n").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let v: toml::Value = toml::from_str(&format!(
            "[wmbus]\nkey_file = \"{}\"\n[http]\ntls_cert_path = \"/nonexistent/cert.pem\"\n",
            key.display()
        ))
        .unwrap();
        let mut problems = Vec::new();
        walk_files(&v, String::new(), &mut problems);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("http.tls_cert_path") && problems[0].contains("does not exist"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("wmbus.key_file") && problems[1].contains("chmod 600"),
            "{problems:?}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut problems = Vec::new();
        walk_files(&v, String::new(), &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }
}
