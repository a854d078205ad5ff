//! `meterd review` without a subcommand: the clerks' terminal UI (the subcommands are store
//! commands, in [`crate::api::commands`]).
//!
//! When a daemon answers, the screen works through it ([`RemoteBackend`]), as the user the
//! socket's peer credentials name; otherwise on the store directly ([`LocalBackend`]), as the
//! process's user, with the same role check. When the daemon cannot be reached or refuses the
//! user, the screen says so in its body and offers to retry.

use std::io::IsTerminal;

use clap::Args;

use super::Env;
use crate::api::commands::{FilterArgs, ReviewCmd};
use crate::api::remote::RemoteBackend;
use crate::api::{Caller, Role, access, client, local};
use crate::review::{self, ReviewBackend};

#[derive(Debug, Args)]
pub struct ReviewArgs {
    #[command(subcommand)]
    pub cmd: Option<ReviewCmd>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Runs the screen until the clerk quits; returns the exit code.
pub fn tui(env: &Env, args: ReviewArgs, on_behalf_of: Option<String>) -> i32 {
    match run(env, args, on_behalf_of) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("meterd: error: {e:#}");
            1
        }
    }
}

fn run(env: &Env, args: ReviewArgs, on_behalf_of: Option<String>) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!("`meterd review` needs a terminal; use `meterd review list` (or --json) in scripts");
    }
    let socket = env.socket();
    let me = Caller::of_process();
    let today = jiff::Zoned::now().date();
    let filter = args.filter.filter();
    let (backend, clerk): (Box<dyn ReviewBackend>, String) = match client::connect(&socket) {
        Ok(Some(conn)) => {
            // The daemon's view of who this is (the socket's peer), not this process's.
            let clerk = Caller {
                uid: conn.uid,
                name: conn.user.clone(),
                groups: Vec::new(),
            }
            .clerk(on_behalf_of.as_deref());
            (Box::new(RemoteBackend::new(socket, on_behalf_of, Some(conn))), clerk)
        }
        Ok(None) => {
            let Some(role) = access::local_role(&env.config.access, &me, local::store_owner(&env.data_dir)) else {
                anyhow::bail!("{}", access::no_role(&env.config.access, &me));
            };
            if on_behalf_of.is_some() && role < Role::Admin {
                anyhow::bail!(
                    "refused: --on-behalf-of needs the admin role; {} is {}",
                    me.describe(),
                    role.with_article()
                );
            }
            let backend = review::LocalBackend {
                intervals: env.config.intervals.clone(),
                ..review::LocalBackend::on(super::store_target(env), env.data_dir.clone(), env.config.vee.clone())
            };
            (Box::new(backend), me.clerk(on_behalf_of.as_deref()))
        }
        // A daemon is there but unusable (the socket's permissions, a refusal): the screen
        // shows why and retries on request.
        Err(_) => (
            Box::new(RemoteBackend::new(socket, on_behalf_of.clone(), None)),
            me.clerk(on_behalf_of.as_deref()),
        ),
    };
    let app = review::tui::App::new(clerk, filter, today);
    review::tui::run(app, backend.as_ref())?;
    Ok(())
}
