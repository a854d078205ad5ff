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
//! default).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::vee::VeeConfig;

/// The configuration file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory of the store (`--data-dir` overrides it).
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub vee: VeeConfig,
    /// The billing API (`[http]`); served by `meterd run` when present.
    #[serde(default)]
    pub http: Option<crate::billing::http::HttpConfig>,
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
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid { path: path.to_owned(), message: e.to_string() })?;
        config.vee.check().map_err(|message| ConfigError::Invalid { path: path.to_owned(), message })?;
        Ok(config)
    }

    /// Load `path`; without one, `./meterd.toml` when it exists, else the defaults.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let path = match path {
            Some(p) => p.to_owned(),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => PathBuf::from(DEFAULT_CONFIG_FILE),
            None => return Ok(Config::default()),
        };
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io { path: shown.clone(), source })?;
        Self::parse(&text, &shown)
    }

    /// The data directory: the flag, else the config, else `./meterd-data`.
    pub fn data_dir(&self, flag: Option<&Path>) -> PathBuf {
        flag.map(Path::to_owned).or_else(|| self.data_dir.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
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
        let c = Config::parse("data_dir = \"/d\"\n[vee.gas]\nhigh_factor = 2.5\nmin_high_delta = 3\n", "t").unwrap();
        assert_eq!(c.data_dir(None), PathBuf::from("/d"));
        assert_eq!(c.vee.gas.high_factor, Quantity::parse("2.5").unwrap());
        assert_eq!(c.vee.gas.min_high_delta, Quantity::parse("3").unwrap());
        assert_eq!(c.vee.gas.low_factor, Quantity::parse("0.4").unwrap());
        assert_eq!(c.vee.water.high_factor, Quantity::parse("1.8").unwrap());
    }

    #[test]
    fn unknown_keys_and_bad_factors_are_errors() {
        let e = Config::parse("[vee.water]\nhigh_factr = 2\n", "m.toml").unwrap_err().to_string();
        assert!(e.contains("m.toml") && e.contains("high_factr"), "{e}");
        let e = Config::parse("datadir = \"x\"\n", "m.toml").unwrap_err().to_string();
        assert!(e.contains("datadir"), "{e}");
        let e = Config::parse("[vee.electric]\nlow_factor = 1.5\n", "m.toml").unwrap_err().to_string();
        assert!(e.contains("vee.electric.low_factor"), "{e}");
    }
}
