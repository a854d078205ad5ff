//! `meterd check-config [--config FILE]`: is the configuration usable, and what does it say once
//! every default is filled in?

use clap::Args;

use super::Env;

/// Arguments of `meterd check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// Only validate; do not print the effective configuration.
    #[arg(long, short)]
    quiet: bool,
}

/// Syntax and values were checked when the file was loaded (an error there names the line);
/// here the files it refers to are checked, a PostgreSQL store connected to (without changing
/// it), then the effective configuration printed.
pub fn run(env: &Env, args: CheckConfigArgs) -> anyhow::Result<()> {
    let shown = env
        .config_path
        .as_ref()
        .map_or_else(|| "(no file: defaults)".to_owned(), |p| p.display().to_string());
    let problems = env.config.check_files();
    if !problems.is_empty() {
        for p in &problems {
            note!(env, "{shown}: {p}");
        }
        anyhow::bail!("{shown}: {} problem(s) with referenced files", problems.len());
    }
    // A PostgreSQL store: can meterd reach it, log in, and use its schema? (Read only: the
    // schema is created or upgraded by `meterd run`.)
    if env.config.store.is_postgres() {
        match crate::store::postgres::PgEngine::probe(&env.config.store) {
            Ok(p) => note!(
                env,
                "{shown}: store {}: PostgreSQL {}, schema version {} (this meterd: {}{})",
                p.target,
                p.server_version,
                p.schema_version,
                crate::store::postgres::SCHEMA_VERSION,
                if p.schema_version < crate::store::postgres::SCHEMA_VERSION {
                    "; created or upgraded when meterd starts"
                } else {
                    ""
                }
            ),
            Err(e) => {
                note!(env, "{shown}: {e}");
                anyhow::bail!("{shown}: the store in [store] is not usable");
            }
        }
    }
    if !args.quiet {
        say!(
            env,
            "# effective configuration from {shown}; data directory {}",
            env.data_dir.display()
        );
        say!(env, "# (defaults filled in, secrets redacted)");
        say!(env, "{}", env.config.effective_toml().trim_end());
    }
    note!(env, "{shown}: OK");
    Ok(())
}
