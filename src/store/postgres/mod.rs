//! The PostgreSQL store engine (issue 14): several meterd instances on one database, a
//! standby to fail over to. This module holds its foundations; one job per file:
//!
//! | file | job |
//! |---|---|
//! | `config.rs` | `[store]`: URL, password file, TLS, pool size; `METERD_STORE_URL` |
//! | `connect.rs` | the pool, TLS, the server version check, the sync [`Bridge`], error texts |
//! | `migrate.rs` + `migrations/` | versioned schema, `meterd_schema`, refusal of a newer one |
//! | `partitions.rs` | month partitions of reads and interval reads, created on demand |

pub mod config;
pub mod connect;
pub mod engine;
pub mod migrate;
pub mod partitions;

pub use config::{SslMode, StoreConfig, URL_ENV, redact_url};
pub use connect::{Bridge, MIN_SERVER_VERSION, PgEngine, Probe, error_text, query_error};
pub use engine::PgStore;
pub use migrate::{MIGRATIONS, Migrated, Migration, SCHEMA_VERSION, migrate};
pub use partitions::{Month, Partitioned, Partitions, ensure_month_partitions};
