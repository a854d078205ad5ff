//! The `meterd` binary: parse the command line, run it (or forward it to the running daemon),
//! exit with its status.

fn main() {
    std::process::exit(meterd::cli::main(std::env::args().collect()));
}
