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
    /// Copy the embedded store (the daemon must be stopped) into an empty PostgreSQL database:
    /// every table, ids kept; resumes an interrupted copy; verified at the end (rows per table
    /// on both sides, `audit verify` on the copy). The usual way: set `[store] url` (with its
    /// password_file, sslmode, ca_file) in the configuration, stop the daemon, run
    /// `meterd store migrate`, start the daemon. The embedded store stays as it was.
    Migrate {
        /// The PostgreSQL database, e.g. postgresql://meterd@db1:5432/meterd (default: the
        /// configured `[store] url` or METERD_STORE_URL); other connection settings come from
        /// `[store]`.
        #[arg(long = "to", value_name = "URL")]
        to: Option<String>,
    },
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

/// `meterd store migrate --to URL`.
pub fn migrate(env: &Env, to: Option<&str>) -> anyhow::Result<()> {
    let Some(to) = to.or(env.config.store.url.as_deref()) else {
        bail!(
            "name the PostgreSQL database: `meterd store migrate --to postgresql://…`, or set [store] url in the configuration"
        );
    };
    let socket = env.socket();
    if client::daemon_answers(&socket) {
        bail!(
            "a meterd daemon is running (control socket {}) and holds the store: stop it first (`systemctl stop meterd`), then migrate",
            socket.display()
        );
    }
    let caller = Caller::of_process();
    match access::local_role(&env.config.access, &caller, local::store_owner(&env.data_dir)) {
        Some(Role::Admin) => {}
        _ => bail!(
            "refused: moving the store is for admins (root, or the store's owner); {} is not one",
            caller.describe()
        ),
    }
    let source = RedbStore::open_dir_read_only(&env.data_dir)
        .with_context(|| format!("opening the store in {}", env.data_dir.display()))?;
    let mut config = env.config.store.clone();
    config.url = Some(to.to_owned());
    let target = crate::store::postgres::PgStore::open(&config)?;
    println!(
        "copying {} into {}",
        env.data_dir.join(STORE_FILE).display(),
        target.target()
    );
    let mut last = (String::new(), std::time::Instant::now());
    let report = target.copy_from(&source, &mut |table, done, total| {
        // One line per table, and one every few seconds on a long one.
        if last.0 != table || done == total || last.1.elapsed() > std::time::Duration::from_secs(5) {
            println!("  {table}: {done} of {total}");
            last = (table.to_owned(), std::time::Instant::now());
        }
    })?;
    if report.resumed {
        println!("(an interrupted copy was resumed)");
    }
    println!("{:<22} {:>12} {:>12}", "table", "source", "copy");
    for t in &report.tables {
        let mark = if t.source == t.target { "" } else { "  MISMATCH" };
        println!("{:<22} {:>12} {:>12}{mark}", t.table, t.source, t.target);
    }
    if !report.ok() {
        bail!("the copy does not match the source (rows per table above); the embedded store is unchanged");
    }
    let audit = crate::review::verify(&target)?;
    if !audit.ok() {
        bail!(
            "the copy's audit trail is NOT intact ({} problem(s)); the embedded store is unchanged",
            audit.problems.len()
        );
    }
    println!(
        "copied and verified: every table, audit trail intact ({} entries). To run on it, set [store] url = \"{}\" \
         in the configuration; the embedded store in {} stays as it was.",
        audit.found,
        crate::store::postgres::redact_url(to),
        env.data_dir.display()
    );
    Ok(())
}
