//! `[store]`: where the PostgreSQL store is (issue 14). Without `url` meterd keeps its embedded
//! store in `data_dir`, so a fresh machine needs nothing here.
//!
//! ```toml
//! [store]
//! url = "postgresql://meterd@db1:5432,db2:5432/meterd?target_session_attrs=read-write"
//! password_file = "/etc/meterd/store.password"   # chmod 600, owner meterd
//! sslmode = "verify-full"
//! ca_file = "/etc/meterd/db-ca.pem"
//! pool_size = 8
//! connect_timeout_secs = 10
//! ```
//!
//! The environment variable `METERD_STORE_URL` overrides `url` ([`StoreConfig::with_env`]).
//! A password never goes into the URL: it would be printed by `check-config` and kept in the
//! shell history of whoever sets the variable. Such a URL is refused, and every printed form
//! of a URL is redacted ([`redact_url`]) in case one slips through.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The environment variable that overrides `[store] url`.
pub const URL_ENV: &str = "METERD_STORE_URL";

/// Most pooled connections one instance may hold (PostgreSQL's default `max_connections` is 100,
/// shared by every instance).
const MAX_POOL_SIZE: usize = 256;

/// How meterd protects the connection to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// No TLS: for a server on the same machine or a network trusted as much as it.
    Disable,
    /// TLS, but the server's certificate is not checked (as libpq's `require`): protects
    /// against someone listening, not against someone impersonating the server.
    Require,
    /// TLS, the certificate checked against `ca_file` (else the system's CA roots) and the
    /// host name the URL names. The default: a read store is billing data.
    #[default]
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Require => "require",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// `[store]` of `meterd.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The PostgreSQL server(s) and database, as a libpq URL or `key=value` string; several
    /// hosts for a primary and its standbys. `None`: the embedded store in `data_dir`.
    pub url: Option<String>,
    /// The password of the URL's user, in a file readable by its owner only.
    pub password_file: Option<PathBuf>,
    pub sslmode: SslMode,
    /// CA certificates (PEM) that signed the server's certificate; the system's roots when
    /// absent.
    pub ca_file: Option<PathBuf>,
    /// Connections this instance keeps to the server at most.
    pub pool_size: usize,
    /// How long one connection attempt (to one host) may take.
    pub connect_timeout_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: None,
            password_file: None,
            sslmode: SslMode::default(),
            ca_file: None,
            pool_size: 8,
            connect_timeout_secs: 10,
        }
    }
}

impl StoreConfig {
    /// Whether a PostgreSQL store is configured (else the embedded one is used).
    pub fn is_postgres(&self) -> bool {
        self.url.is_some()
    }

    /// This configuration with `METERD_STORE_URL`, when set and not empty, in place of `url`.
    pub fn with_env(mut self) -> Self {
        if let Some(url) = std::env::var_os(URL_ENV).filter(|v| !v.is_empty()) {
            self.url = Some(url.to_string_lossy().into_owned());
        }
        self
    }

