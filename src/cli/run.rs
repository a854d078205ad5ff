//! `meterd run`: the daemon in the foreground (systemd runs it like this).

use clap::Args;

use super::Env;
use crate::daemon;

/// Arguments of `meterd run`.
#[derive(Debug, Args)]
pub struct RunArgs {}

pub fn run(env: &Env, _args: RunArgs) -> anyhow::Result<()> {
    // Logs go to stderr (journald under systemd); RUST_LOG overrides the level.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("meterd").build()?;
    runtime.block_on(daemon::run(env.config.clone(), env.data_dir.clone(), daemon::termination_signal()))
}
