//! `meterd store …`: `check` and `backup` are store commands (through the daemon when it
//! runs: [`crate::api::commands::store`]); `restore` runs here, on a stopped store.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Subcommand;

use super::Env;
use crate::api::commands::StoreCmd;
use crate::api::{Caller, Role, access, client, local};
use crate::store::{RedbStore, STORE_FILE};

/// `meterd store` subcommands.
#[derive(Debug, Subcommand)]
pub enum StoreCli {
    #[command(flatten)]
    Api(StoreCmd),
    /// Put a backup back in place of the store (the daemon must be stopped). SRC is checked
    /// first (`store check` and `audit verify`); the current store is kept as
    /// meterd.redb.before-restore-<time> next to it.
    Restore { src: PathBuf },
}

/// `meterd store restore SRC`.
pub fn restore(env: &Env, src: &Path) -> anyhow::Result<()> {
    if super::store_target(env).is_server() {
        bail!("{}", crate::store::open::SERVER_BACKUP);
    }
    let socket = env.socket();
    if client::daemon_answers(&socket) {
        bail!(
            "a meterd daemon is running (control socket {}) and holds the store: stop it first (`systemctl stop meterd`), then restore",
            socket.display()
        );
    }
    let caller = Caller::of_process();
    match access::local_role(&env.config.access, &caller, local::store_owner(&env.data_dir)) {
        Some(Role::Admin) => {}
        _ => bail!(
            "refused: restoring the store is for admins (root, or the store's owner); {} is not one",
            caller.describe()
        ),
    }
    let shown = src.display();
    let report = crate::store::check_file(src).with_context(|| format!("checking {shown}"))?;
    if !report.ok() {
        for p in &report.problems {
            eprintln!("{}: {}", p.table, p.what);
        }
        bail!(
            "{shown} fails `store check` ({} problem(s)); nothing restored",
            report.problems.len()
        );
    }
    {
        let copy = RedbStore::open_snapshot(src).with_context(|| format!("opening {shown}"))?;
        let audit = crate::review::verify(&copy)?;
        if !audit.ok() {
            bail!(
                "{shown}: audit trail is NOT intact ({} problem(s), `meterd audit verify` names them); nothing restored",
                audit.problems.len()
            );
        }
    }
    let outcome = crate::store::restore(&env.data_dir, src, jiff::Timestamp::now())
        .with_context(|| format!("restoring {shown} into {}", env.data_dir.join(STORE_FILE).display()))?;
    if let Some(aside) = &outcome.kept_aside {
        println!("the store that was in place is kept as {}", aside.display());
    }
    println!(
        "restored {shown} to {} (checked: {} tables, audit trail intact); start the daemon",
        outcome.store.display(),
        report.tables.len()
    );
    Ok(())
}
