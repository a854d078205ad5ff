//! `meterd routes list [--json]`, `meterd routes assign ROUTE --device SERIAL`,
//! `meterd routes unassign ROUTE`, `meterd routes unread ROUTE [--json]`.

use clap::Subcommand;
use serde::{Deserialize, Serialize};

use super::Ctx;
use super::output::print_json;
use crate::ingest::cradle::routes;

#[derive(Debug, Clone, PartialEq, Eq, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutesCmd {
    /// List routes: meters, assigned recorder, recorders holding it, last load and clear.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Assign a route to a recorder: it is loaded whenever that recorder docks.
    Assign {
        route: String,
        /// Recorder serial number.
        #[arg(long, value_name = "SERIAL")]
        device: String,
    },
    /// Remove a route's assignment (it goes back to the pool of unassigned routes).
    Unassign { route: String },
    /// Meters of the route's current cycle without a read and without a skip code.
    ///
    /// The current cycle is the route's latest load whose reads came back (the recorder was
    /// cleared), from the load to the clear; while no load came back, the latest load up to now.
    /// A meter is read when a read of it was received in the cycle, skipped when a skip code was.
    Unread {
        route: String,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Ctx<'_>, cmd: RoutesCmd) -> anyhow::Result<()> {
    let store = ctx.store;
    match cmd {
        RoutesCmd::List { json } => {
            let list = routes::list(store.begin_read()?.as_ref())?;
            if json {
                return print_json(ctx, &list);
            }
            say!(
                ctx,
                "{:<10} {:>6}  {:<14} {:<14} {:<27} last cleared",
                "route",
                "meters",
                "assigned to",
                "loaded on",
                "last loaded"
            );
            for r in &list {
                say!(
                    ctx,
                    "{:<10} {:>6}  {:<14} {:<14} {:<27} {}",
                    r.route,
                    r.meters,
                    r.assigned_to.as_deref().unwrap_or("-"),
                    if r.loaded_on.is_empty() {
                        "-".to_owned()
                    } else {
                        r.loaded_on.join(",")
                    },
                    r.last_loaded_at.as_deref().unwrap_or("-"),
                    r.last_cleared_at.as_deref().unwrap_or("-")
                );
            }
            Ok(())
        }
        RoutesCmd::Assign { route, device } => {
            let device = device.trim();
            crate::store::write_within(store, crate::store::INTERACTIVE_DEADLINE, |txn| -> anyhow::Result<()> {
                let known = txn.meters()?.iter().any(|m| m.route == route);
                if !known {
                    anyhow::bail!("route {route} has no meters in the store; import its meters first");
                }
                if !crate::ingest::cradle::convert::route_id_fits(&route) {
                    anyhow::bail!(
                        "route id {} does not fit a recorder (1-10 printable characters)",
                        crate::model::limits::quote(&route)
                    );
                }
                if device.is_empty() || device.len() > 16 {
                    anyhow::bail!("--device must be a recorder serial of 1-16 characters");
                }
                txn.assign_route(&route, Some(device))?;
                Ok(())
            })?;
            say!(
                ctx,
                "route {route} assigned to recorder {device}; it is loaded when {device} docks"
            );
            Ok(())
        }
        RoutesCmd::Unassign { route } => {
            crate::store::write_within(store, crate::store::INTERACTIVE_DEADLINE, |txn| -> anyhow::Result<()> {
                if !txn.route_assignments()?.iter().any(|(r, _)| *r == route) {
                    anyhow::bail!("route {route} is not assigned");
                }
                txn.assign_route(&route, None)?;
                Ok(())
            })?;
            say!(ctx, "route {route} unassigned");
            Ok(())
        }
        RoutesCmd::Unread { route, json } => {
            let report = routes::unread(store.begin_read()?.as_ref(), &route, jiff::Timestamp::now())?;
            if json {
                return print_json(ctx, &report);
            }
            say!(
                ctx,
                "route {}: cycle loaded {} on {}, {}; {} meters: {} read, {} skipped, {} unread",
                report.route,
                report.cycle.loaded_at,
                report.cycle.serial,
                report
                    .cycle
                    .cleared_at
                    .as_deref()
                    .map(|c| format!("back {c}"))
                    .unwrap_or_else(|| "still out".into()),
                report.meters,
                report.read,
                report.skipped,
                report.unread.len()
            );
            for m in &report.unread {
                say!(
                    ctx,
                    "  {:>6} {:<14} {:<16} {}",
                    m.sequence,
                    m.meter_id,
                    m.account,
                    m.address
                );
            }
            Ok(())
        }
    }
}
