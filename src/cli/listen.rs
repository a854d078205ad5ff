//! `meterd listen p1`: listen to a DSMR P1 port in the foreground, store every telegram's
//! register through VEE, quarantine refused telegrams and the noise between them.
//! Prints each decoded telegram as JSON (stdout) and what was committed (stderr).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::{Args, Subcommand};
use tokio_util::sync::CancellationToken;

use super::Env;
use super::poll::{ingest, report};
use crate::ingest::meterbus::{line, p1};

/// `meterd listen ...`
#[derive(Debug, Subcommand)]
pub enum ListenCmd {
    /// A DSMR P1 port (115200 8N1 for DSMR 4/5, 9600 7E1 for 2.2/3).
    P1(P1Args),
}

#[derive(Debug, Args)]
pub struct P1Args {
    /// Serial port of the P1 cable.
    #[arg(long, value_name = "PATH")]
    pub port: PathBuf,
    /// DSMR version of the meter: 5, 4, 3 or 2.2 (sets the serial settings).
    #[arg(long, default_value = "5")]
    pub dsmr: String,
    /// Stop after this many telegrams (0 = until Ctrl-C or the port closes).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// Store at most one read per meter this often, in seconds (0 = every telegram).
    #[arg(long, default_value_t = 0)]
    pub store_every_secs: u64,
}

pub fn run(env: &Env, cmd: ListenCmd) -> anyhow::Result<()> {
    let ListenCmd::P1(args) = cmd;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(listen_p1(env, args))
}

async fn listen_p1(env: &Env, args: P1Args) -> anyhow::Result<()> {
    let (baud, format) = line::p1_settings(&args.dsmr).map_err(anyhow::Error::msg)?;
    let ingest = ingest(env)?;
    let mut port = line::open(&args.port, baud, format)?;
    let name = args.port.display().to_string();
    let cancel = CancellationToken::new();
    let ctrl_c = cancel.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        ctrl_c.cancel();
    });
    let mut listener = p1::Listener::new(Duration::from_secs(args.store_every_secs));
    let telegrams = Arc::new(AtomicU64::new(0));
    let stopped = p1::listen(&mut port, &mut listener, &cancel, |captures| {
        let ingest = ingest.clone();
        let name = name.clone();
        let telegrams = telegrams.clone();
        let count = args.count;
        async move {
            let seen = captures.iter().filter(|c| !c.locator().starts_with("between")).count() as u64;
            let delivered = ingest.deliver(&name, captures.clone()).await?;
            report(env, &captures, &delivered)?;
            let total = telegrams.fetch_add(seen, Ordering::SeqCst) + seen;
            Ok(count == 0 || total < count)
        }
    })
    .await?;
    note!(
        env,
        "{name}: {} telegram(s) received; {}",
        listener.telegrams(),
        match stopped {
            p1::Stopped::Cancelled => "stopped",
            p1::Stopped::PortClosed => "the port closed",
        }
    );
    Ok(())
}
