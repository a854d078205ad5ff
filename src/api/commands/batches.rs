//! `meterd batches next [--json]`, `meterd batches ack ID`, `meterd batches list`,
//! `meterd batches export --format F --out FILE` (for CIS that import files).

use clap::Subcommand;
use serde::{Deserialize, Serialize};

use super::Ctx;
use super::output::{ReadView, print_json, views};
use crate::billing::{self, AckOutcome, DEFAULT_CLIENT, DEFAULT_MAX_READS};

#[derive(Debug, Clone, PartialEq, Eq, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchesCmd {
    /// The open batch, or a new one of validated reads not billed yet. Prints an object with
    /// `id` and `reads` (`id` null and no reads when there is nothing to bill). Asking again
    /// before ack returns the same batch.
    Next {
        #[arg(long)]
        json: bool,
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
        /// json, csv, cmep or a fixed-width layout name (bundled or in `[http] layouts_dir`).
        #[arg(long)]
        format: String,
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
        BatchesCmd::Next { json, max } => {
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
            let list: Vec<ListView> = store
                .begin_read()?
                .batches(status)?
                .into_iter()
                .map(|b| ListView {
                    id: b.id,
                    client: b.client,
                    status: if b.status == crate::model::BatchStatus::Open {
                        "open"
                    } else {
                        "acked"
                    },
                    created_at: b.created_at.to_string(),
                    acked_at: b.acked_at.map(|t| t.to_string()),
                    reads: b.read_ids.len(),
                })
                .collect();
            if json {
                return print_json(ctx, &list);
            }
            for b in list {
                say!(
                    ctx,
                    "{:>6}  {:<16} {:<6} {:>7} reads  created {}",
                    b.id,
                    b.client,
                    b.status,
                    b.reads,
                    b.created_at
                );
            }
            Ok(())
        }
        BatchesCmd::Ack { id } => {
            match billing::ack_batch(store, id, jiff::Timestamp::now())? {
                AckOutcome::Acked { reads } => say!(ctx, "batch {id} acknowledged: {reads} reads exported"),
                AckOutcome::AlreadyAcked => say!(ctx, "batch {id} was already acknowledged"),
            }
            Ok(())
        }
    }
}
