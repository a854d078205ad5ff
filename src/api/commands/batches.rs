//! `meterd batches next [--json]`, `meterd batches ack ID`, `meterd batches list`,
//! `meterd batches export --format F --out FILE` (for CIS that import files).

use clap::Subcommand;
use serde::{Deserialize, Serialize};

use super::Ctx;
use super::output::{ReadView, print_json, views};
use crate::billing::interval_render::{self, IntervalExport, RenderContext};
use crate::billing::{self, AckOutcome, DEFAULT_CLIENT, DEFAULT_MAX_READS};
use crate::model::interval::DayClock;

fn interval_render_ctx<'a>(ctx: &'a Ctx<'_>, clock: &'a DayClock) -> RenderContext<'a> {
    RenderContext {
        clock,
        tou: ctx.config.tou.as_ref(),
        holidays: &ctx.config.intervals.holidays,
    }
}

/// Which kind of batch: register reads or interval days (each kind has its own batches).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchKind {
    #[default]
    Reads,
    Intervals,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchesCmd {
    /// The open batch, or a new one of validated reads not billed yet. Prints an object with
    /// `id` and `reads` (`id` null and no reads when there is nothing to bill). Asking again
    /// before ack returns the same batch.
    Next {
        #[arg(long)]
        json: bool,
        /// Reads (default) or interval days.
        #[arg(long, value_enum, default_value_t)]
        #[serde(default)]
        kind: BatchKind,
        /// Most reads in a new batch.
        #[arg(long, default_value_t = DEFAULT_MAX_READS as u64, value_parser = clap::value_parser!(u64).range(1..))]
        max: u64,
    },
    /// Acknowledge a batch: billing has it; its reads become exported. Idempotent.
    Ack { id: u64 },
    /// Write the open batch of a file client (or a new one) to FILE in a billing format.
    /// Writing it again before the ack gives the same bytes; acknowledge with
    /// `meterd batches ack ID` once the CIS imported the file.
    Export {
        /// Reads: json, csv, cmep or a fixed-width layout name (bundled or in `[http]
        /// layouts_dir`). Interval days: json, csv, cmep, nem12 or greenbutton.
        #[arg(long)]
        format: String,
        /// Reads (default) or interval days.
        #[arg(long, value_enum, default_value_t)]
        #[serde(default)]
        kind: BatchKind,
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
        /// The billing client the batch is for.
        #[arg(long, default_value = "file")]
        client: String,
        /// Most reads in a new batch.
        #[arg(long, default_value_t = DEFAULT_MAX_READS as u64, value_parser = clap::value_parser!(u64).range(1..))]
        max: u64,
    },
    /// List batches (all clients), optionally only open or acked ones.
    List {
        #[arg(long, value_parser = ["open", "acked"])]
        status: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct ListView {
    id: u64,
    kind: &'static str,
    client: String,
    status: &'static str,
    created_at: String,
    acked_at: Option<String>,
    reads: usize,
}

#[derive(Serialize)]
struct BatchView<'a> {
    id: Option<u64>,
    status: Option<&'static str>,
    created_at: Option<String>,
    reads: Vec<ReadView<'a>>,
}

pub fn run(ctx: &Ctx<'_>, cmd: BatchesCmd) -> anyhow::Result<()> {
    let store = ctx.store;
    match cmd {
        BatchesCmd::Next {
            json,
            max,
            kind: BatchKind::Intervals,
        } => {
            let doc = billing::intervals::pull_days(store, DEFAULT_CLIENT, max as usize, jiff::Timestamp::now())?;
            if json {
                let clock = ctx.config.intervals.clock();
                let rctx = interval_render_ctx(ctx, &clock);
                return match &doc {
                    Some(doc) => {
                        let bytes = interval_render::render(doc, IntervalExport::Json, &rctx)?;
                        say!(ctx, "{}", String::from_utf8_lossy(&bytes).trim_end());
                        Ok(())
                    }
                    None => print_json(ctx, &serde_json::json!({"id": null, "kind": "intervals", "days": []})),
                };
            }
            match doc {
                Some(d) => say!(
                    ctx,
                    "interval batch {} (created {}): {} days; acknowledge with `meterd batches ack {}`",
                    d.batch.id,
                    d.batch.created_at,
                    d.contents.days.len(),
                    d.batch.id
                ),
                None => say!(ctx, "nothing to bill: no validated interval days outside a batch"),
            }
            Ok(())
        }
        BatchesCmd::Next { json, max, .. } => {
            let b = billing::next_batch(store, DEFAULT_CLIENT, max as usize, jiff::Timestamp::now())?;
            let view = match &b {
                Some(b) => BatchView {
                    id: Some(b.batch.id),
                    status: Some("open"),
                    created_at: Some(b.batch.created_at.to_string()),
                    reads: views(&b.reads),
                },
                None => BatchView {
                    id: None,
                    status: None,
                    created_at: None,
                    reads: Vec::new(),
                },
            };
            if json {
                return print_json(ctx, &view);
            }
            match b {
                Some(b) => say!(
                    ctx,
                    "batch {} (created {}): {} reads; acknowledge with `meterd batches ack {}`",
                    b.batch.id,
                    b.batch.created_at,
                    b.reads.len(),
                    b.batch.id
                ),
                None => say!(ctx, "nothing to bill: no validated reads outside a batch"),
            }
            Ok(())
        }
        BatchesCmd::Export {
            format,
            out,
            client,
            max,
            kind: BatchKind::Intervals,
        } => {
            let fmt = IntervalExport::parse(&format).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown interval format {}; use {}",
                    crate::model::limits::quote(&format),
                    IntervalExport::NAMES
                )
            })?;
            let clock = ctx.config.intervals.clock();
            let rctx = interval_render_ctx(ctx, &clock);
            match billing::intervals::pull_days(store, &client, max as usize, jiff::Timestamp::now())? {
                Some(doc) => {
                    let bytes = interval_render::render(&doc, fmt, &rctx)?;
                    ctx.deliver(&bytes)?;
                    let corrections = doc.contents.days.iter().filter(|d| d.correction_of.is_some()).count();
                    say!(
                        ctx,
                        "interval batch {} ({} days, {} corrections) written to {}; after the CIS imported it: `meterd batches ack {}`",
                        doc.batch.id,
                        doc.contents.days.len(),
                        corrections,
                        out.display(),
                        doc.batch.id
                    );
                }
                None => say!(
                    ctx,
                    "nothing to bill: no validated interval days outside a batch; {} not written",
                    out.display()
                ),
            }
            Ok(())
        }
        BatchesCmd::Export {
            format,
            out,
            client,
            max,
            kind: BatchKind::Reads,
        } => {
            let http = ctx.config.http.clone().unwrap_or_default();
            let layouts = billing::layouts::Layouts::load(http.layouts_dir.as_deref())?;
            let fmt = billing::http::resolve_format(&layouts, &http.time_zone()?, &format).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown format {}; use json, csv, cmep or a layout: {}",
                    crate::model::limits::quote(&format),
                    layouts.names().collect::<Vec<_>>().join(", ")
                )
            })?;
            match billing::pull(store, &client, max as usize, jiff::Timestamp::now())? {
                Some(doc) => {
                    let bytes = billing::render::render(&doc, &fmt)?;
                    // The client writes the file, as itself and durably; the daemon never
                    // opens a path a client names.
                    ctx.deliver(&bytes)?;
                    say!(
                        ctx,
                        "batch {} ({} reads, {} corrections) written to {}; after the CIS imported it: `meterd batches ack {}`",
                        doc.batch.id,
                        doc.contents.lines.len(),
                        doc.contents.corrections.len(),
                        out.display(),
                        doc.batch.id
                    );
                }
                None => say!(
                    ctx,
                    "nothing to bill: no validated reads outside a batch; {} not written",
                    out.display()
                ),
            }
            Ok(())
        }
        BatchesCmd::List { status, json } => {
            let status = status.map(|s| {
                if s == "open" {
                    crate::model::BatchStatus::Open
                } else {
                    crate::model::BatchStatus::Acked
                }
            });
            let txn = store.begin_read()?;
            let view = |kind, id, client, s, created: jiff::Timestamp, acked: Option<jiff::Timestamp>, n| ListView {
                id,
                kind,
                client,
                status: if s == crate::model::BatchStatus::Open {
                    "open"
                } else {
                    "acked"
                },
                created_at: created.to_string(),
                acked_at: acked.map(|t| t.to_string()),
                reads: n,
            };
            let mut list: Vec<ListView> = txn
                .batches(status)?
                .into_iter()
                .map(|b| {
                    view(
                        "reads",
                        b.id,
                        b.client,
                        b.status,
                        b.created_at,
                        b.acked_at,
                        b.read_ids.len(),
                    )
                })
                .collect();
            list.extend(
                txn.interval_batches()?
                    .into_iter()
                    .filter(|b| status.is_none_or(|s| b.status == s))
                    .map(|b| {
                        view(
                            "intervals",
                            b.id,
                            b.client,
                            b.status,
                            b.created_at,
                            b.acked_at,
                            b.days.len(),
                        )
                    }),
            );
            list.sort_by_key(|b| b.id);
            if json {
                return print_json(ctx, &list);
            }
            for b in list {
                say!(
                    ctx,
                    "{:>6}  {:<16} {:<6} {:>7} {}  created {}",
                    b.id,
                    b.client,
                    b.status,
                    b.reads,
                    if b.kind == "intervals" { "days " } else { "reads" },
                    b.created_at
                );
            }
            Ok(())
        }
        BatchesCmd::Ack { id } => {
            if billing::intervals::is_interval_batch(store, id)? {
                match billing::intervals::ack_interval_batch(store, id, jiff::Timestamp::now())? {
                    AckOutcome::Acked { reads } => {
                        say!(ctx, "interval batch {id} acknowledged: {reads} days exported")
                    }
                    AckOutcome::AlreadyAcked => say!(ctx, "interval batch {id} was already acknowledged"),
                }
                return Ok(());
            }
            match billing::ack_batch(store, id, jiff::Timestamp::now())? {
                AckOutcome::Acked { reads } => say!(ctx, "batch {id} acknowledged: {reads} reads exported"),
                AckOutcome::AlreadyAcked => say!(ctx, "batch {id} was already acknowledged"),
            }
            Ok(())
        }
    }
}
