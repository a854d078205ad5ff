//! `meterd store check [--json]`, `meterd store backup DEST [--force]` (admins). `store
//! restore` runs in the CLI only (the daemon must be stopped: src/cli/store.rs).

use std::path::PathBuf;

use clap::Subcommand;
use serde::{Deserialize, Serialize};

use super::output::print_json;
use super::{Console, Ctx};
use crate::store::CheckReport;

#[derive(Debug, Clone, PartialEq, Eq, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreCmd {
    /// Walk every table and index of the store and report what is damaged, changing nothing
    /// (exit 1 when something is). Through the running daemon: a snapshot of the live store;
    /// on a stopped store: also redb's page checksums.
    Check {
        #[arg(long)]
        json: bool,
    },
    /// Write a consistent copy of the store to DEST (a complete store file; the daemon keeps
    /// running and writing meanwhile). DEST is written by you, as you.
    Backup {
        dest: PathBuf,
        /// Replace DEST if it exists.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(ctx: &Ctx<'_>, cmd: StoreCmd) -> anyhow::Result<()> {
    match cmd {
        StoreCmd::Check { json } => {
            let report = ctx.store.check()?;
            print_report(ctx, &report, json)
        }
        StoreCmd::Backup { dest, .. } => {
            if crate::store::StoreTarget::from_config(ctx.config, std::path::Path::new("")).is_server() {
                anyhow::bail!("{}", crate::store::open::SERVER_BACKUP);
            }
            let bytes = ctx.store.backup()?;
            ctx.deliver(&bytes)?;
            note!(
                ctx,
                "backup written to {} ({} bytes); test it with `meterd store check` and `meterd audit verify` on a copy",
                dest.display(),
                bytes.len()
            );
            Ok(())
        }
    }
}

/// Prints a check report; an error when it found damage (exit 1).
pub fn print_report(console: &(impl Console + ?Sized), report: &CheckReport, json: bool) -> anyhow::Result<()> {
    if json {
        print_json(console, report)?;
    } else {
        for p in &report.problems {
            say!(console, "{}: {}", p.table, p.what);
        }
    }
    if !report.ok() {
        anyhow::bail!(
            "store {} is DAMAGED: {} problem(s); restore the latest good backup (`meterd store restore`, docs/operating.md \"Backups\")",
            report.store,
            report.problems.len()
        );
    }
    if !json {
        let rows: u64 = report.tables.iter().map(|t| t.rows).sum();
        say!(
            console,
            "store {} intact: {} tables, {rows} rows, indexes agree{}",
            report.store,
            report.tables.len(),
            if report.engine_checked {
                ", page checksums verified"
            } else {
                " (page checksums are verified on a stopped store only)"
            }
        );
    }
    Ok(())
}
