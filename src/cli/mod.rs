//! The `meterd` command line: one file per command group.
//!
//! The contract used by acceptance checks (JSON shapes, flags) is documented on each command.
//! Room is left in [`Command`] for the later groups (decode, routes, dock, run, simulate,
//! review TUI, audit, tokens).

mod batches;
mod demo;
mod meters;
mod output;
mod reads;
mod review;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::store::RedbStore;

/// meterd: meter data collector for water, gas and electric utilities.
#[derive(Debug, Parser)]
#[command(name = "meterd", version, about, propagate_version = true)]
pub struct Cli {
    /// Data directory holding the store (default: `data_dir` of the config, else ./meterd-data).
    #[arg(long, global = true, env = "METERD_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (default: ./meterd.toml when it exists).
    #[arg(long, global = true, env = "METERD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// Command groups.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Meters: import lists from billing (CSV or a handheld route layout), list them.
    #[command(subcommand)]
    Meters(meters::MetersCmd),
    /// Reads: import files (runs VEE), list them.
    #[command(subcommand)]
    Reads(reads::ReadsCmd),
    /// The review queue: reads VEE held back.
    #[command(subcommand)]
    Review(review::ReviewCmd),
    /// Billing batches: take validated reads, acknowledge them.
    #[command(subcommand)]
    Batches(batches::BatchesCmd),
    /// A first run: a sample town in a temporary store, VEE, a billing batch, a summary.
    Demo(demo::DemoArgs),
}

/// What every command needs: the configuration and where the store is.
pub struct Env {
    pub config: Config,
    pub data_dir: PathBuf,
}

impl Env {
    fn load(cli: &Cli) -> anyhow::Result<Self> {
        let config = Config::load(cli.config.as_deref())?;
        let data_dir = config.data_dir(cli.data_dir.as_deref());
        Ok(Env { config, data_dir })
    }

    /// Open (or create) the store.
    pub fn open_store(&self) -> anyhow::Result<RedbStore> {
        open_store(&self.data_dir)
    }
}

pub(crate) fn open_store(dir: &Path) -> anyhow::Result<RedbStore> {
    RedbStore::open_dir(dir).with_context(|| format!("cannot open the store in {}", dir.display()))
}

/// Parse the command line and run it.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let env = Env::load(&cli)?;
    match cli.command {
        Command::Meters(cmd) => meters::run(&env, cmd),
        Command::Reads(cmd) => reads::run(&env, cmd),
        Command::Review(cmd) => review::run(&env, cmd),
        Command::Batches(cmd) => batches::run(&env, cmd),
        Command::Demo(args) => demo::run(&env, args),
    }
}
