//! The server engine's entry point, called by [`super::open`] for a `[store] url`.

use std::path::Path;
use std::sync::Arc;

use super::{QuarantineLimits, Result, Store, StoreError};

/// Connects to the PostgreSQL database at `url` (multi-host URLs included), with the password
/// in `password_file`, TLS per `sslmode` checked against `ca_file`, a pool of `pool_size`
/// connections, and the quarantine `limits` applied by its write transactions.
pub fn postgres_open(
    url: &str,
    password_file: Option<&Path>,
    ca_file: Option<&Path>,
    sslmode: &str,
    pool_size: usize,
    limits: QuarantineLimits,
) -> Result<Arc<dyn Store>> {
    // The engine is built on its own branch (src/store/postgres/); it replaces this body.
    let _ = (url, password_file, ca_file, sslmode, pool_size, limits);
    Err(StoreError::Engine("the PostgreSQL engine is not built yet".into()))
}
