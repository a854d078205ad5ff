//! `meterd poll probe|mbus`: read meters over a serial port in the foreground (a meter
//! reader's optical probe, an M-Bus segment), store the reads through VEE, print what was read.
//!
//! Output: one JSON object per decoded frame (NDJSON, the `meterd decode` shape) on stdout; a
//! summary of the session and of what was committed on stderr. Exit code 1 when nothing could be
//! read or something had to be quarantined.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use meterd_protocols::mbus::link::SecondaryAddress;
use tokio_util::sync::CancellationToken;

use super::Env;
use crate::ingest::meterbus::config::MbusTiming;
use crate::ingest::meterbus::{Capture, Delivered, MeterbusIngest, mbus, probe};

/// `meterd poll ...` (`meterd read ...` before: `read` stays an alias).
#[derive(Debug, Subcommand)]
pub enum PollCmd {
    /// One IEC 62056-21 probe session (300 baud 7E1 sign-on, baud switch, readout, BCC).
    Probe(ProbeArgs),
    /// Poll M-Bus slaves on a segment (2400 8E1) by primary or secondary address, or scan it.
    Mbus(MbusArgs),
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Serial port of the optical head.
    #[arg(long, value_name = "PATH")]
    pub port: PathBuf,
    /// Meter-type profile from `[meterbus.profiles]` (defaults: mode C, switch to the proposed rate).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Add and check 7E1 parity in software on an 8N1 port (pseudo-terminals, some USB heads).
    #[arg(long)]
    pub software_parity: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).multiple(true).args(["address", "secondary", "scan"])))]
pub struct MbusArgs {
    /// Serial port of the M-Bus master (level converter).
    #[arg(long, value_name = "PATH")]
    pub port: PathBuf,
    /// Read the slave at this primary address (0..=250). Repeatable.
    #[arg(long, value_name = "N")]
    pub address: Vec<u8>,
    /// Read the slave with this secondary address (8-digit id, or 16 characters). Repeatable.
    #[arg(long, value_name = "ID")]
    pub secondary: Vec<String>,
    /// Scan the segment by secondary address, then read every slave found.
    #[arg(long)]
    pub scan: bool,
    /// Line speed.
    #[arg(long, default_value_t = 2400)]
    pub baud: u32,
    /// Answer timeout in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub timeout_ms: u64,
    /// Repeats of an unanswered or corrupt request.
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
}

pub fn run(env: &Env, cmd: PollCmd) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match cmd {
        PollCmd::Probe(args) => runtime.block_on(poll_probe(env, args)),
        PollCmd::Mbus(args) => runtime.block_on(poll_mbus(env, args)),
    }
}

pub(super) fn ingest(env: &Env) -> anyhow::Result<MeterbusIngest> {
    let store = env.open_store()?;
    Ok(MeterbusIngest {
        store,
        vee: env.config.vee.clone(),
        intervals: env.config.intervals.clone(),
        meters: Arc::new(env.config.meterbus.meters.clone()),
    })
}

/// Prints decoded frames (stdout) and what was committed (stderr).
pub(super) fn report(env: &Env, captures: &[Capture], delivered: &Delivered) -> anyhow::Result<()> {
    for c in captures {
        if let Capture::Frame { decoded, .. } = c {
            say!(env, "{}", serde_json::to_string(decoded)?);
        }
    }
    let r = &delivered.report;
    note!(
        env,
        "committed {} reads ({} validated, {} held for review, {} duplicates skipped)",
        r.imported,
        r.validated,
        r.flagged,
        r.duplicates_skipped
    );
    for read in &delivered.reads {
        note!(env, "read {} = {} ({})", read.meter_id, read.value, read.origin.locator);
    }
    for q in &delivered.quarantined {
        note!(env, "quarantined {q}");
    }
    Ok(())
}

async fn poll_probe(env: &Env, args: ProbeArgs) -> anyhow::Result<()> {
    let mut cfg = env
        .config
        .meterbus
        .profile(args.profile.as_deref())
        .map_err(anyhow::Error::msg)?;
    if args.software_parity {
        cfg.software_parity = true;
    }
    let ingest = ingest(env)?;
    let cancel = CancellationToken::new();
    let ctrl_c = cancel.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        ctrl_c.cancel();
    });
    let result = probe::read_once(&args.port, cfg, &cancel).await?;
    match &result.outcome {
        Ok(r) => note!(
            env,
            "identification /{} read at {} baud{}{}",
            r.identification.text(),
            r.baud,
            if r.fell_back_to_300 {
                "; the meter ignored the rate it proposed, read at 300 baud (set baud_switch = false in its profile)"
            } else {
                ""
            },
            if r.naks > 0 {
                format!("; {} block(s) repeated after a bad BCC", r.naks)
            } else {
                String::new()
            }
        ),
        Err(e) => note!(env, "probe session failed: {e}"),
    }
    let port = args.port.display().to_string();
    let captures = vec![result.capture()];
    let delivered = ingest.deliver(&port, captures.clone()).await?;
    report(env, &captures, &delivered)?;
    if result.outcome.is_err() || !delivered.quarantined.is_empty() {
        bail!("{port}: the meter was not read");
    }
    Ok(())
}

async fn poll_mbus(env: &Env, args: MbusArgs) -> anyhow::Result<()> {
    let ingest = ingest(env)?;
    let timing = MbusTiming {
        response_timeout_ms: args.timeout_ms,
        retries: args.retries,
        ..MbusTiming::default()
    };
    let port = mbus::open(&args.port, args.baud)?;
    let mut master = mbus::Master::new(port, timing);
    let mut secondaries: Vec<SecondaryAddress> = args
        .secondary
        .iter()
        .map(|s| s.parse().with_context(|| format!("--secondary {s}")))
        .collect::<anyhow::Result<_>>()?;
    if args.scan {
        let report = master
            .scan(SecondaryAddress::id_pattern("FFFFFFFF").expect("wildcards"))
            .await?;
        note!(
            env,
            "scan: {} slave(s) found with {} selections",
            report.found.len(),
            report.probes
        );
        for a in &report.found {
            note!(env, "found {a}");
        }
        for a in &report.unresolved {
            note!(env, "unresolved: several slaves share {a}");
        }
        secondaries.extend(report.found);
    }
    let name = args.port.display().to_string();
    let mut failures = 0;
    let mut all = Vec::new();
    for &a in &args.address {
        match master.read_primary(a).await {
            Ok(c) => all.extend(c),
            Err(e) => {
                failures += 1;
                note!(env, "address {a}: {e}");
            }
        }
    }
    for a in &secondaries {
        match master.read_secondary(a).await {
            Ok(c) => all.extend(c),
            Err(e) => {
                failures += 1;
                note!(env, "secondary {a}: {e}");
            }
        }
    }
    let delivered = ingest.deliver(&name, all.clone()).await?;
    report(env, &all, &delivered)?;
    if failures > 0 || !delivered.quarantined.is_empty() {
        bail!(
            "{name}: {failures} slave(s) did not answer, {} frame(s) quarantined",
            delivered.quarantined.len()
        );
    }
    if all.is_empty() {
        bail!("{name}: no slave read");
    }
    Ok(())
}
