//! The store commands of the CLI (`meterd meters|reads|review|audit|report|orders|batches|
//! gateways|routes|tokens|quarantine …`): their arguments (clap parses them in the client; serde carries
//! them to the daemon) and their execution against a store.
//!
//! The same [`run`] executes a command in the daemon (for a client of the control socket) and
//! in process (when no daemon runs), so both print the same bytes and exit with the same code.
//! A command prints through its [`Ctx`] (`say!`, `note!`); it never opens a path it is given:
//! a file it reads arrives as a stream the client read, spooled by the daemon to a private
//! temporary file ([`Ctx::upload`]), and a file it produces
//! goes to the client, which writes it ([`Ctx::deliver`]).

mod audit;
mod batches;
mod gateways;
mod intervals;
mod meters;
mod orders;
pub mod output;
mod quarantine;
mod reads;
mod report;
mod review;
mod routes;
pub mod store;
mod tokens;

pub use audit::AuditCmd;
pub use batches::BatchesCmd;
pub use gateways::{GatewaysCmd, ListArgs as GatewaysListArgs};
pub use intervals::IntervalsCmd;
pub use meters::{Layout, MetersCmd};
pub use orders::{OrdersCmd, StatusArg};
pub use quarantine::QuarantineCmd;
pub use reads::ReadsCmd;
pub use report::{CycleArgs, Format, ReportCmd};
pub use review::{ActArgs, FilterArgs, ReviewCmd};
pub use routes::RoutesCmd;
pub use store::StoreCmd;
pub use tokens::TokensCmd;

use std::cell::RefCell;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::files::Upload;
use super::identity::Caller;
use super::proto::Role;
use crate::config::Config;
use crate::store::Store;

/// A store command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Meters(MetersCmd),
    Reads(ReadsCmd),
    Review(ReviewCmd),
    Audit(AuditCmd),
    Report(ReportCmd),
    Orders(OrdersCmd),
    Batches(BatchesCmd),
    Gateways(GatewaysCmd),
    Routes(RoutesCmd),
    Tokens(TokensCmd),
    Store(StoreCmd),
    Quarantine(QuarantineCmd),
    Intervals(IntervalsCmd),
}

impl Command {
    /// `reads import`, `tokens create`: the command line's words, for logs and refusals.
    pub fn name(&self) -> String {
        let sub = match self {
            Command::Meters(c) => match c {
                MetersCmd::Import { .. } => "import",
                MetersCmd::List { .. } => "list",
                MetersCmd::Change { .. } => "change",
            },
            Command::Reads(c) => match c {
                ReadsCmd::Import { .. } => "import",
                ReadsCmd::List { .. } => "list",
            },
            Command::Review(c) => c.word(),
            Command::Audit(c) => match c {
                AuditCmd::Verify { .. } => "verify",
                AuditCmd::Show { .. } => "show",
            },
            Command::Report(c) => match c {
                ReportCmd::Exceptions { .. } => "exceptions",
                ReportCmd::Unbilled { .. } => "unbilled",
                ReportCmd::History { .. } => "history",
                ReportCmd::Usage { .. } => "usage",
            },
            Command::Orders(c) => match c {
                OrdersCmd::List { .. } => "list",
                OrdersCmd::Complete { .. } => "complete",
            },
            Command::Batches(c) => match c {
                BatchesCmd::Next { .. } => "next",
                BatchesCmd::Ack { .. } => "ack",
                BatchesCmd::Export { .. } => "export",
                BatchesCmd::List { .. } => "list",
            },
            Command::Gateways(_) => "list",
            Command::Routes(c) => match c {
                RoutesCmd::List { .. } => "list",
                RoutesCmd::Assign { .. } => "assign",
                RoutesCmd::Unassign { .. } => "unassign",
                RoutesCmd::Unread { .. } => "unread",
            },
            Command::Tokens(c) => match c {
                TokensCmd::Create { .. } => "create",
                TokensCmd::List { .. } => "list",
                TokensCmd::Revoke { .. } => "revoke",
            },
            Command::Store(c) => match c {
                StoreCmd::Check { .. } => "check",
                StoreCmd::Backup { .. } => "backup",
            },
            Command::Quarantine(c) => c.word(),
            Command::Intervals(c) => c.word(),
        };
        format!("{} {sub}", self.group())
    }

