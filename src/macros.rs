//! `say!` and `note!`: how commands write their output.
//!
//! Commands never print directly: they write through a console (the CLI's `Env`, the API's
//! `Ctx`), so the same code prints to this process's stdout or, inside the daemon, into frames
//! the client prints. Anything with `out()`/`err()` returning a writer works.

/// Writes one line to the command's standard output (`say!(ctx, "...")`).
macro_rules! say {
    ($env:expr) => {{
        use std::io::Write as _;
        writeln!($env.out())?;
    }};
    ($env:expr, $($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!($env.out(), $($arg)*)?;
    }};
}

/// Writes one line to the command's standard error (progress, warnings).
macro_rules! note {
    ($env:expr, $($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!($env.err(), $($arg)*)?;
    }};
}
