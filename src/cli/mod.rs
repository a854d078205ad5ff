//! The `meterd` command line: parsing, and where each command runs.
//!
//! The store commands (meters, reads, review actions, audit, report, orders, batches,
//! gateways, routes, tokens; [`crate::api::commands`]) are clients of the API: when a daemon
//! answers on the control socket they run there, as the caller the socket's peer credentials
//! name, and never touch the store here; when none answers they run in process with the same
//! code, the same role check and the same output. Files stay with the client either way: it
//! reads what a command imports and writes what it exports. The other commands (`run`, `dock`,
//! `poll`, `listen`, `demo`, `decode`, `simulate`, `check-config`) run here and write through
//! [`Env`]; those that drive a device refuse to run beside a daemon. `simulate` exists only
//! with the default `simulate` feature.

mod check_config;
mod decode;
mod demo;
mod dock;
mod listen;
mod poll;
mod review;
mod run;
#[cfg(feature = "simulate")]
pub mod simulate;
mod store;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::api::commands::{self as api_commands, Console, Ctx};
pub use crate::api::commands::{
    AuditCmd, BatchesCmd, GatewaysCmd, MetersCmd, OrdersCmd, QuarantineCmd, ReadsCmd, ReportCmd, RoutesCmd, Sink,
    TokensCmd,
};
use crate::api::files::{self, OutFile};
use crate::api::local::{self, LocalTransfer};
use crate::api::{Caller, Reply, Request, access, client, identity, text};
use crate::config::Config;

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
    /// Act for another user (admins only): the audit trail records "USER (entered by YOU)".
    /// Without it, you are the clerk: your login, as the operating system knows it.
    #[arg(long, global = true, value_name = "USER")]
    pub on_behalf_of: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// Command groups.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Meters: import lists from billing (CSV or a handheld route layout), list them.
    #[command(subcommand)]
    Meters(MetersCmd),
    /// Reads: import files (runs VEE), list them.
    #[command(subcommand)]
    Reads(ReadsCmd),
    /// Interval (AMI) data: import NEM12 and CMEP files (runs interval VEE), list a meter's days.
    #[command(subcommand)]
    Intervals(api_commands::IntervalsCmd),
    /// Clerk review: without a subcommand, the terminal UI; every action is also a subcommand.
    Review(review::ReviewArgs),
    /// The hash-chained audit trail of changes to reads: verify it, show a meter's history.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Reports: exceptions per cycle/route, unbilled reconciliation, an account's history.
    #[command(subcommand)]
    Report(ReportCmd),
    /// Re-read service orders: list per route in walk order, complete.
    #[command(subcommand)]
    Orders(OrdersCmd),
    /// Billing batches: take validated reads, acknowledge them.
    #[command(subcommand)]
    Batches(BatchesCmd),
    /// A first run: a sample town in a temporary store, VEE, a billing batch, a summary.
    Demo(demo::DemoArgs),
    /// Decode meter frames and telegrams (hex lines, rtlamr JSON, text telegrams) to NDJSON.
    Decode(decode::DecodeArgs),
    /// Run the daemon in the foreground until SIGTERM (SIGHUP reloads the configuration).
    Run(run::RunArgs),
    /// Ask the running daemon to re-read its configuration file (admins; like SIGHUP).
    Reload,
    /// Routes for handheld recorders: list, assign to a recorder, unread meters.
    #[command(subcommand)]
    Routes(RoutesCmd),
    /// Dock a handheld recorder once in the foreground: unload, clear, load, set its clock.
    Dock(dock::DockArgs),
    /// MQTT gateways: last message, status, silence.
    #[command(subcommand)]
    Gateways(GatewaysCmd),
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
    Tokens(TokensCmd),
    /// The store file: check it, back it up while the daemon runs, restore a backup.
    #[command(subcommand)]
    Store(store::StoreCli),
    /// Input that did not decode: list, show, retry with today's keys, purge.
    #[command(subcommand)]
    Quarantine(QuarantineCmd),
}