    fn group(&self) -> &'static str {
        match self {
            Command::Meters(_) => "meters",
            Command::Reads(_) => "reads",
            Command::Review(_) => "review",
            Command::Audit(_) => "audit",
            Command::Report(_) => "report",
            Command::Orders(_) => "orders",
            Command::Batches(_) => "batches",
            Command::Gateways(_) => "gateways",
            Command::Routes(_) => "routes",
            Command::Tokens(_) => "tokens",
            Command::Store(_) => "store",
            Command::Quarantine(_) => "quarantine",
            Command::Intervals(_) => "intervals",
        }
    }

    /// The least role allowed to run the command (see `[access]` in docs/operating.md).
    pub fn role(&self) -> Role {
        match self {
            Command::Meters(MetersCmd::Import { .. }) | Command::Tokens(_) | Command::Store(_) => Role::Admin,
            Command::Meters(MetersCmd::Change { .. })
            | Command::Orders(OrdersCmd::Complete { .. })
            | Command::Batches(BatchesCmd::Next { .. } | BatchesCmd::Ack { .. } | BatchesCmd::Export { .. })
            | Command::Routes(RoutesCmd::Assign { .. } | RoutesCmd::Unassign { .. }) => Role::Supervisor,
            Command::Review(c) if c.needs_supervisor() => Role::Supervisor,
            Command::Quarantine(c) if c.needs_supervisor() => Role::Supervisor,
            _ => Role::Clerk,
        }
    }

    /// The file the command reads: the client opens it (with its own rights) and streams the
    /// bytes; the path itself only names the file in messages.
    pub fn upload(&self) -> Option<&Path> {
        match self {
            Command::Meters(MetersCmd::Import { file, .. })
            | Command::Reads(ReadsCmd::Import { file, .. })
            | Command::Intervals(IntervalsCmd::Import { file, .. }) => Some(file),
            _ => None,
        }
    }

    /// The file the command produces: the client writes it (as itself, durably).
    pub fn download(&self) -> Option<&Path> {
        match self {
            Command::Batches(BatchesCmd::Export { out, .. }) => Some(out),
            Command::Store(StoreCmd::Backup { dest, .. }) => Some(dest),
            _ => None,
        }
    }

    /// Whether the command may write the store. One that does not runs in process on the
    /// store opened read-only, so it never writes the file (a damaged store is not made worse
    /// by looking at it).
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            Command::Meters(MetersCmd::List { .. })
                | Command::Reads(ReadsCmd::List { .. })
                | Command::Intervals(IntervalsCmd::List { .. })
                | Command::Audit(_)
                | Command::Report(_)
                | Command::Orders(OrdersCmd::List { .. })
                | Command::Batches(BatchesCmd::List { .. })
                | Command::Gateways(_)
                | Command::Routes(RoutesCmd::List { .. } | RoutesCmd::Unread { .. })
                | Command::Tokens(TokensCmd::List { .. })
                | Command::Store(_)
        )
    }
}

/// Where a command's text goes: this process's stdout/stderr, or frames to a client.
pub type Sink = Box<dyn Write + Send>;

/// Anything commands print through (`say!`, `note!`, [`output::print_json`]).
pub trait Console {
    fn out(&self) -> MutexGuard<'_, Sink>;
    fn err(&self) -> MutexGuard<'_, Sink>;
}

/// The files that cross between client and command.
pub trait Transfer {
    /// The file the command reads: what the client sent, spooled by the daemon to a private
    /// temporary file (in process: the local file itself).
    fn upload(&mut self) -> anyhow::Result<Upload>;
    /// Hands the produced file to the client, which writes it; an error says why it could not
    /// (the same message in process and through the daemon).
    fn deliver(&mut self, bytes: &[u8]) -> anyhow::Result<()>;
}

/// Everything a command runs with.
pub struct Ctx<'a> {
    pub store: &'a dyn Store,
    pub config: &'a Config,
    pub caller: &'a Caller,
    /// The user an admin acts for (`--on-behalf-of`).
    pub on_behalf_of: Option<&'a str>,
    out: Mutex<Sink>,
    err: Mutex<Sink>,
    transfer: RefCell<&'a mut dyn Transfer>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        store: &'a dyn Store,
        config: &'a Config,
        caller: &'a Caller,
        on_behalf_of: Option<&'a str>,
        out: Sink,
        err: Sink,
        transfer: &'a mut dyn Transfer,
    ) -> Self {
        Ctx {
            store,
            config,
            caller,
            on_behalf_of,
            out: Mutex::new(out),
            err: Mutex::new(err),
            transfer: RefCell::new(transfer),
        }
    }

    /// Who the audit trail records for this command.
    pub fn clerk(&self) -> String {
        self.caller.clerk(self.on_behalf_of)
    }

    /// The file the command reads, to read as a stream from its start (as often as needed).
    pub fn upload(&self) -> anyhow::Result<Upload> {
        self.transfer.borrow_mut().upload()
    }

    /// Hands the produced file to the client.
    pub fn deliver(&self, bytes: &[u8]) -> anyhow::Result<()> {
        self.transfer.borrow_mut().deliver(bytes)
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

impl Console for Ctx<'_> {
    fn out(&self) -> MutexGuard<'_, Sink> {
        Ctx::out(self)
    }
    fn err(&self) -> MutexGuard<'_, Sink> {
        Ctx::err(self)
    }
}

/// Runs a command; an error is printed to its stderr as `meterd: error: …`. Returns the exit
/// code (0, or 1 on an error).
pub fn run(ctx: &Ctx<'_>, cmd: Command) -> i32 {
    let result = execute(ctx, cmd);
    let _ = ctx.out().flush();
    match result {
        Ok(()) => 0,
        Err(e) => {
            let mut err = ctx.err();
            let _ = writeln!(err, "meterd: error: {e:#}");
            let _ = err.flush();
            1
        }
    }
}

fn execute(ctx: &Ctx<'_>, cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Meters(c) => meters::run(ctx, c),
        Command::Reads(c) => reads::run(ctx, c),
        Command::Intervals(c) => intervals::run(ctx, c),
        Command::Review(c) => review::run(ctx, c),
        Command::Audit(c) => audit::run(ctx, c),
        Command::Report(c) => report::run(ctx, c),
        Command::Orders(c) => orders::run(ctx, c),
        Command::Batches(c) => batches::run(ctx, c),
        Command::Gateways(c) => gateways::run(ctx, c),
        Command::Routes(c) => routes::run(ctx, c),
        Command::Tokens(c) => tokens::run(ctx, c),
        Command::Store(c) => store::run(ctx, c),
        Command::Quarantine(c) => quarantine::run(ctx, c),
    }
}
