//! Opening the store the configuration names: the embedded redb file in `data_dir` (the
//! default: a fresh machine needs nothing else), or a PostgreSQL database that several meterd
//! instances share. Everything above the engine holds the result as `Arc<dyn Store>`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::postgres::StoreConfig;
use super::{DEFAULT_CACHE_BYTES, QuarantineLimits, Result, Store};

/// What `store backup` and `store restore` answer for a server store: the database's own
/// tools copy it consistently while instances keep writing.
pub const SERVER_BACKUP: &str = "the store is a PostgreSQL database ([store] url): back it up with pg_dump (or \
     the standby's base backups) and restore with pg_restore, as docs/operating.md \"Backups\" describes; \
     `meterd store backup` and `store restore` copy the embedded store file only";

/// Which store to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreTarget {
    /// The redb file in `data_dir` (created when missing).
    Embedded {
        data_dir: PathBuf,
        /// Page cache bound (`[daemon]` memory settings).
        cache_bytes: usize,
        /// How long to wait while another process holds the file (redb allows one process;
        /// commands and review screens hold it for a moment each). Zero: do not wait.
        wait: Duration,
        /// Open without writing the file (commands that only read).
        read_only: bool,
    },
    /// A PostgreSQL database (`[store] url`, or `METERD_STORE_URL`), with its password file,
    /// TLS settings and pool size.
    Server(StoreConfig),
}

impl StoreTarget {
    /// The embedded store in `data_dir`, default cache, no waiting, read-write.
    pub fn embedded(data_dir: &Path) -> Self {
        StoreTarget::Embedded {
            data_dir: data_dir.to_owned(),
            cache_bytes: DEFAULT_CACHE_BYTES,
            wait: Duration::ZERO,
            read_only: false,
        }
    }

    /// The store a configuration names, with the data directory in force (`--data-dir`).
    pub fn from_config(config: &crate::config::Config, data_dir: &Path) -> Self {
        // `Config::load` has already put METERD_STORE_URL in place of `[store] url`.
        if config.store.is_postgres() {
            return StoreTarget::Server(config.store.clone());
        }
        StoreTarget::Embedded {
            data_dir: data_dir.to_owned(),
            cache_bytes: config.daemon.store_cache_bytes(),
            wait: Duration::ZERO,
            read_only: false,
        }
    }

    /// The same target, waiting up to `wait` for an embedded store another process holds.
    pub fn waiting(mut self, how_long: Duration) -> Self {
        if let StoreTarget::Embedded { wait, .. } = &mut self {
            *wait = how_long;
        }
        self
    }

    /// The same target, opened for reading only where the engine can (embedded).
    pub fn read_only(mut self) -> Self {
        if let StoreTarget::Embedded { read_only, .. } = &mut self {
            *read_only = true;
        }
        self
    }

    /// Whether this is a database server shared by instances (not a file on this machine).
    pub fn is_server(&self) -> bool {
        matches!(self, StoreTarget::Server(_))
    }

    /// The embedded store's data directory.
    pub fn data_dir(&self) -> Option<&Path> {
        match self {
            StoreTarget::Embedded { data_dir, .. } => Some(data_dir),
            StoreTarget::Server(_) => None,
        }
    }

    /// For logs and errors, as [`Store::describe`] will say it once open: `redb
    /// /var/lib/meterd/meterd.redb`, `postgresql db1:5432,db2:5432/meterd` (no user, no
    /// password, no parameters).
    pub fn describe(&self) -> String {
        match self {
            StoreTarget::Embedded { data_dir, .. } => {
                format!("redb {}", data_dir.join(super::STORE_FILE).display())
            }
            StoreTarget::Server(config) => {
                format!("postgresql {}", server_shown(config.url.as_deref().unwrap_or_default()))
            }
        }
    }
}

/// Host(s), port(s) and database of a PostgreSQL URL, without credentials or parameters.
pub fn server_shown(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    // User and password end at the last '@' of the authority.
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if path.is_empty() {
        hosts.to_owned()
    } else {
        format!("{hosts}/{path}")
    }
}

/// Opens the store `target` names, with quarantine retention `limits` applied by its writes.
pub fn open(target: &StoreTarget, limits: QuarantineLimits) -> Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match target {
        StoreTarget::Embedded {
            data_dir,
            cache_bytes,
            wait,
            read_only: false,
        } => Arc::new(super::open_waiting_with_cache(data_dir, *cache_bytes, *wait)?),
        StoreTarget::Embedded {
            data_dir,
            wait,
            read_only: true,
            ..
        } => Arc::new(super::open_waiting_read_only(data_dir, *wait)?),
        StoreTarget::Server(config) => Arc::new(super::postgres::PgStore::open(config)?),
    };
    store.set_quarantine_limits(limits);
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_is_shown_without_credentials_or_parameters() {
        for (url, shown) in [
            ("postgresql://meterd:s3cret@db1:5432/meterd", "db1:5432/meterd"),
            (
                "postgresql://meterd@db1:5432,db2:5432/meterd?target_session_attrs=read-write",
                "db1:5432,db2:5432/meterd",
            ),
            ("postgres://u:p@ss@db1/meterd?password=x", "db1/meterd"),
            ("postgresql://db1", "db1"),
        ] {
            assert_eq!(server_shown(url), shown, "{url}");
        }
        let t = StoreTarget::Server(StoreConfig {
            url: Some("postgresql://meterd:s3cret@db1:5432/meterd".into()),
            ..StoreConfig::default()
        });
        assert_eq!(t.describe(), "postgresql db1:5432/meterd");
        assert!(t.is_server());
    }

    #[test]
    fn the_embedded_store_opens_with_the_limits_and_describes_itself() {
        let dir = tempfile::tempdir().unwrap();
        let target = StoreTarget::embedded(dir.path());
        let limits = QuarantineLimits {
            max_bytes: 1234,
            ..QuarantineLimits::default()
        };
        let store = open(&target, limits).unwrap();
        assert_eq!(store.describe(), target.describe());
        assert_eq!(
            store.describe(),
            format!("redb {}", dir.path().join("meterd.redb").display())
        );
    }
}
