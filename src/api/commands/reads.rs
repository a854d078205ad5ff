//! `meterd reads import FILE`, `meterd reads list [--json] [--meter ID]`.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use serde::{Deserialize, Serialize};

use super::Ctx;
use super::output::{print_json, print_reads_table, views};
use crate::ingest::AcceptReport;
use crate::ingest::files::{self, DEFAULT_CHUNK};

#[derive(Debug, Clone, PartialEq, Eq, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadsCmd {
    /// Import reads and run VEE. CSV header: meter_id,read_at,value,read_type,codes[,reader]
    /// (read_at RFC 3339, codes `;`-separated).
    ///
    /// The whole file is checked first; then reads are committed in chunks, and a line
    /// `committed N reads` is printed after each durable commit. Re-importing is idempotent.
    Import {
        file: PathBuf,
        /// Print the final report as JSON (progress lines then go to stderr).
        #[arg(long)]
        json: bool,
        /// Reads per transaction.
        #[arg(long, default_value_t = DEFAULT_CHUNK as u64, value_parser = clap::value_parser!(u64).range(1..))]
        chunk: u64,
    },
    /// List reads, by meter and time.
    List {
        #[arg(long)]
        json: bool,
        /// Only this meter's reads.
        #[arg(long, value_name = "ID")]
        meter: Option<String>,
    },
}

pub fn run(ctx: &Ctx<'_>, cmd: ReadsCmd) -> anyhow::Result<()> {
    match cmd {
        ReadsCmd::Import { file, json, chunk } => {
            let store = ctx.store;
            // The client opened the file (with its own rights) and streamed it; `file` only
            // names it in messages. Checked whole, then stored in chunks: never held.
            let upload = ctx.upload()?;
            let name = file.display().to_string();
            let mut progress = |r: &AcceptReport| {
                let line = format!("committed {} reads", r.imported + r.duplicates_skipped);
                // Progress is printed (and flushed) only after each durable commit: a caller may
                // rely on every counted read being stored. With --json it goes to stderr.
                let mut sink = if json { ctx.err() } else { ctx.out() };
                let _ = writeln!(sink, "{line}");
                let _ = sink.flush();
            };
            let report = files::import_reads(
                store,
                &ctx.config.vee,
                &name,
                &upload.file,
                &upload.scratch,
                chunk as usize,
                &mut progress,
            )?;
            if json {
                return print_json(ctx, &report);
            }
            say!(
                ctx,
                "imported {} reads from {}: {} validated, {} held for review, {} duplicates skipped",
                report.imported,
                file.display(),
                report.validated,
                report.flagged,
                report.duplicates_skipped
            );
            if !report.by_rule.is_empty() {
                let rules: Vec<String> = report.by_rule.iter().map(|(r, n)| format!("{r} {n}")).collect();
                say!(ctx, "flagged by rule: {}", rules.join(", "));
            }
            Ok(())
        }
        ReadsCmd::List { json, meter } => {
            let store = ctx.store;
            let txn = store.begin_read()?;
            let reads = match &meter {
                Some(id) => txn.meter_reads(id, jiff::Timestamp::MIN, jiff::Timestamp::MAX)?,
                None => txn.all_reads()?,
            };
            if json {
                print_json(ctx, &views(&reads))
            } else {
                print_reads_table(ctx, &reads)?;
                Ok(())
            }
        }
    }
}
