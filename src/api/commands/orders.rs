//! `meterd orders list [--route R] [--status open|completed|cancelled|all] [--json|--csv]`,
//! `meterd orders complete ID --outcome TEXT`: re-read service orders.

use clap::{Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

use super::Ctx;
use super::output::print_json;
use crate::model::OrderStatus;
use crate::review::{self, reports};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusArg {
    Open,
    Completed,
    Cancelled,
    All,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrdersCmd {
    /// Service orders per route in walk order (a printable list for the reader).
    List {
        #[arg(long)]
        route: Option<String>,
        #[arg(long, value_enum, default_value_t = StatusArg::Open)]
        status: StatusArg,
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        #[arg(long)]
        csv: bool,
    },
    /// Mark an order done: the reader went back.
    Complete {
        id: u64,
        /// What the visit found.
        #[arg(long)]
        outcome: String,
    },
}

pub fn run(ctx: &Ctx<'_>, cmd: OrdersCmd) -> anyhow::Result<()> {
    let store = ctx.store;
    match cmd {
        OrdersCmd::List {
            route,
            status,
            json,
            csv,
        } => {
            let status = match status {
                StatusArg::Open => Some(OrderStatus::Open),
                StatusArg::Completed => Some(OrderStatus::Completed),
                StatusArg::Cancelled => Some(OrderStatus::Cancelled),
                StatusArg::All => None,
            };
            let orders = reports::service_orders(store, route.as_deref(), status)?;
            if json {
                return print_json(ctx, &orders);
            }
            if csv {
                let mut w = csv::Writer::from_writer(Vec::new());
                w.write_record([
                    "id",
                    "route",
                    "sequence",
                    "meter_id",
                    "address",
                    "reason",
                    "due",
                    "status",
                    "created_by",
                    "outcome",
                ])?;
                for o in &orders {
                    w.write_record([
                        o.id.to_string(),
                        o.route.clone(),
                        o.sequence.to_string(),
                        o.meter_id.clone(),
                        o.address.clone(),
                        o.reason.clone(),
                        o.due.to_string(),
                        o.status.as_str().to_owned(),
                        o.created_by.clone(),
                        o.outcome.clone(),
                    ])?;
                }
                let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))?;
                use std::io::Write as _;
                ctx.out().write_all(&bytes)?;
                return Ok(());
            }
            let mut route_now: Option<&str> = None;
            for o in &orders {
                if route_now != Some(o.route.as_str()) {
                    say!(ctx, "Route {}", o.route);
                    say!(
                        ctx,
                        "  {:>5} {:>5}  {:<12} {:<24} {:<10} {:<10} reason",
                        "seq",
                        "order",
                        "meter",
                        "address",
                        "due",
                        "status"
                    );
                    route_now = Some(o.route.as_str());
                }
                say!(
                    ctx,
                    "  {:>5} {:>5}  {:<12} {:<24} {:<10} {:<10} {}{}",
                    o.sequence,
                    o.id,
                    o.meter_id,
                    o.address,
                    o.due.to_string(),
                    o.status.as_str(),
                    o.reason,
                    if o.outcome.is_empty() {
                        String::new()
                    } else {
                        format!(" → {}", o.outcome)
                    }
                );
            }
            say!(ctx, "{} service orders", orders.len());
            Ok(())
        }
        OrdersCmd::Complete { id, outcome } => {
            // The caller closes it: their OS user (or the user an admin acts for).
            let clerk = ctx.clerk();
            let o = review::complete_order(store, id, &clerk, &outcome, jiff::Timestamp::now())?;
            say!(
                ctx,
                "service order {} for meter {} completed by {}",
                o.id,
                o.meter_id,
                clerk
            );
            Ok(())
        }
    }
}