impl Command {
    /// The API command this is, when it is a store command (the others come back).
    // Moved once per process: the size of the returned command does not matter.
    #[allow(clippy::result_large_err)]
    fn into_store(self) -> Result<api_commands::Command, Command> {
        use api_commands::Command as C;
        Ok(match self {
            Command::Meters(c) => C::Meters(c),
            Command::Reads(c) => C::Reads(c),
            Command::Intervals(c) => C::Intervals(c),
            Command::Review(review::ReviewArgs { cmd: Some(c), .. }) => C::Review(c),
            Command::Audit(c) => C::Audit(c),
            Command::Report(c) => C::Report(c),
            Command::Orders(c) => C::Orders(c),
            Command::Batches(c) => C::Batches(c),
            Command::Gateways(c) => C::Gateways(c),
            Command::Routes(c) => C::Routes(c),
            Command::Tokens(c) => C::Tokens(c),
            Command::Store(store::StoreCli::Api(c)) => C::Store(c),
            Command::Quarantine(c) => C::Quarantine(c),
            other => return Err(other),
        })
    }

    /// The serial port a device command drives, the daemon's component that may own it and
    /// the configuration section that gives it to the daemon.
    fn device(&self, config: &Config) -> Option<Device> {
        let (port, owned, component, section) = match self {
            Command::Dock(a) => (
                &a.port,
                config.cradle.iter().any(|c| same_port(&c.port, &a.port)),
                "cradle",
                "[[cradle]]",
            ),
            Command::Poll(poll::PollCmd::Probe(a)) => (
                &a.port,
                config.meterbus.probe.iter().any(|p| same_port(&p.port, &a.port)),
                "meterbus",
                "[[meterbus.probe]]",
            ),
            Command::Poll(poll::PollCmd::Mbus(a)) => (
                &a.port,
                config.meterbus.mbus.iter().any(|p| same_port(&p.port, &a.port)),
                "meterbus",
                "[[meterbus.mbus]]",
            ),
            Command::Listen(listen::ListenCmd::P1(a)) => (
                &a.port,
                config.meterbus.p1.iter().any(|p| same_port(&p.port, &a.port)),
                "meterbus",
                "[[meterbus.p1]]",
            ),
            _ => return None,
        };
        Some(Device {
            port: port.clone(),
            owned,
            component,
            section,
        })
    }
}

/// A serial port a command wants.
struct Device {
    port: PathBuf,
    /// The configuration gives the port to the daemon.
    owned: bool,
    component: &'static str,
    section: &'static str,
}

/// The same device: the same path, or two names of one node (`/dev/meterd/cradle-X` → `ttyUSB0`).
fn same_port(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

/// What the commands that run here need: the configuration, where the store is, and where to
/// write.
pub struct Env {
    pub config: Config,
    /// The file the configuration came from (`None`: defaults).
    pub config_path: Option<PathBuf>,
    pub data_dir: PathBuf,
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
            out: Mutex::new(Box::new(std::io::stdout())),
            err: Mutex::new(Box::new(std::io::stderr())),
        }
    }

    fn load(cli: &Cli) -> anyhow::Result<Self> {
        let config = Config::load(cli.config.as_deref())?;
        let data_dir = config.data_dir(cli.data_dir.as_deref());
        let mut env = Env::new(config, data_dir);
        env.config_path = Config::file(cli.config.as_deref());
        Ok(env)
    }

    /// The store, opened (or created) here.
    pub fn open_store(&self) -> anyhow::Result<std::sync::Arc<dyn crate::store::Store>> {
        open_store(self)
    }

    /// The command's standard output.
    pub fn out(&self) -> MutexGuard<'_, Sink> {
        self.out.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The command's standard error.
    pub fn err(&self) -> MutexGuard<'_, Sink> {
        self.err.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The daemon's control socket for this configuration and data directory.
    pub fn socket(&self) -> PathBuf {
        self.config.daemon.control_socket(&self.data_dir)
    }
}

impl Console for Env {
    fn out(&self) -> MutexGuard<'_, Sink> {
        Env::out(self)
    }
    fn err(&self) -> MutexGuard<'_, Sink> {
        Env::err(self)
    }
}

/// How long a command waits for a store another process holds (another clerk's command or
/// review screen opens it for a moment at a time).
const LOCKED_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The store this configuration names (`[store]`, or the embedded one in the data directory),
/// waiting a moment for an embedded store another process holds.
pub(crate) fn store_target(env: &Env) -> crate::store::StoreTarget {
    crate::store::StoreTarget::from_config(&env.config, &env.data_dir).waiting(LOCKED_WAIT)
}

pub(crate) fn open_store(env: &Env) -> anyhow::Result<std::sync::Arc<dyn crate::store::Store>> {
    let target = store_target(env);
    crate::store::open(&target, env.config.quarantine.limits())
        .with_context(|| format!("cannot open the store ({})", target.describe()))
}

