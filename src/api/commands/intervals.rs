//! `meterd intervals import FILE [--format nem12|cmep]`, `meterd intervals list --meter ID`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::Ctx;
use super::output::print_json;
use crate::ingest::interval_files::{self, IntervalFormat};
use crate::ingest::intervals::IntervalReport;

/// Days per transaction of an interval import.
pub const DEFAULT_DAY_CHUNK: u64 = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatArg {
    Nem12,
    Cmep,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalsCmd {
    /// Import an interval data file (AEMO NEM12, or CMEP MEPMD01 interval records) and run
    /// interval VEE. The whole file is checked first (nothing of a bad file is stored); then
    /// days are committed in chunks, a line `committed N days` after each durable commit.
    /// Re-importing is idempotent.
    Import {
        file: PathBuf,
        /// The file's format (detected from its first record when absent).
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
        /// Print the final report as JSON (progress lines then go to stderr).
        #[arg(long)]
        json: bool,
        /// Meter-channel-days per transaction.
        #[arg(long, default_value_t = DEFAULT_DAY_CHUNK, value_parser = clap::value_parser!(u64).range(1..))]
        chunk: u64,
    },
    /// List a meter's interval days (every channel), by channel and date.
    List {
        #[arg(long, value_name = "ID")]
        meter: String,
        /// First day (YYYY-MM-DD), included.
        #[arg(long, value_name = "DAY")]
        from: Option<Date>,
        /// Last day (YYYY-MM-DD), included.
        #[arg(long, value_name = "DAY")]
        to: Option<Date>,
        #[arg(long)]
        json: bool,
    },
}

impl IntervalsCmd {
    pub fn word(&self) -> &'static str {
        match self {
            IntervalsCmd::Import { .. } => "import",
            IntervalsCmd::List { .. } => "list",
        }
    }
}

pub fn run(ctx: &Ctx<'_>, cmd: IntervalsCmd) -> anyhow::Result<()> {
    match cmd {
        IntervalsCmd::Import {
            file,
            format,
            json,
            chunk,
        } => {
            let upload = ctx.upload()?;
            let name = file.display().to_string();
            let format = format.map(|f| match f {
                FormatArg::Nem12 => IntervalFormat::Nem12,
                FormatArg::Cmep => IntervalFormat::Cmep,
            });
            let mut progress = |r: &IntervalReport| {
                let mut sink = if json { ctx.err() } else { ctx.out() };
                let _ = writeln!(sink, "committed {} days", r.days);
                let _ = sink.flush();
            };
            let report = interval_files::import(
                ctx.store,
                &ctx.config.intervals,
                &name,
                &upload.file,
                format,
                chunk as usize,
                &mut progress,
            )?;
            if json {
                return print_json(ctx, &report);
            }
            say!(
                ctx,
                "imported {} interval days ({} values) from {}: {} stored ({} validated, {} estimated, {} held for \
                 review), {} unchanged",
                report.days,
                report.values,
                file.display(),
                report.stored,
                report.validated,
                report.estimated,
                report.flagged,
                report.unchanged
            );
            if !report.by_rule.is_empty() {
                let rules: Vec<String> = report.by_rule.iter().map(|(r, n)| format!("{r} {n}")).collect();
                say!(ctx, "flagged by rule: {}", rules.join(", "));
            }
            Ok(())
        }
        IntervalsCmd::List { meter, from, to, json } => {
            let txn = ctx.store.begin_read()?;
            let from = from.unwrap_or(Date::MIN);
            let to = to.and_then(|d| d.tomorrow().ok()).unwrap_or(Date::MAX);
            let days = txn.interval_days(&meter, from, to)?;
            if json {
                let views: Vec<_> = days.iter().map(|d| d.view()).collect();
                return print_json(ctx, &views);
            }
            if days.is_empty() {
                say!(ctx, "no interval days of meter {meter}");
                return Ok(());
            }
            say!(
                ctx,
                "{:<10} {:<8} {:>4} {:>6} {:>12} {:<10} flags",
                "date",
                "channel",
                "min",
                "values",
                "total",
                "status"
            );
            for d in &days {
                let flags: Vec<&str> = d.flags.iter().map(|f| f.rule.as_str()).collect();
                say!(
                    ctx,
                    "{:<10} {:<8} {:>4} {:>6} {:>12} {:<10} {}",
                    d.date.to_string(),
                    d.channel,
                    d.interval_minutes,
                    d.values.len(),
                    d.total().to_string(),
                    d.status.as_str(),
                    flags.join(",")
                );
            }
            Ok(())
        }
    }
}
