//! `meterd dock --port PATH [--baud N] [--turnaround-ms N] [--json]`: one docking in the
//! foreground, for a clerk at a desk: progress bar on stderr, summary on stdout.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use meterd_protocols::cradle::{HostEvent, LineTiming, Phase};
use tokio_util::sync::CancellationToken;

use super::Env;
use crate::api::commands::output::print_json;
use crate::ingest::cradle::daemon::open_port;
use crate::ingest::cradle::{Observer, SessionOptions, SessionReport, run_session};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct DockArgs {
    /// Serial device of the cradle.
    #[arg(long, value_name = "PATH")]
    pub port: PathBuf,
    #[arg(long, default_value_t = 115_200)]
    pub baud: u32,
    /// The recorder's turnaround, a hint for the retransmission timer.
    #[arg(long, default_value_t = 10)]
    pub turnaround_ms: u64,
    /// Print the session report as JSON.
    #[arg(long)]
    pub json: bool,
}

struct Bar(ProgressBar);

impl Observer for Bar {
    fn event(&mut self, event: &HostEvent, _elapsed: Duration) {
        if let HostEvent::Docked(d) = event {
            self.0
                .set_message(format!("{} {} fw {}", d.serial, d.model, d.firmware_version));
        }
    }
    fn progress(&mut self, phase: Phase, received: u32, announced: u32) {
        self.0.set_length(u64::from(announced.max(received)));
        self.0.set_position(u64::from(received));
        self.0.set_prefix(format!("{phase:?}"));
    }
}

pub fn run(env: &Env, args: DockArgs) -> anyhow::Result<()> {
    let store = env.open_store()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let bar = ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} reads  {msg}")?.progress_chars("=> "),
    );
    let mut observer = Bar(bar.clone());
    let timing = LineTiming::new(args.baud, Duration::from_millis(args.turnaround_ms));
    let shown = args.port.display().to_string();
    let vee = Arc::new(env.config.vee.clone());
    let report: SessionReport = runtime.block_on(async {
        let port = open_port(&args.port, args.baud).map_err(|e| anyhow::anyhow!("cannot open {shown}: {e}"))?;
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                c.cancel();
            }
        });
        let store: Arc<dyn Store> = store;
        run_session(
            port,
            store,
            vee,
            SessionOptions::new(&shown, timing),
            cancel,
            &mut observer,
        )
        .await
    })?;
    bar.finish_and_clear();
    if args.json {
        print_json(env, &report)?;
    } else {
        print_summary(env, &report)?;
    }
    match (&report.finished, &report.failure) {
        (Some(_), _) => Ok(()),
        (None, f) => anyhow::bail!(
            "session on {shown} ended early: {}; committed reads stay, the recorder was not cleared",
            f.as_deref().unwrap_or("unknown")
        ),
    }
}

/// The session in a few lines.
pub fn print_summary(env: &Env, r: &SessionReport) -> anyhow::Result<()> {
    match &r.device {
        Some(d) => say!(
            env,
            "recorder {} ({} firmware {}, {:?}) on {}",
            d.serial,
            d.model,
            d.firmware_version,
            d.firmware,
            r.port
        ),
        None => say!(env, "no recorder answered on {}", r.port),
    }
    let a = &r.accepted;
    say!(
        env,
        "  unloaded  {} reads stored ({} validated, {} held for review, {} duplicates skipped), {} skipped meters, {} quarantined",
        a.imported,
        a.validated,
        a.flagged,
        a.duplicates_skipped,
        r.skips,
        r.quarantined
    );
    if !a.by_rule.is_empty() {
        let rules: Vec<String> = a.by_rule.iter().map(|(k, v)| format!("{k} {v}")).collect();
        say!(env, "  VEE flags {}", rules.join(", "));
    }
    match r.cleared {
        Some(n) => say!(env, "  cleared   {n} reads deleted from the recorder after the commit"),
        None => say!(env, "  cleared   no (the recorder keeps its reads)"),
    }
    say!(
        env,
        "  loaded    {}",
        if r.routes_loaded.is_empty() {
            "no route".to_owned()
        } else {
            r.routes_loaded.join(", ")
        }
    );
    for (route, why) in &r.routes_refused {
        say!(env, "  refused   route {route}: {why}");
    }
    for (meter, why) in &r.meters_left_out {
        say!(env, "  left out  {meter} {why}");
    }
    if let Some(s) = &r.finished {
        say!(
            env,
            "  link      {} frames sent, {} retransmissions, {} NAKs received, {} rejected frames",
            s.link.frames_sent,
            s.link.retransmissions,
            s.link.naks_received,
            s.link.frames_rejected
        );
    }
    if let Some(f) = &r.failure {
        say!(env, "  ended     early: {f}");
    }
    Ok(())
}
