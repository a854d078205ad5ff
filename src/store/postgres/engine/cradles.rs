//! cradles on PostgreSQL (not written yet: every method answers an engine error).

use crate::model::{RouteLoad, RouteSkip};

use super::PgTxn;
use crate::store::{CradleQueries, CradleWrites, Result, StoreError};

fn unbuilt() -> StoreError {
    StoreError::Engine("not built yet on PostgreSQL".into())
}

impl CradleQueries for PgTxn<'_> {
    fn route_assignments(&self) -> Result<Vec<(String, String)>> {
        Err(unbuilt())
    }
    fn route_loads(&self) -> Result<Vec<RouteLoad>> {
        Err(unbuilt())
    }
    fn cradle_watermark(&self, _serial: &str) -> Result<Option<u32>> {
        Err(unbuilt())
    }
    fn route_skips(&self, _route: &str) -> Result<Vec<RouteSkip>> {
        Err(unbuilt())
    }
}

impl CradleWrites for PgTxn<'_> {
    fn assign_route(&mut self, _route: &str, _serial: Option<&str>) -> Result<()> {
        Err(unbuilt())
    }
    fn put_route_load(&mut self, _load: &RouteLoad) -> Result<()> {
        Err(unbuilt())
    }
    fn remove_route_load(&mut self, _load: &RouteLoad) -> Result<()> {
        Err(unbuilt())
    }
    fn put_cradle_watermark(&mut self, _serial: &str, _seq: u32) -> Result<()> {
        Err(unbuilt())
    }
    fn put_route_skip(&mut self, _skip: &RouteSkip) -> Result<()> {
        Err(unbuilt())
    }
}
