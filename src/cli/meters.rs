//! `meterd meters import FILE [--layout csv|sensus-autoread]`, `meterd meters list`.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use super::Env;
use super::output::print_json;
use crate::ingest::files::{self, RouteFileOptions};
use crate::store::Store;

#[derive(Debug, Subcommand)]
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Layout {
    /// CSV with a header line.
    Csv,
    /// Sensus AutoRead 155-character route import records.
    SensusAutoread,
}

pub fn run(env: &Env, cmd: MetersCmd) -> anyhow::Result<()> {
    match cmd {
        MetersCmd::Import { file, layout, route, dials, decimals } => {
            // Check the whole file before opening the store: a bad file changes nothing.
            let meters = match layout {
                Layout::Csv => files::parse_meters_csv(&file)?,
                Layout::SensusAutoread => files::parse_sensus_route(&file, &RouteFileOptions { route, dials, decimals })?,
            };
            let store = env.open_store()?;
            let r = files::store_meters(&store, &meters)?;
            say!(env, 
                "imported {} meters from {}: {} added, {} updated, {} unchanged",
                meters.len(),
                file.display(),
                r.added,
                r.updated,
                r.unchanged
            );
            Ok(())
        }
        MetersCmd::List { json } => {
            let store = env.open_store()?;
            let meters = store.begin_read()?.meters()?;
            if json {
                return print_json(env, &meters);
            }
            for m in &meters {
                say!(env, 
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
