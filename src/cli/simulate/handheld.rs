//! `meterd simulate handheld --port PATH --firmware 1|2 ...`: a recorder on a pseudo-terminal.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use meterd_protocols::cradle::{Firmware, LineTiming, RecorderConfig};
use tokio_util::sync::CancellationToken;

use crate::cli::Env;
use crate::simulate::recorder::{self, DockingEnd, PtyCradle, SimulatedRecorder};

#[derive(Debug, Args)]
pub struct HandheldArgs {
    /// Path of the cradle (a symlink to the pseudo-terminal is created there).
    #[arg(long, value_name = "PATH")]
    pub port: PathBuf,
    /// Firmware generation: 1 (ASCII records, stop-and-wait) or 2 (binary, windowed).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub firmware: u8,
    #[arg(long, default_value_t = 115_200)]
    pub baud: u32,
    /// The recorder's turnaround before it answers.
    #[arg(long, default_value_t = 10)]
    pub turnaround_ms: u64,
    /// Fraction of bytes the recorder→host line corrupts (0.01 = 1 %).
    #[arg(long, default_value_t = 0.0)]
    pub corrupt_rate: f64,
    /// After a route is loaded, the recorder is out reading for this long before it can
    /// dock again; the route is read then (0: at once).
    #[arg(long, default_value_t = 0.0)]
    pub read_delay: f64,
    /// Recorder memory between runs (JSON; created when missing, saved after every docking).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Reads to take instead of generated ones (one JSON read record per line).
    #[arg(long, value_name = "FILE")]
    pub reads: Option<PathBuf>,
    /// Stop after this many dockings (0: until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub sessions: u32,
    /// Recorder serial number.
    #[arg(long, default_value = "SIM-0001")]
    pub serial: String,
    /// Seed of the reader's anomalies and of the corruption.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print every recorder event as one JSON line on stdout as it happens (`{"Cleared":
    /// {"deleted":N}}` once the recorder deleted reads on the host's CLEAR, `"Docked"`, ...).
    #[arg(long)]
    pub events: bool,
}

pub fn run(env: &Env, args: HandheldArgs) -> anyhow::Result<()> {
    if !(0.0..1.0).contains(&args.corrupt_rate) {
        anyhow::bail!("--corrupt-rate must be in 0..1, got {}", args.corrupt_rate);
    }
    if !(args.read_delay >= 0.0 && args.read_delay.is_finite()) {
        anyhow::bail!("--read-delay must be a number of seconds ≥ 0");
    }
    let firmware = if args.firmware == 1 { Firmware::V1 } else { Firmware::V2 };
    let timing = LineTiming::new(args.baud, Duration::from_millis(args.turnaround_ms));
    let data = match &args.state {
        Some(p) => recorder::load_state(p)?,
        None => Default::default(),
    };
    let mut sim = SimulatedRecorder::new(
        RecorderConfig::new(&args.serial, firmware, timing),
        data,
        args.corrupt_rate,
        args.seed,
    );
    if let Some(p) = &args.reads {
        sim.scripted_reads = Some(recorder::load_reads_file(p)?);
    }
    // Events go to a printer thread (the recorder runs on the runtime, the Env stays here).
    let (event_tx, event_rx) = std::sync::mpsc::channel::<String>();
    if args.events {
        sim.on_event = Some(Box::new(move |ev| {
            let _ = event_tx.send(serde_json::to_string(ev).unwrap_or_default());
        }));
    } else {
        drop(event_tx);
    }
    let served = std::thread::scope(|scope| {
        let printer = scope.spawn(|| -> anyhow::Result<()> {
            for line in event_rx {
                say!(env, "{line}");
                env.out().flush()?;
            }
            Ok(())
        });
        let served = serve(env, &args, &mut sim);
        // Dropping the hook ends the printer.
        sim.on_event = None;
        printer
            .join()
            .map_err(|_| anyhow::anyhow!("event printer panicked"))??;
        served
    })?;
    let d = sim.data();
    say!(
        env,
        "served {served} dockings; recorder holds {} reads and {} routes; {} bytes corrupted",
        d.reads.len(),
        d.routes.len(),
        sim.corrupted()
    );
    Ok(())
}

/// Serves dockings until `--sessions` or Ctrl-C; returns how many.
fn serve(env: &Env, args: &HandheldArgs, sim: &mut SimulatedRecorder) -> anyhow::Result<u32> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let served = runtime.block_on(async {
        // SIGINT (Ctrl-C) is caught from before the link appears: whoever sees the link may
        // interrupt at once and still get the recorder's memory saved.
        let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            if interrupt.recv().await.is_some() {
                c.cancel();
            }
        });
        let mut cradle = PtyCradle::open(Some(&args.port))?;
        note!(
            env,
            "recorder {} (firmware {}) docked at {} -> {}",
            args.serial,
            args.firmware,
            args.port.display(),
            cradle.device
        );
        let state = args.state.clone();
        let mut save_err = None;
        let mut after = |sim: &SimulatedRecorder, end: DockingEnd| {
            let d = sim.data();
            tracing::info!(?end, reads = d.reads.len(), routes = d.routes.len(), "docking over");
            if let Some(p) = &state
                && let Err(e) = recorder::save_state(p, d)
            {
                save_err = Some(e);
            }
        };
        let away = Duration::from_secs_f64(args.read_delay);
        let served = recorder::serve_pty(&mut cradle, sim, args.sessions, away, &cancel, &mut after).await?;
        if let Some(e) = save_err {
            return Err(e);
        }
        anyhow::Ok(served)
    })?;
    Ok(served)
}