pub(crate) fn open_store_read_only(env: &Env) -> anyhow::Result<std::sync::Arc<dyn crate::store::Store>> {
    let target = store_target(env).read_only();
    crate::store::open(&target, env.config.quarantine.limits())
        .with_context(|| format!("cannot open the store ({})", target.describe()))
}

/// Whether an error is the store held by another process (or not readable by this user).
fn store_busy(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        matches!(
            c.downcast_ref::<crate::store::StoreError>(),
            Some(crate::store::StoreError::Locked { .. } | crate::store::StoreError::NoAccess { .. })
        )
    })
}

/// The `meterd` binary: parse `argv`, run the command, and return the process exit code.
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
    let Cli {
        on_behalf_of, command, ..
    } = cli;
    if let Some(name) = &on_behalf_of
        && let Err(m) = identity::check_user_name(name)
    {
        eprintln!("meterd: error: refused: {m}");
        return 1;
    }
    let command = match command.into_store() {
        Ok(cmd) => return store_command(&env, cmd, on_behalf_of.as_deref()),
        Err(other) => other,
    };
    match command {
        Command::Review(args) => review::tui(&env, args, on_behalf_of),
        _ if on_behalf_of.is_some() => {
            eprintln!("meterd: error: --on-behalf-of applies to the store commands and the review screen");
            2
        }
        Command::Reload => reload(&env),
        other => {
            if let Some(device) = other.device(&env.config)
                && client::daemon_answers(&env.socket())
            {
                eprintln!("meterd: error: {}", device_refusal(&env, &other, &device));
                return 1;
            }
            local_command(&env, other)
        }
    }
}

/// Why a device command does not run beside the daemon.
fn device_refusal(env: &Env, cmd: &Command, d: &Device) -> String {
    let name = match cmd {
        Command::Dock(_) => "meterd dock",
        Command::Poll(poll::PollCmd::Probe(_)) => "meterd poll probe",
        Command::Poll(_) => "meterd poll mbus",
        _ => "meterd listen p1",
    };
    if d.owned {
        format!(
            "the daemon's {} component owns {} (config {}): it reads there itself (see its log, `journalctl -u meterd`); to use `{name}` on that port, remove it from the configuration and reload the daemon (`meterd reload`)",
            d.component,
            d.port.display(),
            d.section
        )
    } else {
        format!(
            "a meterd daemon is running (control socket {}) and holds the store, so `{name}` cannot store reads beside it; give {} to the daemon in the configuration ({}) and reload it, or stop the daemon",
            env.socket().display(),
            d.port.display(),
            d.section
        )
    }
}

/// A command that runs here (not a store command).
fn local_command(env: &Env, command: Command) -> i32 {
    let err = match dispatch(env, command) {
        Ok(()) => {
            let _ = env.out().flush();
            return 0;
        }
        Err(e) => e,
    };
    let _ = env.out().flush();
    if store_busy(&err) {
        eprintln!("meterd: error: {err:#}: a meterd daemon (or another command) is using it; stop it first");
    } else {
        eprintln!("meterd: error: {err:#}");
    }
    1
}

