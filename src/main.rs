//! The `meterd` binary: parse the command line, run it, report errors on stderr.

use clap::Parser;

fn main() {
    let cli = meterd::cli::Cli::parse();
    if let Err(e) = meterd::cli::run(cli) {
        eprintln!("meterd: error: {e:#}");
        std::process::exit(1);
    }
}
