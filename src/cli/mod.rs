//! The `meterd` command line: one file per command group of [`Command`].
//!
//! The contract used by acceptance checks (JSON shapes, flags) is documented on each command.
//! Commands write through [`Env`] (`say!`, `note!`), never directly: [`main`] hands a command
//! to a running daemon over its control socket when the daemon holds the store, and replays
//! the output here. `simulate` exists only with the default `simulate` feature.

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
macro_rules! note {
    ($env:expr, $($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!($env.err(), $($arg)*)?;
    }};
}

mod audit;
mod batches;
mod check_config;
mod decode;
mod demo;
mod dock;
mod gateways;
mod listen;
mod meters;
mod orders;
mod output;
mod poll;
mod reads;
mod report;
mod review;
mod routes;
mod run;
#[cfg(feature = "simulate")]
pub mod simulate;
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
    /// Clerk review: without a subcommand, the terminal UI; every action is also a subcommand.
    Review(review::ReviewArgs),
    /// The hash-chained audit trail of changes to reads: verify it, show a meter's history.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Reports: exceptions per cycle/route, unbilled reconciliation, an account's history.
    #[command(subcommand)]
    Report(report::ReportCmd),
    /// Re-read service orders: list per route in walk order, complete.
    #[command(subcommand)]
    Orders(orders::OrdersCmd),
    /// Billing batches: take validated reads, acknowledge them.
    #[command(subcommand)]
    Batches(batches::BatchesCmd),
    /// A first run: a sample town in a temporary store, VEE, a billing batch, a summary.
    Demo(demo::DemoArgs),
    /// Decode meter frames and telegrams (hex lines, rtlamr JSON, text telegrams) to NDJSON.
    Decode(decode::DecodeArgs),
    /// Run the daemon in the foreground until SIGTERM (SIGHUP reloads the configuration).
    Run(run::RunArgs),
    /// Routes for handheld recorders: list, assign to a recorder, unread meters.
    #[command(subcommand)]
    Routes(routes::RoutesCmd),
    /// Dock a handheld recorder once in the foreground: unload, clear, load, set its clock.
    Dock(dock::DockArgs),
    /// MQTT gateways: last message, status, silence.
    #[command(subcommand)]
    Gateways(gateways::GatewaysCmd),
    /// Poll meters over a serial port now: an IEC 62056-21 probe session, M-Bus slaves.
    // `read`, its former name, stays a hidden alias so existing scripts keep working.
    #[command(subcommand, alias = "read")]
    Poll(poll::PollCmd),
    /// Listen to a meter port in the foreground: DSMR P1.
    #[command(subcommand)]
    Listen(listen::ListenCmd),
    /// Simulated devices (handheld recorder, radio gateways, meters) for tests, demos and training.
    #[cfg(feature = "simulate")]
    #[command(subcommand)]
    Simulate(simulate::SimulateCmd),
    /// Validate the configuration file (syntax, values, referenced files, secret file
    /// permissions) and print the effective configuration, defaults filled in, secrets redacted.
    CheckConfig(check_config::CheckConfigArgs),
    /// Billing API tokens: create (shown once), list, revoke.
    #[command(subcommand)]
    Tokens(tokens::TokensCmd),
}

impl Command {
    /// Whether the command may be forwarded to a running daemon when the store is in use.
    /// Never the daemon itself, nor commands with their own store or none (demo, decode,
    /// check-config, simulators): those run here.
    pub fn forwardable(&self) -> bool {
        match self {
            Command::Run(_)
            | Command::Demo(_)
            | Command::Decode(_)
            | Command::CheckConfig(_)
            | Command::Dock(_)
            | Command::Poll(_)
            | Command::Listen(_) => false,
            #[cfg(feature = "simulate")]
            Command::Simulate(_) => false,
            Command::Review(args) => args.cmd.is_some(),
            _ => true,
        }
    }

    /// The clerk a forwarded command must name itself: the daemon runs as its own user, so the
    /// audit trail would otherwise record the daemon's account instead of the person acting.
    fn clerk_to_forward(&self) -> Option<String> {
        match self {
            Command::Review(args) if args.clerk.is_none() => Some(crate::review::clerk_name(None)),
            _ => None,
        }
    }
}

/// Where a command writes: the process's own stdout/stderr, or buffers the daemon sends back.
pub type Sink = Box<dyn Write + Send>;

