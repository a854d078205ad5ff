//! Handheld cradles: which recorder reads a route, load history, recorder watermarks, skips.

use crate::model::{RouteLoad, RouteSkip};
use crate::store::Result;

pub trait CradleQueries {
    /// Route → device serial assignments, by route.
    fn route_assignments(&self) -> Result<Vec<(String, String)>>;
    /// Load history (every time a route went into a recorder), by route then load time.
    fn route_loads(&self) -> Result<Vec<RouteLoad>>;
    /// Highest recorder read sequence of `serial` committed in the store (an unbroken run:
    /// everything the recorder held up to it is stored or quarantined).
    fn cradle_watermark(&self, serial: &str) -> Result<Option<u32>>;
    /// Skipped meters (no reading, or a skip code) recorded on `route`, by meter.
    fn route_skips(&self, route: &str) -> Result<Vec<RouteSkip>>;
}

pub trait CradleWrites: CradleQueries {
    /// Assign a route to a recorder (`None` removes the assignment).
    fn assign_route(&mut self, route: &str, serial: Option<&str>) -> Result<()>;
    /// Insert or replace a load history entry (keyed by route and load time).
    fn put_route_load(&mut self, load: &RouteLoad) -> Result<()>;
    /// Forget a load that never happened (reserved, then refused or cut off).
    fn remove_route_load(&mut self, load: &RouteLoad) -> Result<()>;
    /// Store a recorder's watermark as given. Callers go through
    /// [`crate::store::Rules::set_cradle_watermark`], which never lowers it.
    fn put_cradle_watermark(&mut self, serial: &str, seq: u32) -> Result<()>;
    /// Record a skipped meter (idempotent per recorder serial and sequence).
    fn put_route_skip(&mut self, skip: &RouteSkip) -> Result<()>;
}
