//! `meterd review list [--json]`.

use clap::Subcommand;

use super::Env;
use super::output::{print_json, print_reads_table, views};
use crate::review;

#[derive(Debug, Subcommand)]
pub enum ReviewCmd {
    /// The reads awaiting review (status flagged), same shape as `reads list`.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub fn run(env: &Env, cmd: ReviewCmd) -> anyhow::Result<()> {
    match cmd {
        ReviewCmd::List { json } => {
            let store = env.open_store()?;
            let reads = review::queue(&store)?;
            if json {
                print_json(env, &views(&reads))
            } else {
                print_reads_table(env, &reads)?;
                say!(env, "{} reads awaiting review", reads.len());
                Ok(())
            }
        }
    }
}
