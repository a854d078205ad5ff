//! Route queries for clerks: the route list and the unread report.

use jiff::Timestamp;
use serde::Serialize;

use crate::model::{MeterStatus, RouteLoad};
use crate::store::ReadTxn;

/// One route as `meterd routes list --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct RouteInfo {
    pub route: String,
    /// Active meters on the route.
    pub meters: usize,
    /// The recorder the route is assigned to.
    pub assigned_to: Option<String>,
    /// Recorders holding the route now (loaded, not yet cleared).
    pub loaded_on: Vec<String>,
    pub last_loaded_at: Option<String>,
    pub last_cleared_at: Option<String>,
    pub loads: usize,
}

/// Every route of the store's meters (plus assigned routes without meters), by id.
pub fn list(txn: &dyn ReadTxn) -> crate::store::Result<Vec<RouteInfo>> {
    let meters = txn.meters()?;
    let assignments = txn.route_assignments()?;
    let loads = txn.route_loads()?;
    let mut ids: Vec<String> = meters
        .iter()
        .map(|m| m.route.clone())
        .chain(assignments.iter().map(|(r, _)| r.clone()))
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids
        .into_iter()
        .map(|id| {
            let mine: Vec<&RouteLoad> = loads.iter().filter(|l| l.route == id).collect();
            RouteInfo {
                meters: meters
                    .iter()
                    .filter(|m| m.route == id && m.status == MeterStatus::Active)
                    .count(),
                assigned_to: assignments.iter().find(|(r, _)| *r == id).map(|(_, s)| s.clone()),
                loaded_on: mine
                    .iter()
                    .filter(|l| l.is_loaded())
                    .map(|l| l.serial.clone())
                    .collect(),
                last_loaded_at: mine.iter().map(|l| l.loaded_at).max().map(|t| t.to_string()),
                last_cleared_at: mine.iter().filter_map(|l| l.cleared_at).max().map(|t| t.to_string()),
                loads: mine.len(),
                route: id,
            }
        })
        .collect())
}

/// The read cycle the unread report looks at.
#[derive(Debug, Clone, Serialize)]
pub struct Cycle {
    pub serial: String,
    pub loaded_at: String,
    /// When the reads came back (the recorder was cleared); `null` while the route is out.
    pub cleared_at: Option<String>,
}

/// A meter without a read in the cycle and without a skip code.
#[derive(Debug, Clone, Serialize)]
pub struct UnreadMeter {
    pub meter_id: String,
    pub sequence: u32,
    pub account: String,
    pub address: String,
}

/// `meterd routes unread ROUTE --json`.
#[derive(Debug, Clone, Serialize)]
pub struct UnreadReport {
    pub route: String,
    pub cycle: Cycle,
    pub meters: usize,
    pub read: usize,
    pub skipped: usize,
    pub unread: Vec<UnreadMeter>,
}

/// The unread report. The **current cycle** of a route is its latest load whose reads came
/// back (the recorder was cleared after the unload), from the load to the clear; when no load
/// came back yet, the latest load up to now. A meter counts as read when a read of it (any
/// source) was received in that window, as skipped when a skip code for it was. Reception time
/// is used, not the recorder's clock: a reader's clock may be off, the store's is not.
pub fn unread(txn: &dyn ReadTxn, route: &str, now: Timestamp) -> anyhow::Result<UnreadReport> {
    let loads: Vec<RouteLoad> = txn.route_loads()?.into_iter().filter(|l| l.route == route).collect();
    let load = loads
        .iter()
        .filter(|l| l.cleared_at.is_some())
        .max_by_key(|l| l.loaded_at)
        .or_else(|| loads.iter().max_by_key(|l| l.loaded_at))
        .ok_or_else(|| anyhow::anyhow!("route {route} was never loaded into a recorder"))?;
    let from = load.loaded_at;
    let to = load.cleared_at.unwrap_or(now);
    let in_cycle = |t: Timestamp| t >= from && t <= to;
    let mut meters: Vec<_> = txn
        .meters()?
        .into_iter()
        .filter(|m| m.route == route && m.status == MeterStatus::Active)
        .collect();
    meters.sort_by(|a, b| a.sequence.cmp(&b.sequence).then_with(|| a.meter_id.cmp(&b.meter_id)));
    let skips = txn.route_skips(route)?;
    let (mut read, mut skipped, mut out) = (0, 0, Vec::new());
    for m in &meters {
        if txn
            .meter_reads(&m.meter_id, Timestamp::MIN, Timestamp::MAX)?
            .iter()
            .any(|r| in_cycle(r.received_at))
        {
            read += 1;
        } else if skips
            .iter()
            .any(|s| s.meter_id == m.meter_id && s.code.is_some() && in_cycle(s.received_at))
        {
            skipped += 1;
        } else {
            out.push(UnreadMeter {
                meter_id: m.meter_id.clone(),
                sequence: m.sequence,
                account: m.account.clone(),
                address: m.address.clone(),
            });
        }
    }
    Ok(UnreadReport {
        route: route.to_owned(),
        cycle: Cycle {
            serial: load.serial.clone(),
            loaded_at: load.loaded_at.to_string(),
            cleared_at: load.cleared_at.map(|t| t.to_string()),
        },
        meters: meters.len(),
        read,
        skipped,
        unread: out,
    })
}
