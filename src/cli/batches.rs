//! `meterd batches next [--json]`, `meterd batches ack ID`.

use clap::Subcommand;
use serde::Serialize;

use super::Env;
use super::output::{ReadView, print_json, views};
use crate::billing::{self, AckOutcome, DEFAULT_CLIENT, DEFAULT_MAX_READS};

#[derive(Debug, Subcommand)]
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
}

#[derive(Serialize)]
struct BatchView<'a> {
    id: Option<u64>,
    status: Option<&'static str>,
    created_at: Option<String>,
    reads: Vec<ReadView<'a>>,
}

pub fn run(env: &Env, cmd: BatchesCmd) -> anyhow::Result<()> {
    let store = env.open_store()?;
    match cmd {
        BatchesCmd::Next { json, max } => {
            let b = billing::next_batch(&store, DEFAULT_CLIENT, max as usize, jiff::Timestamp::now())?;
            let view = match &b {
                Some(b) => BatchView {
                    id: Some(b.batch.id),
                    status: Some("open"),
                    created_at: Some(b.batch.created_at.to_string()),
                    reads: views(&b.reads),
                },
                None => BatchView { id: None, status: None, created_at: None, reads: Vec::new() },
            };
            if json {
                return print_json(env, &view);
            }
            match b {
                Some(b) => say!(env, 
                    "batch {} (created {}): {} reads; acknowledge with `meterd batches ack {}`",
                    b.batch.id,
                    b.batch.created_at,
                    b.reads.len(),
                    b.batch.id
                ),
                None => say!(env, "nothing to bill: no validated reads outside a batch"),
            }
            Ok(())
        }
        BatchesCmd::Ack { id } => {
            match billing::ack_batch(&store, id, jiff::Timestamp::now())? {
                AckOutcome::Acked { reads } => say!(env, "batch {id} acknowledged: {reads} reads exported"),
                AckOutcome::AlreadyAcked => say!(env, "batch {id} was already acknowledged"),
            }
            Ok(())
        }
    }
}
