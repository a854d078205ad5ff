//! `meterd simulate receiver`: a wM-Bus receiver on a pseudo-terminal (iM871A, Amber, CUL
//! stick, or rtl_wmbus / rtl_433 output), for trying out `[[receiver]]` without hardware and
//! for the integration tests. The pty's device is linked from `--port`; the command prints
//! `ready PORT -> /dev/pts/N`, then one line per command heard and telegram sent, and runs
//! until SIGTERM or Ctrl-C (which "unplugs" it: the pty closes and the link goes).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use meterd_protocols::receiver::Kind;
use tokio_util::sync::CancellationToken;

use crate::cli::Env;
use crate::simulate::meter::Pty;
use crate::simulate::receiver::{self, ReceiverOptions};

#[derive(Debug, Args)]
pub struct ReceiverArgs {
    /// im871a, amber, cul, rtl_wmbus or rtl_433.
    #[arg(long)]
    pub kind: String,
    /// Path to link to the pty's device (the reader opens this).
    #[arg(long, value_name = "PATH")]
    pub port: PathBuf,
    /// A meter as ID:LITRES (8-digit id). Repeatable; default 12345678:1000.
    #[arg(long = "meter", value_name = "ID:LITRES")]
    pub meters: Vec<String>,
    /// Rounds per burst (one telegram per meter each); a burst starts when the mode is set.
    #[arg(long, default_value_t = 3)]
    pub count: u64,
    /// Milliseconds between rounds.
    #[arg(long, default_value_t = 100)]
    pub every_ms: u64,
    /// Send each telegram this many times.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Number of the first round (its access number; carry on after an unplug).
    #[arg(long, default_value_t = 0)]
    pub first_round: u64,
    /// Litres a meter's register grows per round.
    #[arg(long, default_value_t = 10)]
    pub step_litres: u32,
    /// Send one corrupt frame at the start of each burst.
    #[arg(long)]
    pub bad: bool,
}

pub fn run(env: &Env, args: ReceiverArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(simulate(env, args))
}

fn parse_meter(s: &str) -> anyhow::Result<(u32, u32)> {
    let (id, litres) = s
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("--meter {s:?}: expected ID:LITRES"))?;
    let id: u32 = id
        .parse()
        .map_err(|_| anyhow::anyhow!("--meter {s:?}: the id is not a number"))?;
    anyhow::ensure!(id < 100_000_000, "--meter {s:?}: the id has at most 8 digits");
    let litres = litres
        .parse()
        .map_err(|_| anyhow::anyhow!("--meter {s:?}: the litres are not a number"))?;
    Ok((id, litres))
}

async fn simulate(env: &Env, args: ReceiverArgs) -> anyhow::Result<()> {
    let kind: Kind = args.kind.parse().map_err(anyhow::Error::msg)?;
    let meters = if args.meters.is_empty() {
        vec![(12_345_678, 1000)]
    } else {
        args.meters
            .iter()
            .map(|m| parse_meter(m))
            .collect::<anyhow::Result<_>>()?
    };
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        crate::daemon::termination_signal().await;
        stop.cancel();
    });
    let pty = Pty::create(&args.port)?;
    let opts = ReceiverOptions {
        kind,
        meters,
        count: args.count,
        every: Duration::from_millis(args.every_ms.max(10)),
        repeat: args.repeat,
        first_round: args.first_round,
        step_litres: args.step_litres,
        bad: args.bad,
    };
    let mut say = |line: &str| {
        let mut out = env.out();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    say(&format!(
        "ready {} -> {}",
        args.port.display(),
        pty.slave_path.display()
    ));
    receiver::run(pty, opts, cancel, &mut say).await
}
