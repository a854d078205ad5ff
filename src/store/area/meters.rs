//! Meters: the meter register (account, route, service, dials).

use crate::model::Meter;
use crate::store::Result;

pub trait MeterQueries {
    fn meter(&self, meter_id: &str) -> Result<Option<Meter>>;
    /// All meters, ordered by meter id.
    fn meters(&self) -> Result<Vec<Meter>>;
    /// Many meters at once (`None` for unknown ids), in the order asked.
    fn meters_by_id(&self, ids: &[&str]) -> Result<Vec<Option<Meter>>>;
}

pub trait MeterWrites: MeterQueries {
    /// Insert or replace a meter.
    fn put_meter(&mut self, meter: &Meter) -> Result<()>;
    /// Locks these meters against writers in other transactions until this one ends, so VEE
    /// of a meter is serialised across meterd instances sharing one database (no instance
    /// validates against a history another is changing). Ids are locked in sorted order so two
    /// transactions never deadlock; unknown ids are skipped. An engine with a single writer
    /// (redb) has nothing to do.
    fn lock_meters(&mut self, ids: &[&str]) -> Result<()>;
}