    /// Checks the values (the URL's syntax, no password in it, limits); errors name the key.
    /// Files are checked by `check-config` ([`crate::config::Config::check_files`]).
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_POOL_SIZE).contains(&self.pool_size) {
            return Err(format!(
                "store.pool_size = {} is outside 1..={MAX_POOL_SIZE}",
                self.pool_size
            ));
        }
        if !(1..=3600).contains(&self.connect_timeout_secs) {
            return Err(format!(
                "store.connect_timeout_secs = {} is outside 1..=3600",
                self.connect_timeout_secs
            ));
        }
        if self.url.is_some() {
            self.pg_config()?;
        }
        Ok(())
    }

    /// [`StoreConfig::check`], and no PostgreSQL settings without a URL (which would silently
    /// use the embedded store). Only once the environment was applied: the URL may come from
    /// `METERD_STORE_URL` alone.
    pub fn check_complete(&self) -> Result<(), String> {
        self.check()?;
        if self.url.is_none() && (self.password_file.is_some() || self.ca_file.is_some()) {
            return Err(format!(
                "store.password_file / store.ca_file are set but neither store.url nor {URL_ENV} is: \
                 without a URL the embedded store in data_dir is used"
            ));
        }
        Ok(())
    }

    /// The URL as it may be printed (a password in it replaced by `***`).
    pub fn shown_url(&self) -> String {
        self.url.as_deref().map(redact_url).unwrap_or_default()
    }

    /// The driver's configuration from `url`, `sslmode` and `connect_timeout_secs`, without
    /// the password (the connector reads `password_file`). Errors name `store.url`.
    pub fn pg_config(&self) -> Result<tokio_postgres::Config, String> {
        let url = self.url.as_deref().ok_or("store.url is not set")?;
        let shown = redact_url(url);
        if url.to_ascii_lowercase().contains("sslmode=") {
            return Err(format!(
                "store.url {shown}: give sslmode as store.sslmode (disable, require, verify-full), not in the URL"
            ));
        }
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            format!(
                "store.url {shown} is not a PostgreSQL URL: {}",
                crate::store::postgres::connect::error_text(&e)
            )
        })?;
        if config.get_password().is_some() {
            return Err(format!(
                "store.url {shown} contains a password; put it in the file store.password_file names (chmod 600) instead"
            ));
        }
        if config.get_hosts().is_empty() {
            return Err(format!("store.url {shown} names no host"));
        }
        if config.get_user().is_none() {
            return Err(format!(
                "store.url {shown} names no user (postgresql://USER@HOST/DATABASE)"
            ));
        }
        if config.get_dbname().is_none() {
            return Err(format!(
                "store.url {shown} names no database (postgresql://USER@HOST/DATABASE)"
            ));
        }
        config.ssl_mode(match self.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            // Never silently downgraded to plain text: the connection fails if the server
            // offers no TLS.
            SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        });
        config.connect_timeout(Duration::from_secs(self.connect_timeout_secs));
        if config.get_application_name().is_none() {
            config.application_name("meterd");
        }
        Ok(config)
    }
}

/// `url` with any password replaced by `***`, in both the URL form
/// (`postgresql://user:secret@host/db`) and the `key=value` form (`password=secret`).
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        // The user info ends at the last '@' before the query: not before the first '/', as a
        // password with an unencoded '/' (a mistake, so the likeliest to be printed) must stay
        // hidden too; a '@' in the database name only hides more.
        let authority_end = rest.find('?').unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let mut shown = match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                let hidden = if userinfo.contains(':') { ":***" } else { "" };
                format!("{scheme}://{user}{hidden}{}", &rest[at..])
            }
            None => url.to_owned(),
        };
        // A password may also be given as a query parameter.
        if let Some(q) = shown.find('?') {
            let (head, query) = shown.split_at(q + 1);
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            shown = format!("{head}{}", query.join("&"));
        }
        shown
    } else {
        redact_key_value(url)
    }
}

