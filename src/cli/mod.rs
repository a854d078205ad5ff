//! The `meterd` command line: one file per command group.
//!
//! The contract used by acceptance checks (JSON shapes, flags) is documented on each command.
//! Room is left in [`Command`] for the later groups (decode, routes, dock, run, simulate,
//! review TUI, audit, tokens).

/// Writes one line to the command's standard output (`say!(env, "...")`).
///
/// Commands never print directly: their output goes through [`Env`], so the daemon can run a
/// forwarded command against its own open store and send the output back to the caller.
macro_rules! say {
    ($env:expr) => {{
        use std::io::Write as _;
        writeln!($env.out())?;
    }};
    ($env:expr, $($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!($env.out(), $($arg)*)?;
    }};
}

/// Writes one line to the command's standard error (progress, warnings).
#[allow(unused_macros)]
macro_rules! note {
    ($env:expr, $($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!($env.err(), $($arg)*)?;
    }};
}

mod batches;
mod decode;
mod demo;
mod meters;
mod output;
mod reads;
mod review;
mod run;
mod tokens;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

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
    /// Decode meter frames and telegrams (hex lines, rtlamr JSON, text telegrams) to NDJSON.
    Decode(decode::DecodeArgs),
    /// Run the daemon in the foreground until SIGTERM.
    Run(run::RunArgs),
    /// Billing API tokens: create (shown once), list, revoke.
    #[command(subcommand)]
    Tokens(tokens::TokensCmd),
}

/// Where a command writes: the process's own stdout/stderr, or buffers the daemon sends back.
pub type Sink = Box<dyn Write + Send>;

/// What every command needs: the configuration, where the store is, and where to write.
pub struct Env {
    pub config: Config,
    pub data_dir: PathBuf,
    /// The daemon's open store, when the command runs inside the daemon.
    shared_store: Option<Arc<RedbStore>>,
    out: Mutex<Sink>,
    err: Mutex<Sink>,
}

impl Env {
    /// An environment writing to this process's stdout and stderr.
    pub fn new(config: Config, data_dir: PathBuf) -> Self {
        Env {
            config,
            data_dir,
            shared_store: None,
            out: Mutex::new(Box::new(std::io::stdout())),
            err: Mutex::new(Box::new(std::io::stderr())),
        }
    }

    /// An environment for a command the daemon runs on a caller's behalf: its already open
    /// store, and output collected in the given sinks.
    pub fn forwarded(config: Config, data_dir: PathBuf, store: Arc<RedbStore>, out: Sink, err: Sink) -> Self {
        Env { config, data_dir, shared_store: Some(store), out: Mutex::new(out), err: Mutex::new(err) }
    }

    fn load(cli: &Cli) -> anyhow::Result<Self> {
        let config = Config::load(cli.config.as_deref())?;
        let data_dir = config.data_dir(cli.data_dir.as_deref());
        Ok(Env::new(config, data_dir))
    }

    /// The store: the daemon's when running inside it, else opened (or created) here.
    pub fn open_store(&self) -> anyhow::Result<Arc<RedbStore>> {
        match &self.shared_store {
            Some(store) => Ok(Arc::clone(store)),
            None => open_store(&self.data_dir).map(Arc::new),
        }
    }

    /// The command's standard output.
    pub fn out(&self) -> MutexGuard<'_, Sink> {
        self.out.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The command's standard error.
    pub fn err(&self) -> MutexGuard<'_, Sink> {
        self.err.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) fn open_store(dir: &Path) -> anyhow::Result<RedbStore> {
    RedbStore::open_dir(dir).with_context(|| format!("cannot open the store in {}", dir.display()))
}

/// Parse the command line and run it.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let env = Env::load(&cli)?;
    run_in(&env, cli)
}

/// Run a parsed command line in a given environment (used by [`run`] and by the daemon for
/// commands forwarded to it).
pub fn run_in(env: &Env, cli: Cli) -> anyhow::Result<()> {
    let result = dispatch(env, cli);
    let _ = env.out().flush();
    result
}

fn dispatch(env: &Env, cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Meters(cmd) => meters::run(env, cmd),
        Command::Reads(cmd) => reads::run(env, cmd),
        Command::Review(cmd) => review::run(env, cmd),
        Command::Batches(cmd) => batches::run(env, cmd),
        Command::Demo(args) => demo::run(env, args),
        Command::Decode(args) => decode::run(env, args),
        Command::Run(args) => run::run(env, args),
        Command::Tokens(cmd) => tokens::run(env, cmd),
    }
}