/// A store command: through the daemon when one answers, else in process.
fn store_command(env: &Env, cmd: api_commands::Command, on_behalf_of: Option<&str>) -> i32 {
    let fail = |e: anyhow::Error| {
        eprintln!("meterd: error: {e:#}");
        1
    };
    // The same checks the daemon makes, so the same refusal either way.
    if let Err(m) = text::check_all(&cmd) {
        eprintln!("meterd: error: refused: {m}");
        return 1;
    }
    // Files stay with the client: opened and prepared here, with this user's rights.
    let upload = match cmd.upload().map(files::open_upload).transpose() {
        Ok(u) => u,
        Err(e) => return fail(e),
    };
    let socket = env.socket();
    let protected = [env.data_dir.join(crate::store::STORE_FILE), socket.clone()];
    let backup = match &cmd {
        api_commands::Command::Store(api_commands::StoreCmd::Backup { dest, force }) => {
            if !force && std::fs::symlink_metadata(dest).is_ok() {
                return fail(anyhow::anyhow!(
                    "{} exists: not replacing it (give --force to replace it)",
                    dest.display()
                ));
            }
            true
        }
        _ => false,
    };
    let out = match cmd.download().map(|p| OutFile::prepare(p, &protected)).transpose() {
        // A backup is as large as the store: no limit but the disk's.
        Ok(o) if backup => o.map(OutFile::unlimited),
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let remote = |conn: client::Connection, cmd, upload, out| {
        let mut conn = conn;
        let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
        match conn.run_command(cmd, on_behalf_of, upload, out, &mut stdout, &mut stderr) {
            Ok(code) => code,
            Err(e) => fail(e),
        }
    };
    match client::connect(&socket) {
        Ok(Some(conn)) => return remote(conn, cmd, upload, out),
        Ok(None) => {}
        Err(e) => return fail(e),
    }
    // No daemon: in process, with the same role check for this process's user.
    let caller = Caller::of_process();
    let request = Request::Command(cmd);
    let Some(role) = access::local_role(&env.config.access, &caller, local::store_owner(&env.data_dir)) else {
        eprintln!("meterd: error: {}", access::no_role(&env.config.access, &caller));
        return 1;
    };
    if let Err(r) = access::check(&caller, role, &request, on_behalf_of) {
        eprintln!("meterd: error: {}", r.message);
        return 1;
    }
    let Request::Command(cmd) = request else {
        unreachable!("built above")
    };
    // A stopped store is checked as a file: opening it as a store could fail on the damage
    // the check is there to name, and redb's page check needs it closed.
    // (A server store is checked through the engine, as the daemon does.)
    if let (api_commands::Command::Store(api_commands::StoreCmd::Check { json }), false) =
        (&cmd, store_target(env).is_server())
    {
        let json = *json;
        let path = env.data_dir.join(crate::store::STORE_FILE);
        let result = crate::store::check_file(&path)
            .map_err(anyhow::Error::from)
            .and_then(|report| api_commands::store::print_report(env, &report, json));
        let _ = env.out().flush();
        return match result {
            Ok(()) => 0,
            Err(e) => fail(e),
        };
    }
    let opened = if cmd.writes() {
        open_store(env)
    } else {
        open_store_read_only(env)
    };
    let store = match opened {
        Ok(s) => s,
        Err(e) if store_busy(&e) => {
            // A daemon may have started meanwhile: it holds the store now.
            return match client::connect(&socket) {
                Ok(Some(conn)) => remote(conn, cmd, upload, out),
                Ok(None) => fail(e.context(format!(
                    "no meterd daemon answers on {}; another command may be running on it, try again when it finished",
                    socket.display()
                ))),
                Err(c) => fail(c),
            };
        }
        Err(e) => return fail(e),
    };
    let mut transfer = LocalTransfer { upload, out };
    let ctx = Ctx::new(
        &store,
        &env.config,
        &caller,
        on_behalf_of,
        Box::new(std::io::stdout()),
        Box::new(std::io::stderr()),
        &mut transfer,
    );
    api_commands::run(&ctx, cmd)
}

/// `meterd reload`: the running daemon re-reads its configuration.
fn reload(env: &Env) -> i32 {
    let socket = env.socket();
    let mut conn = match client::connect(&socket) {
        Ok(Some(c)) => c,
        Ok(None) => {
            eprintln!(
                "meterd: error: no meterd daemon answers on {}: nothing to reload",
                socket.display()
            );
            return 1;
        }
        Err(e) => {
            eprintln!("meterd: error: {e:#}");
            return 1;
        }
    };
    match conn.call(Request::Reload, None) {
        Ok(Reply::Done { message }) => {
            println!("{message}");
            0
        }
        Ok(other) => {
            eprintln!("meterd: error: the daemon answered {other:?}");
            1
        }
        Err(client::CallError::Refused(m)) => {
            eprintln!("meterd: error: {m}");
            1
        }
        Err(client::CallError::Broken(e)) => {
            eprintln!("meterd: error: {e:#}");
            1
        }
    }
}

fn dispatch(env: &Env, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo(args) => demo::run(env, args),
        Command::Decode(args) => decode::run(env, args),
        Command::Run(args) => run::run(env, args),
        Command::Dock(args) => dock::run(env, args),
        Command::Poll(cmd) => poll::run(env, cmd),
        Command::Listen(cmd) => listen::run(env, cmd),
        #[cfg(feature = "simulate")]
        Command::Simulate(cmd) => simulate::run(env, cmd),
        Command::CheckConfig(args) => check_config::run(env, args),
        Command::Store(store::StoreCli::Restore { src }) => store::restore(env, &src),
        Command::Store(store::StoreCli::Migrate { to }) => store::migrate(env, to.as_deref()),
        other => anyhow::bail!("{other:?} runs through `meterd` (cli::main), not here"),
    }
}
