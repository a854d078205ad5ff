//! The daemon component: one task per configured port. Probes are read and M-Bus segments
//! polled every `interval_secs` (the first time at start); P1 ports are listened to
//! continuously and reopened after a pause when the device goes away. A port that cannot be
//! opened is retried; it does not stop the daemon. Every capture is committed before the next
//! request goes out, and cancellation is honoured between requests.

use std::sync::Arc;
use std::time::Duration;

use meterd_protocols::mbus::link::SecondaryAddress;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::config::MeterbusConfig;
use super::config::{MbusPort, P1Port, ProbePort};
use super::{Capture, MeterbusIngest, line, mbus, p1, probe};
use crate::store::Store;
use crate::vee::VeeConfig;
use crate::vee::interval::IntervalConfig;

/// Pause before reopening a port that failed or closed.
const REOPEN_AFTER: Duration = Duration::from_secs(5);

/// The component: every configured port of the `[meterbus]` section, over the store with the
/// VEE rules, until `token` is cancelled.
pub async fn run(
    store: Arc<dyn Store>,
    vee: VeeConfig,
    intervals: IntervalConfig,
    cfg: MeterbusConfig,
    token: CancellationToken,
) -> anyhow::Result<()> {
    let ingest = MeterbusIngest {
        store,
        vee,
        intervals,
        meters: Arc::new(cfg.meters.clone()),
    };
    let mut tasks = JoinSet::new();
    for p in cfg.probe.clone() {
        let profile = cfg.profile(p.profile.as_deref()).map_err(anyhow::Error::msg)?;
        tasks.spawn(probe_loop(p, profile, ingest.clone(), token.clone()));
    }
    for m in cfg.mbus.clone() {
        tasks.spawn(mbus_loop(m, ingest.clone(), token.clone()));
    }
    for p in cfg.p1.clone() {
        tasks.spawn(p1_loop(p, ingest.clone(), token.clone()));
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Waits `d` or until cancelled; false when cancelled.
async fn pause(d: Duration, token: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        () = token.cancelled() => false,
    }
}

async fn deliver(ingest: &MeterbusIngest, port: &str, captures: Vec<Capture>) -> anyhow::Result<()> {
    if captures.is_empty() {
        return Ok(());
    }
    let d = ingest.deliver(port, captures).await?;
    tracing::info!(
        port,
        stored = d.report.imported,
        flagged = d.report.flagged,
        quarantined = d.quarantined.len(),
        "meter reads committed"
    );
    for q in &d.quarantined {
        tracing::warn!(port, "quarantined: {q}");
    }
    Ok(())
}

async fn probe_loop(
    p: ProbePort,
    profile: meterd_protocols::iec62056_21::ProbeConfig,
    ingest: MeterbusIngest,
    token: CancellationToken,
) -> anyhow::Result<()> {
    let name = p.port.display().to_string();
    loop {
        match probe::read_once(&p.port, profile.clone(), &token).await {
            // A meter that sent nothing at all is logged, not quarantined every interval.
            Ok(result) if result.outcome.is_err() && result.received.is_empty() => {
                if let Err(e) = &result.outcome {
                    tracing::warn!(port = %name, error = %e, "no answer from the meter");
                }
            }
            Ok(result) => deliver(&ingest, &name, vec![result.capture()]).await?,
            Err(_) if token.is_cancelled() => return Ok(()),
            Err(e) => tracing::warn!(port = %name, error = %format!("{e:#}"), "probe session failed"),
        }
        if !pause(Duration::from_secs(p.interval_secs.max(1)), &token).await {
            return Ok(());
        }
    }
}

async fn mbus_loop(m: MbusPort, ingest: MeterbusIngest, token: CancellationToken) -> anyhow::Result<()> {
    let name = m.port.display().to_string();
    let mut secondaries: Vec<SecondaryAddress> = m.secondary.iter().filter_map(|s| s.parse().ok()).collect();
    let mut scanned = !m.scan;
    loop {
        let port = match mbus::open(&m.port, m.baud) {
            Ok(port) => port,
            Err(e) => {
                tracing::warn!(port = %name, error = %format!("{e:#}"), "cannot open the M-Bus port; retrying");
                if !pause(REOPEN_AFTER, &token).await {
                    return Ok(());
                }
                continue;
            }
        };
        let mut master = mbus::Master::new(port, m.timing.clone());
        if !scanned {
            let base = SecondaryAddress::id_pattern("FFFFFFFF").expect("wildcard pattern");
            let report = tokio::select! {
                r = master.scan(base) => r?,
                () = token.cancelled() => return Ok(()),
            };
            tracing::info!(port = %name, found = report.found.len(), probes = report.probes, "M-Bus scan done");
            for a in report.found {
                if !secondaries.contains(&a) {
                    secondaries.push(a);
                }
            }
            scanned = true;
        }
        // One poll of the whole segment; each slave's readout is committed before the next.
        for &a in &m.primary {
            if token.is_cancelled() {
                return Ok(());
            }
            match master.read_primary(a).await {
                Ok(captures) => deliver(&ingest, &name, captures).await?,
                Err(e) => tracing::warn!(port = %name, address = a, error = %e, "M-Bus slave not read"),
            }
        }
        for a in &secondaries {
            if token.is_cancelled() {
                return Ok(());
            }
            match master.read_secondary(a).await {
                Ok(captures) => deliver(&ingest, &name, captures).await?,
                Err(e) => tracing::warn!(port = %name, secondary = %a, error = %e, "M-Bus slave not read"),
            }
        }
        drop(master);
        if !pause(Duration::from_secs(m.interval_secs.max(1)), &token).await {
            return Ok(());
        }
    }
}

async fn p1_loop(p: P1Port, ingest: MeterbusIngest, token: CancellationToken) -> anyhow::Result<()> {
    let name = p.port.display().to_string();
    let (baud, format) = line::p1_settings(&p.dsmr).map_err(anyhow::Error::msg)?;
    loop {
        match line::open(&p.port, baud, format) {
            Ok(mut port) => {
                let mut listener = p1::Listener::new(Duration::from_secs(p.store_every_secs));
                let stopped = p1::listen(&mut port, &mut listener, &token, |captures| {
                    let ingest = ingest.clone();
                    let name = name.clone();
                    async move {
                        deliver(&ingest, &name, captures).await?;
                        Ok(true)
                    }
                })
                .await;
                match stopped {
                    Ok(p1::Stopped::Cancelled) => return Ok(()),
                    Ok(p1::Stopped::PortClosed) => tracing::warn!(port = %name, "P1 port closed; reopening"),
                    Err(e) => tracing::warn!(port = %name, error = %format!("{e:#}"), "P1 listener failed; reopening"),
                }
            }
            Err(e) => tracing::warn!(port = %name, error = %format!("{e:#}"), "cannot open the P1 port; retrying"),
        }
        if !pause(REOPEN_AFTER, &token).await {
            return Ok(());
        }
    }
}
