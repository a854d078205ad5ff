//! `meterd meters import FILE [--layout csv|sensus-autoread]`, `meterd meters list`.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

use super::Ctx;
use super::output::print_json;
use crate::ingest::files::{self, RouteFileOptions};

#[derive(Debug, Clone, PartialEq, Eq, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetersCmd {
    /// Import meters (insert new ones, update changed ones) in one transaction.
    ///
    /// CSV header: meter_id,account,route,sequence,service,unit,dials,decimals,multiplier,status,address[,notes]
    Import {
        file: PathBuf,
        /// File layout.
        #[arg(long, value_enum, default_value_t = Layout::Csv)]
        layout: Layout,
        /// Route of the file's meters (route layouts only; default: the file name).
        #[arg(long)]
        route: Option<String>,
        /// Register dials (route layouts only; the layout does not carry them).
        #[arg(long, default_value_t = 8)]
        dials: u8,
        /// Register decimals (route layouts only).
        #[arg(long, default_value_t = 0)]
        decimals: u8,
    },
    /// List meters.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Record a meter exchange: reads after --at count from the new meter's install read.
    Change {
        meter: String,
        /// When the new meter was installed (RFC 3339).
        #[arg(long)]
        at: jiff::Timestamp,
        /// The new meter's register when installed.
        #[arg(long)]
        install_read: String,
        /// The old meter's last register value, if read at removal (its usage is billed too).
        #[arg(long)]
        removal_read: Option<String>,
        #[arg(long, default_value = "")]
        old_serial: String,
        #[arg(long, default_value = "")]
        new_serial: String,
        /// The new meter's dial count (default: unchanged).
        #[arg(long)]
        dials: Option<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// CSV with a header line.
    Csv,
    /// Sensus AutoRead 155-character route import records.
    SensusAutoread,
}

pub fn run(ctx: &Ctx<'_>, cmd: MetersCmd) -> anyhow::Result<()> {
    match cmd {
        MetersCmd::Import {
            file,
            layout,
            route,
            dials,
            decimals,
        } => {
            // The client streamed the file; `file` only names it in messages. The whole file is
            // checked before anything is stored (a bad file changes nothing), then stored in one
            // transaction as it is read again: never held.
            let upload = ctx.upload()?;
            let name = file.display().to_string();
            let layout = match layout {
                Layout::Csv => files::MeterLayout::Csv,
                Layout::SensusAutoread => files::MeterLayout::SensusRoute(RouteFileOptions { route, dials, decimals }),
            };
            let (count, r) = files::import_meters(ctx.store, &name, &upload.file, &layout)?;
            say!(
                ctx,
                "imported {} meters from {}: {} added, {} updated, {} unchanged",
                count,
                file.display(),
                r.added,
                r.updated,
                r.unchanged
            );
            Ok(())
        }
        MetersCmd::Change {
            meter,
            at,
            install_read,
            removal_read,
            old_serial,
            new_serial,
            dials,
        } => {
            let q = |s: &str| {
                crate::model::Quantity::parse(s).map_err(|e| anyhow::anyhow!("{}: {e}", crate::model::limits::quote(s)))
            };
            let store = ctx.store;
            let old = store
                .begin_read()?
                .meter(&meter)?
                .ok_or_else(|| anyhow::anyhow!("meter {meter} is not in the store"))?;
            let change = crate::model::MeterChange {
                meter_id: meter.clone(),
                at: crate::model::to_store_precision(at),
                old_serial,
                new_serial,
                old_dials: old.dials,
                new_dials: dials.unwrap_or(old.dials),
                install_read: q(&install_read)?,
                removal_read: removal_read.as_deref().map(q).transpose()?,
            };
            crate::review::record_meter_change(store, &change)?;
            say!(
                ctx,
                "meter {meter}: exchange at {} recorded (install read {})",
                change.at,
                change.install_read
            );
            Ok(())
        }
        MetersCmd::List { json } => {
            let store = ctx.store;
            let meters = store.begin_read()?.meters()?;
            if json {
                return print_json(ctx, &meters);
            }
            for m in &meters {
                say!(
                    ctx,
                    "{:<12} {:<10} {:<6} {:>4} {:<8} {:>2}/{} dials {:<8} {}",
                    m.meter_id,
                    m.account,
                    m.route,
                    m.sequence,
                    m.service.as_str(),
                    m.dials,
                    m.decimals,
                    m.status.as_str(),
                    m.address
                );
            }
            Ok(())
        }
    }
}
