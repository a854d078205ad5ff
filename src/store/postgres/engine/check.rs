//! `meterd store check` on PostgreSQL.

use super::PgStore;
use crate::store::Result;
use crate::store::check::CheckReport;

pub(super) fn check(_store: &PgStore) -> Result<CheckReport> {
    Err(crate::store::StoreError::Engine("not built yet on PostgreSQL".into()))
}
