//! `meterd audit verify [--json]`, `meterd audit show --meter ID | --read ID [--json]`.

use clap::Subcommand;
use serde::{Deserialize, Serialize};

use super::Ctx;
use super::output::print_json;
use crate::review;

#[derive(Debug, Clone, PartialEq, Eq, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditCmd {
    /// Walk the hash-chained audit trail; fails (exit 1) naming each changed, removed or
    /// added entry and each read changed without an entry.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// The history of changes of a meter's reads (or of one read).
    Show {
        #[arg(long, value_name = "ID", required_unless_present = "read")]
        meter: Option<String>,
        #[arg(long, value_name = "READ_ID")]
        read: Option<u64>,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Ctx<'_>, cmd: AuditCmd) -> anyhow::Result<()> {
    let store = ctx.store;
    match cmd {
        AuditCmd::Verify { json } => {
            let report = review::verify(store)?;
            if json {
                print_json(ctx, &report)?;
            } else {
                for p in &report.problems {
                    say!(ctx, "entry {}: {}", p.entry, p.what);
                }
            }
            if !report.ok() {
                anyhow::bail!(
                    "audit trail is NOT intact: {} problem(s) in {} entries",
                    report.problems.len(),
                    report.recorded
                );
            }
            if !json {
                say!(
                    ctx,
                    "audit trail intact: {} entries, hash chain verified",
                    report.recorded
                );
            }
            Ok(())
        }
        AuditCmd::Show { meter, read, json } => {
            let txn = store.begin_read()?;
            let entries = match (read, &meter) {
                (Some(id), _) => txn.read_audit(id)?,
                (None, Some(m)) => txn.meter_audit(m)?,
                (None, None) => anyhow::bail!("give --meter ID or --read ID"),
            };
            if json {
                return print_json(ctx, &entries);
            }
            say!(
                ctx,
                "{:>5}  {:<20} {:<10} {:<10} {:>8}  {:>12} {:>12}  {:<22} reason",
                "entry",
                "at",
                "clerk",
                "action",
                "read",
                "old value",
                "new value",
                "status"
            );
            for e in &entries {
                // An interval day's entry: its channel and date where a read's id goes, the
                // day totals as values, and the intervals changed after the reason.
                let (read, reason) = match &e.day {
                    Some(d) => (
                        format!("{} {}", d.channel, d.date),
                        format!("{} ({} interval(s) changed)", e.reason, d.changes.len()),
                    ),
                    None => (e.read_id.to_string(), e.reason.clone()),
                };
                say!(
                    ctx,
                    "{:>5}  {:<20} {:<10} {:<10} {:>8}  {:>12} {:>12}  {:<22} {}",
                    e.seq,
                    e.at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
                    e.clerk,
                    e.action.as_str(),
                    read,
                    e.old_value.to_string(),
                    e.new_value.to_string(),
                    format!("{} → {}", e.old_status, e.new_status),
                    reason
                );
            }
            say!(ctx, "{} entries", entries.len());
            Ok(())
        }
    }
}