/// What every command needs: the configuration, where the store is, and where to write.
pub struct Env {
    pub config: Config,
    /// The file the configuration came from (`None`: defaults, or forwarded to the daemon).
    pub config_path: Option<PathBuf>,
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
            config_path: None,
            data_dir,
            shared_store: None,
            out: Mutex::new(Box::new(std::io::stdout())),
            err: Mutex::new(Box::new(std::io::stderr())),
        }
    }

    /// An environment for a command the daemon runs on a caller's behalf: its already open
    /// store, and output collected in the given sinks.
    pub fn forwarded(config: Config, data_dir: PathBuf, store: Arc<RedbStore>, out: Sink, err: Sink) -> Self {
        Env {
            config,
            config_path: None,
            data_dir,
            shared_store: Some(store),
            out: Mutex::new(out),
            err: Mutex::new(err),
        }
    }

    fn load(cli: &Cli) -> anyhow::Result<Self> {
        let config = Config::load(cli.config.as_deref())?;
        let data_dir = config.data_dir(cli.data_dir.as_deref());
        let mut env = Env::new(config, data_dir);
        env.config_path = Config::file(cli.config.as_deref());
        Ok(env)
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

/// How long a command waits for a store another process holds (another clerk's command or
/// review screen opens it for a moment at a time).
const LOCKED_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) fn open_store(dir: &Path) -> anyhow::Result<RedbStore> {
    crate::store::open_waiting(dir, LOCKED_WAIT).with_context(|| format!("cannot open the store in {}", dir.display()))
}

/// Parse the command line and run it.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let env = Env::load(&cli)?;
    run_in(&env, cli)
}

/// The `meterd` binary: parse `argv`, run the command, and return the process exit code.
///
/// When the store is in use by another process and a daemon answers on the control socket,
/// the command is forwarded to it and its output and exit code are replayed here.
pub fn main(argv: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let env = match Env::load(&cli) {
        Ok(env) => env,
        Err(e) => {
            crate::daemon::logging::init(None);
            eprintln!("meterd: error: {e:#}");
            return 1;
        }
    };
    let daemon = matches!(cli.command, Command::Run(_));
    crate::daemon::logging::init(daemon.then_some(&env.config.log));
    let forwardable = cli.command.forwardable();
    let socket = env.config.daemon.control_socket(&env.data_dir);
    let mut forwarded_argv = argv.clone();
    if let Some(clerk) = cli.command.clerk_to_forward() {
        forwarded_argv.extend(["--clerk".to_owned(), clerk]);
    }
    // A running daemon holds the store: hand the command to it at once rather than waiting for
    // the lock. When no daemon answers, run here.
    if forwardable
        && socket.exists()
        && let Ok(Some(response)) = crate::daemon::control::forward(&socket, &forwarded_argv)
    {
        return replay(response);
    }
    let result = run_in(&env, cli);
    let err = match result {
        Ok(()) => return 0,
        Err(e) => e,
    };
    // In use by the daemon, or (a clerk's account) not readable: the daemon may answer for it.
    let locked = err.chain().any(|c| {
        matches!(
            c.downcast_ref::<crate::store::StoreError>(),
            Some(crate::store::StoreError::Locked { .. } | crate::store::StoreError::NoAccess { .. })
        )
    });
    if !locked {
        eprintln!("meterd: error: {err:#}");
        return 1;
    }
    if !forwardable {
        eprintln!("meterd: error: {err:#}: a meterd daemon (or another command) is using it; stop it first");
        return 1;
    }
    match crate::daemon::control::forward(&socket, &forwarded_argv) {
        Ok(Some(response)) => replay(response),
        Ok(None) => {
            eprintln!(
                "meterd: error: {err:#}, and no meterd daemon answers on {}; another command may be running on it, try again when it finished",
                socket.display()
            );
            1
        }
        Err(e) => {
            eprintln!("meterd: error: {err:#}; forwarding to the daemon failed: {e:#}");
            1
        }
    }
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
        Command::Review(args) => review::run(env, args),
        Command::Audit(cmd) => audit::run(env, cmd),
        Command::Report(cmd) => report::run(env, cmd),
        Command::Orders(cmd) => orders::run(env, cmd),
        Command::Batches(cmd) => batches::run(env, cmd),
        Command::Demo(args) => demo::run(env, args),
        Command::Decode(args) => decode::run(env, args),
        Command::Run(args) => run::run(env, args),
        Command::Routes(cmd) => routes::run(env, cmd),
        Command::Dock(args) => dock::run(env, args),
        Command::Gateways(cmd) => gateways::run(env, cmd),
        Command::Poll(cmd) => poll::run(env, cmd),
        Command::Listen(cmd) => listen::run(env, cmd),
        #[cfg(feature = "simulate")]
        Command::Simulate(cmd) => simulate::run(env, cmd),
        Command::CheckConfig(args) => check_config::run(env, args),
        Command::Tokens(cmd) => tokens::run(env, cmd),
    }
}

/// Writes a forwarded command's output here and returns its exit code.
fn replay(response: crate::daemon::control::Response) -> i32 {
    let _ = std::io::stdout().write_all(response.stdout.as_bytes());
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().write_all(response.stderr.as_bytes());
    response.exit_code
}
