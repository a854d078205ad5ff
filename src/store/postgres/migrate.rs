//! Versioned schema migrations: one SQL file per version in `migrations/`, embedded in the
//! binary, applied in order, each in its own transaction, recorded in `meterd_schema`.
//!
//! Several instances may start at once against one database: each migration step first locks
//! the one row of `meterd_schema_lock` (`SELECT ... FOR UPDATE`, a row lock that CockroachDB and
//! YugabyteDB also take; no advisory lock), then reads the version again, so a step is applied
//! once and the others wait, then find nothing left to do.

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::store::StoreError;

/// One schema version: the SQL that brings version `version - 1` to it.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order; version N is at index N − 1. Append only: a released file never
/// changes (a database records only the number).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_schema",
        sql: include_str!("migrations/0001_schema.sql"),
    },
    Migration {
        version: 2,
        name: "0002_intervals",
        sql: include_str!("migrations/0002_intervals.sql"),
    },
    Migration {
        version: 3,
        name: "0003_interval_audit",
        sql: include_str!("migrations/0003_interval_audit.sql"),
    },
    Migration {
        version: 4,
        name: "0004_gateway_health",
        sql: include_str!("migrations/0004_gateway_health.sql"),
    },
    Migration {
        version: 5,
        name: "0005_wmbus",
        sql: include_str!("migrations/0005_wmbus.sql"),
    },
];

/// The schema version this build reads and writes on PostgreSQL.
pub const SCHEMA_VERSION: u64 = MIGRATIONS.len() as u64;

/// What [`migrate`] did: the version found, and the version now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    pub from: u64,
    pub to: u64,
}

const BOOTSTRAP: &str = "
CREATE TABLE IF NOT EXISTS meterd_schema (
    version         bigint PRIMARY KEY,
    applied_at      timestamptz NOT NULL,
    meterd_version  text NOT NULL
);
CREATE TABLE IF NOT EXISTS meterd_schema_lock (
    id  smallint PRIMARY KEY CHECK (id = 1)
);
INSERT INTO meterd_schema_lock (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
";

/// Brings the database to [`SCHEMA_VERSION`]: refuses a newer one (naming both versions),
/// upgrades an older one step by step (logging it, with a hint to back up first), creates the
/// schema in an empty one. `target` names the database in errors and logs.
pub async fn migrate(client: &mut Client, target: &str) -> Result<Migrated, StoreError> {
    bootstrap(client, target).await?;
    let mut from = None;
    loop {
        let tx = client
            .transaction()
            .await
            .map_err(|e| failed(target, "starting a migration", &e))?;
        tx.query_one("SELECT id FROM meterd_schema_lock WHERE id = 1 FOR UPDATE", &[])
            .await
            .map_err(|e| failed(target, "locking meterd_schema_lock", &e))?;
        let current: i64 = tx
            .query_one("SELECT coalesce(max(version), 0) FROM meterd_schema", &[])
            .await
            .map_err(|e| failed(target, "reading meterd_schema", &e))?
            .get(0);
        let current = u64::try_from(current).unwrap_or(0);
        let from = *from.get_or_insert(current);
        if current > SCHEMA_VERSION {
            return Err(StoreError::SchemaVersion {
                path: target.to_owned(),
                found: current,
                supported: SCHEMA_VERSION,
            });
        }
        if current == SCHEMA_VERSION {
            tx.commit()
                .await
                .map_err(|e| failed(target, "ending the version check", &e))?;
            return Ok(Migrated { from, to: current });
        }
        let next = MIGRATIONS[current as usize];
        if current == from {
            if from == 0 {
                tracing::info!("store {target}: creating the schema (version {SCHEMA_VERSION})");
            } else {
                tracing::info!(
                    "store {target}: upgrading the schema from version {from} to {SCHEMA_VERSION}; \
                     back up the database first (pg_dump) if this was not planned"
                );
            }
        }
        tx.batch_execute(next.sql)
            .await
            .map_err(|e| failed(target, &format!("applying migration {}", next.name), &e))?;
        tx.execute(
            "INSERT INTO meterd_schema (version, applied_at, meterd_version) VALUES ($1, now(), $2)",
            &[&(next.version as i64), &env!("CARGO_PKG_VERSION")],
        )
        .await
        .map_err(|e| failed(target, "recording the schema version", &e))?;
        tx.commit()
            .await
            .map_err(|e| failed(target, &format!("committing migration {}", next.name), &e))?;
        tracing::info!(
            "store {target}: schema version {} ({}) applied",
            next.version,
            next.name
        );
    }
}

/// The version table and its lock row. Two instances creating them at the same moment may
/// collide in PostgreSQL's catalog (`CREATE TABLE IF NOT EXISTS` is not atomic against
/// itself): the loser tries again and finds them.
async fn bootstrap(client: &Client, target: &str) -> Result<(), StoreError> {
    let mut attempt = 0;
    loop {
        match client.batch_execute(BOOTSTRAP).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 5 && is_concurrent_create(&e) => attempt += 1,
            Err(e) => return Err(failed(target, "creating meterd_schema", &e)),
        }
    }
}

/// Another session created the same object at the same time (the table, or its row type:
/// `duplicate_object`, seen when several instances start together).
pub(crate) fn is_concurrent_create(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::DUPLICATE_TABLE || *c == SqlState::DUPLICATE_OBJECT
    })
}

fn failed(target: &str, doing: &str, e: &tokio_postgres::Error) -> StoreError {
    super::connect::query_error(target, doing, e)
}

#[cfg(test)]
mod frozen {
    use sha2::{Digest, Sha256};

    /// SHA-256 of every released migration file. A released file never changes (databases
    /// record only the version number, so a changed file would leave them different from a
    /// fresh one): a schema change is a new file, `0002_….sql`, appended to [`super::MIGRATIONS`],
    /// and its digest added here when it ships.
    const RELEASED: &[(u64, &str)] = &[
        (1, "8d2c711fadf5b7bb34f6511335d1ad1dc1cd680a7962124f11bf089c6dfbc4a7"),
        (2, "c62491ff635054ef1ed2f4e65d5bfc8a30e4f93d211b3f9c14bebde8d44b3e1f"),
        (3, "9b8e61bddd4cdbeffa1a5036b49e20ff21462c46fcfdbdb56557b4905a5cdb1d"),
        (4, "a9b28f1881a28457acd5014260adbad3d66c15ec8657ea7004fcf7e4bb3166ef"),
        (5, "922072678edcc7b9601121f8933674b3c81b80869f3b184c805d9b89eda9a221"),
    ];

    #[test]
    fn released_migrations_are_unchanged_and_numbered_in_order() {
        for (i, m) in super::MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as u64 + 1, "{}", m.name);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)), "{}", m.name);
        }
        for (version, digest) in RELEASED {
            let m = &super::MIGRATIONS[(*version - 1) as usize];
            assert_eq!(
                hex::encode(Sha256::digest(m.sql.as_bytes())),
                *digest,
                "migration {} changed after its release: add a new migration instead",
                m.name
            );
        }
    }
}
