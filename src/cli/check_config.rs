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
/// here the files it refers to are checked, then the effective configuration printed.
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
