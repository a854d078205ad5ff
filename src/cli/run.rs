//! `meterd run`: the daemon in the foreground (systemd runs it like this).

use clap::Args;

use super::Env;
use crate::daemon;

/// Arguments of `meterd run`.
#[derive(Debug, Args)]
pub struct RunArgs {}

pub fn run(env: &Env, _args: RunArgs) -> anyhow::Result<()> {
    // Logging was set up by `cli::main` (journald-friendly under systemd, `[log]` in the config).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("meterd")
        .build()?;
    runtime.block_on(daemon::run_service(
        env.config.clone(),
        env.config_path.clone(),
        env.data_dir.clone(),
    ))
}