/// `password=...` of a libpq `key=value` string replaced (quoted values included).
fn redact_key_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.to_ascii_lowercase().find("password") {
        let after = &rest[i + "password".len()..];
        let trimmed = after.trim_start();
        if let Some(value) = trimmed.strip_prefix('=') {
            out.push_str(&rest[..i]);
            out.push_str("password=***");
            let value = value.trim_start();
            let end = if let Some(quoted) = value.strip_prefix('\'') {
                // Up to the closing quote not escaped by a backslash.
                let mut end = quoted.len();
                let mut escaped = false;
                for (j, c) in quoted.char_indices() {
                    match c {
                        '\\' if !escaped => escaped = true,
                        '\'' if !escaped => {
                            end = j + 1;
                            break;
                        }
                        _ => escaped = false,
                    }
                }
                1 + end.min(quoted.len())
            } else {
                value.find(char::is_whitespace).unwrap_or(value.len())
            };
            rest = &value[end.min(value.len())..];
        } else {
            out.push_str(&rest[..i + "password".len()]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str) -> StoreConfig {
        StoreConfig {
            url: Some(url.into()),
            ..StoreConfig::default()
        }
    }

    #[test]
    fn multi_host_url_with_session_attrs_is_accepted() {
        let c = with_url("postgresql://meterd@db1:5432,db2:5433/meterd?target_session_attrs=read-write");
        c.check().unwrap();
        let pg = c.pg_config().unwrap();
        assert_eq!(pg.get_hosts().len(), 2);
        assert_eq!(pg.get_ports(), [5432, 5433]);
        assert_eq!(
            pg.get_target_session_attrs(),
            tokio_postgres::config::TargetSessionAttrs::ReadWrite
        );
        assert_eq!(pg.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        assert_eq!(pg.get_dbname(), Some("meterd"));
        // The Unix socket form the commented configuration shows.
        let pg = with_url("postgresql://meterd@%2Frun%2Fpostgresql/meterd")
            .pg_config()
            .unwrap();
        assert!(
            matches!(&pg.get_hosts()[0], tokio_postgres::config::Host::Unix(p) if p.as_os_str() == "/run/postgresql"),
            "{:?}",
            pg.get_hosts()
        );
    }

    #[test]
    fn a_password_in_the_url_is_refused_and_never_shown() {
        for url in [
            "postgresql://meterd:hunter2@db1/meterd",
            "postgresql://meterd@db1/meterd?password=hunter2",
            "host=db1 user=meterd dbname=meterd password=hunter2",
            "host=db1 user=meterd dbname=meterd password = 'hun ter2'",
        ] {
            let e = with_url(url).check().unwrap_err();
            assert!(
                e.contains("password") && !e.contains("hunter2") && !e.contains("hun ter2"),
                "{e}"
            );
            assert!(!redact_url(url).contains("ter2"), "{}", redact_url(url));
        }
        assert_eq!(
            redact_url("postgresql://meterd:pw@db1:5432,db2/meterd"),
            "postgresql://meterd:***@db1:5432,db2/meterd"
        );
        assert_eq!(redact_url("postgresql://meterd@db1/m"), "postgresql://meterd@db1/m");
        assert_eq!(
            redact_url("postgresql://meterd:pa/ss@db1/m?application_name=x"),
            "postgresql://meterd:***@db1/m?application_name=x"
        );
    }

    #[test]
    fn bad_urls_name_the_key() {
        for (url, needle) in [
            ("postgresql://meterd@db1:notaport/meterd", "not a PostgreSQL URL"),
            ("postgresql://meterd@db1/meterd?sslmode=verify-full", "store.sslmode"),
            ("postgresql://db1/meterd", "no user"),
            ("postgresql://meterd@db1", "no database"),
        ] {
            let e = with_url(url).check().unwrap_err();
            assert!(e.contains("store.") && e.contains(needle), "{url}: {e}");
        }
        let e = StoreConfig {
            pool_size: 0,
            ..with_url("postgresql://u@h/d")
        }
        .check()
        .unwrap_err();
        assert!(e.contains("store.pool_size"), "{e}");
    }

    #[test]
    fn settings_without_a_url_are_an_error_once_the_environment_is_applied() {
        let c: StoreConfig = toml::from_str("password_file = \"/etc/meterd/store.password\"\n").unwrap();
        c.check().unwrap();
        let e = c.check_complete().unwrap_err();
        assert!(e.contains("store.password_file") && e.contains(URL_ENV), "{e}");
        with_url("postgresql://u@h/d").check_complete().unwrap();
    }

    #[test]
    fn defaults_parse_back() {
        let c: StoreConfig = toml::from_str("").unwrap();
        assert_eq!(c, StoreConfig::default());
        assert!(!c.is_postgres());
        c.check().unwrap();
        let c: StoreConfig = toml::from_str("url = \"postgresql://u@h/d\"\nsslmode = \"disable\"\n").unwrap();
        assert_eq!(c.sslmode, SslMode::Disable);
        assert!(toml::from_str::<StoreConfig>("sslmode = \"prefer\"\n").is_err());
    }
}
