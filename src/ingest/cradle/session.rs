//! One docking: the tokio driver pumping bytes between a port and the sans-IO [`Host`].
//!
//! Reads are committed in groups while the unload goes on (one commit task at a time, the
//! next group gathers meanwhile), each group with the recorder's watermark in the same
//! transaction; only after a commit returned is the host told [`Host::committed`], the one
//! path to CLEAR. A port that returns 0 bytes or an error ends the session as `LinkLost`;
//! whatever was committed stays, the recorder keeps everything, and the next docking resumes
//! after the watermark.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use meterd_protocols::cradle::{
    DeviceInfo, Host, HostConfig, HostEvent, LineTiming, Phase, ReadRecord, Route, SessionFailure, SessionSummary,
};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::convert::{self, Left, Unloaded};
use crate::ingest::{AcceptReport, accept_reads_with};
use crate::model::{QuarantineEntry, RouteLoad, RouteSkip};
use crate::store::{ReadTxn, Rules, Store};
use crate::vee::VeeConfig;

/// How to run a session.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub timing: LineTiming,
    /// Names the port in quarantine entries and logs.
    pub port: String,
    /// Timezone of the recorders' clocks (local civil time); the system's by default.
    pub timezone: TimeZone,
    /// A recorder that finished a session on this port and has not left the cradle since:
    /// if it answers again, the session stops right after HELLO (no unload, no CLEAR, no
    /// load), so a recorder left in its cradle is not cleared and reloaded over and over.
    pub hold_off: Option<String>,
    /// The session nonce; a fresh random one when `None` (set only to replay a capture).
    pub nonce: Option<u32>,
}

impl SessionOptions {
    pub fn new(port: &str, timing: LineTiming) -> Self {
        SessionOptions {
            timing,
            port: port.to_owned(),
            timezone: TimeZone::system(),
            hold_off: None,
            nonce: None,
        }
    }
}

/// Watches a session (progress bar, tests, benchmark). Every method has a default.
pub trait Observer: Send {
    /// Every host event, with the time since the session started.
    fn event(&mut self, _event: &HostEvent, _elapsed: Duration) {}
    /// After every step: phase, reads received, reads the recorder announced.
    fn progress(&mut self, _phase: Phase, _received: u32, _announced: u32) {}
}

impl Observer for () {}

/// What a docking did. Everything counted here is committed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SessionReport {
    pub port: String,
    pub device: Option<DeviceInfo>,
    /// `None` while running; the summary on success.
    pub finished: Option<SessionSummary>,
    /// Why the session ended early (link lost, protocol violation, cancelled).
    pub failure: Option<String>,
    pub accepted: AcceptReport,
    /// Meters skipped (skip code or blank) recorded.
    pub skips: u64,
    /// Records or messages quarantined.
    pub quarantined: u64,
    /// Reads the recorder deleted after the commit (`None`: not cleared).
    pub cleared: Option<u32>,
    pub routes_loaded: Vec<String>,
    pub routes_refused: Vec<(String, String)>,
    /// Meters left out of the loaded routes, with the reason.
    pub meters_left_out: Vec<(String, String)>,
    pub clock_set: Option<i64>,
    pub cancelled: bool,
    /// The session stopped after HELLO: the recorder was served already and never left.
    pub still_docked: bool,
}

/// Outcome of one group commit.
struct Committed {
    report: AcceptReport,
    skips: u64,
    quarantined: u64,
    last: u32,
}

/// Which routes go into recorder `serial`: its assigned routes; without any, the route not
/// loaded on another device and not assigned elsewhere that was loaded least recently
/// (never-loaded routes first, by id). Routes are filled up to `capacity` meters.
pub fn choose_routes(
    txn: &dyn ReadTxn,
    vee: &VeeConfig,
    serial: &str,
    capacity: u32,
    now: Timestamp,
) -> crate::store::Result<(Vec<Route>, Vec<Left>)> {
    let assignments = txn.route_assignments()?;
    let mine: Vec<String> = assignments
        .iter()
        .filter(|(_, s)| s == serial)
        .map(|(r, _)| r.clone())
        .collect();
    let candidates = if mine.is_empty() {
        let loads = txn.route_loads()?;
        let mut all: Vec<String> = txn.meters()?.into_iter().map(|m| m.route).collect();
        all.sort();
        all.dedup();
        let busy = |r: &str| {
            assignments.iter().any(|(a, _)| a == r)
                || loads
                    .iter()
                    .any(|l| l.route == r && l.is_loaded() && l.serial != serial)
        };
        let last_load = |r: &str| loads.iter().filter(|l| l.route == r).map(|l| l.loaded_at).max();
        let mut free: Vec<(Option<Timestamp>, String)> = all
            .into_iter()
            .filter(|r| !busy(r) && convert::route_id_fits(r))
            .map(|r| (last_load(&r), r))
            .collect();
        free.sort();
        free.into_iter().take(1).map(|(_, r)| r).collect()
    } else {
        mine
    };
    let mut routes = Vec::new();
    let mut left = Vec::new();
    let mut room = capacity as usize;
    for id in candidates {
        if !convert::route_id_fits(&id) {
            left.push(Left {
                meter_id: String::new(),
                reason: format!("route id {id:?} does not fit a recorder (1-10 printable characters)"),
            });
            continue;
        }
        let (route, l) = convert::build_route(txn, vee, &id, now)?;
        left.extend(l);
        if route.meters.is_empty() {
            continue;
        }
        if route.meters.len() > room {
            left.push(Left {
                meter_id: String::new(),
                reason: format!(
                    "route {id}: {} meters exceed the recorder's free capacity {room}",
                    route.meters.len()
                ),
            });
            continue;
        }
        room -= route.meters.len();
        routes.push(route);
    }
    Ok((routes, left))
}

/// Map, quarantine and commit one group of records with the watermark, in one transaction.
fn commit_group(
    store: &dyn Store,
    vee: &VeeConfig,
    opts: &SessionOptions,
    serial: &str,
    session: &str,
    records: &[ReadRecord],
) -> anyhow::Result<Committed> {
    let last = records
        .last()
        .map(|r| r.seq)
        .ok_or_else(|| anyhow::anyhow!("empty group"))?;
    let meters = {
        let txn = store.begin_read()?;
        let ids: Vec<&str> = records.iter().map(|r| r.meter_id.as_str()).collect();
        txn.meters_by_id(&ids)?
    };
    let mut reads = Vec::new();
    let mut skips: Vec<RouteSkip> = Vec::new();
    let mut bad = Vec::new();
    let now = Timestamp::now();
    for (r, m) in records.iter().zip(&meters) {
        match convert::unloaded(r, m.as_ref(), serial, session, &opts.timezone) {
            Ok(Unloaded::Read(read)) => reads.push(*read),
            Ok(Unloaded::Skip(s)) => skips.push(s),
            Err(reason) => bad.push(QuarantineEntry {
                source: format!("cradle {} recorder {serial} seq {}", opts.port, r.seq),
                reason,
                payload: serde_json::to_vec(r)?,
                received_at: now,
            }),
        }
    }
    let (n_skips, n_bad) = (skips.len() as u64, bad.len() as u64);
    let report = accept_reads_with(store, vee, reads, |txn| {
        for s in &skips {
            txn.put_route_skip(s)?;
        }
        for q in &bad {
            txn.quarantine(q)?;
        }
        txn.set_cradle_watermark(serial, last)
    })?;
    // Durable now: every record became a read, a duplicate, a route skip or a quarantine entry.
    let [read, held, duplicate] = report.outcomes();
    crate::metrics::frames_add(
        "cradle",
        &[read, held, duplicate, ("skipped", n_skips), ("quarantined", n_bad)],
    );
    Ok(Committed {
        report,
        skips: n_skips,
        quarantined: n_bad,
        last,
    })
}

fn store_blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    f: impl FnOnce(&dyn Store) -> anyhow::Result<T> + Send + 'static,
) -> impl std::future::Future<Output = anyhow::Result<T>> {
    let store = Arc::clone(store);
    async move { tokio::task::spawn_blocking(move || f(store.as_ref())).await? }
}

/// Run one docking over `port` until the session finishes, fails, or `cancel` fires (then
/// the session is abandoned without CLEAR; committed reads stay). Errors are store failures;
/// a failed session is reported in [`SessionReport::failure`].
pub async fn run_session<P>(
    port: P,
    store: Arc<dyn Store>,
    vee: Arc<VeeConfig>,
    opts: SessionOptions,
    cancel: CancellationToken,
    observer: &mut dyn Observer,
) -> anyhow::Result<SessionReport>
where
    P: AsyncRead + AsyncWrite + Send,
{
    let started = Instant::now();
    let nonce: u32 = opts.nonce.unwrap_or_else(rand::random);
    let session = format!("{nonce:08x}");
    let clock = convert::local_civil_now(&opts.timezone);
    let mut host = Host::new(HostConfig::new(opts.timing, nonce, clock), Duration::ZERO);
    let (mut rd, mut wr) = tokio::io::split(port);
    let mut buf = vec![0u8; 8192];
    let mut report = SessionReport {
        port: opts.port.clone(),
        ..SessionReport::default()
    };
    let mut pending: Vec<ReadRecord> = Vec::new();
    let mut committing: Option<JoinHandle<anyhow::Result<Committed>>> = None;
    let mut serial = String::new();
    let mut done = false;
    let opts = Arc::new(opts);
    let session_start = Timestamp::now();
    let mut reservations: Vec<RouteLoad> = Vec::new();

    let start_commit = |pending: &mut Vec<ReadRecord>, serial: &str| -> JoinHandle<anyhow::Result<Committed>> {
        let records = std::mem::take(pending);
        let (store, vee, opts, serial, session) = (
            Arc::clone(&store),
            Arc::clone(&vee),
            Arc::clone(&opts),
            serial.to_owned(),
            session.clone(),
        );
        tokio::task::spawn_blocking(move || commit_group(store.as_ref(), &vee, &opts, &serial, &session, &records))
    };

    loop {
        let now = started.elapsed();
        while let Some(event) = host.poll_event() {
            observer.event(&event, started.elapsed());
            match event {
                HostEvent::Docked(info) if opts.hold_off.as_deref() == Some(info.serial.as_str()) => {
                    tracing::debug!(port = %opts.port, serial = %info.serial, "recorder still docked since its last session");
                    report.device = Some(info);
                    report.still_docked = true;
                    done = true;
                }
                HostEvent::Docked(info) => {
                    serial = info.serial.clone();
                    tracing::info!(port = %opts.port, serial = %info.serial, firmware = ?info.firmware, pending = info.reads_pending, "recorder docked");
                    // Choose and reserve the routes in one write transaction: two cradles
                    // docking at once never get the same unassigned route.
                    let (s, cap, v) = (info.serial.clone(), info.capacity, Arc::clone(&vee));
                    let (after, routes, left, reserved) = store_blocking(&store, move |st| {
                        crate::store::write(st, |txn| -> anyhow::Result<_> {
                            let after = txn.cradle_watermark(&s)?;
                            let now = Timestamp::now();
                            let (routes, left) = choose_routes(&*txn, &v, &s, cap, now)?;
                            let mut reserved = Vec::new();
                            for r in &routes {
                                let load = RouteLoad {
                                    route: r.id.clone(),
                                    serial: s.clone(),
                                    loaded_at: now,
                                    meters: r.meters.len() as u32,
                                    cleared_at: None,
                                };
                                txn.put_route_load(&load)?;
                                reserved.push(load);
                            }
                            Ok((after, routes, left, reserved))
                        })
                    })
                    .await?;
                    report.device = Some(info);
                    report.meters_left_out = left.into_iter().map(|l| (l.meter_id, l.reason)).collect();
                    reservations = reserved;
                    if let Err(e) = host.unload(after) {
                        tracing::warn!(port = %opts.port, error = %e, "unload refused");
                    } else if let Err(e) = host.load(routes) {
                        // A route the recorder cannot take: load nothing rather than fail the unload.
                        tracing::warn!(port = %opts.port, error = %e, "route load refused; loading none");
                        report.meters_left_out.push((String::new(), e.to_string()));
                        let _ = host.load(Vec::new());
                    }
                }
                HostEvent::ReadsReceived { reads, .. } => pending.extend(reads),
                HostEvent::UnloadComplete { received, .. } => {
                    tracing::info!(port = %opts.port, serial = %serial, received, "unload complete");
                }
                HostEvent::Cleared { deleted, .. } => {
                    report.cleared = Some(deleted);
                    let s = serial.clone();
                    store_blocking(&store, move |st| {
                        crate::store::write(st, |txn| -> anyhow::Result<()> {
                            let now = Timestamp::now();
                            // Loads from earlier sessions: the routes the recorder just deleted.
                            for mut l in txn
                                .route_loads()?
                                .into_iter()
                                .filter(|l| l.serial == s && l.is_loaded() && l.loaded_at < session_start)
                            {
                                l.cleared_at = Some(now);
                                txn.put_route_load(&l)?;
                            }
                            Ok(())
                        })
                    })
                    .await?;
                }
                HostEvent::RouteLoaded { route_id, .. } => report.routes_loaded.push(route_id),
                HostEvent::RouteRefused { route_id, reason } => report.routes_refused.push((route_id, reason)),
                HostEvent::ClockSet { now, .. } => report.clock_set = Some(now),
                HostEvent::Quarantined { payload, error } => {
                    let entry = QuarantineEntry {
                        source: format!("cradle {} recorder {serial}", opts.port),
                        reason: error,
                        payload,
                        received_at: Timestamp::now(),
                    };
                    store_blocking(&store, move |st| {
                        crate::store::write(st, |txn| -> anyhow::Result<()> {
                            txn.quarantine(&entry)?;
                            Ok(())
                        })
                    })
                    .await?;
                    crate::metrics::frames_add("cradle", &[("quarantined", 1)]);
                    report.quarantined += 1;
                }
                HostEvent::Finished(summary) => {
                    report.finished = Some(summary);
                    done = true;
                }
                HostEvent::Failed(why) => {
                    report.failure = Some(why.to_string());
                    done = true;
                }
            }
        }
        if committing.is_none() && !pending.is_empty() {
            committing = Some(start_commit(&mut pending, &serial));
        }
        let (received, announced) = host.unload_progress();
        observer.progress(host.phase(), received, announced);
        if report.still_docked {
            break;
        }
        let mut write_failed = false;
        while let Some(bytes) = host.poll_transmit(now) {
            if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                write_failed = true;
                break;
            }
        }
        if write_failed {
            host.link_lost();
            continue;
        }
        if done {
            break;
        }
        let deadline = host.poll_timeout().map(|d| started + d);
        tokio::select! {
            () = cancel.cancelled() => {
                report.cancelled = true;
                report.failure = Some("cancelled".into());
                break;
            }
            joined = async { committing.as_mut().expect("guarded").await }, if committing.is_some() => {
                committing = None;
                let c = joined??;
                report.accepted.absorb(c.report);
                report.skips += c.skips;
                report.quarantined += c.quarantined;
                // The durable commit returned: only now may the recorder be told to clear.
                if let Err(e) = host.committed(c.last) {
                    tracing::warn!(port = %opts.port, error = %e, "commit not accepted by the session");
                }
            }
            n = rd.read(&mut buf) => match n {
                Ok(0) | Err(_) => host.link_lost(),
                Ok(n) => host.handle_bytes(&buf[..n], started.elapsed()),
            },
            () = async { tokio::time::sleep_until(deadline.expect("guarded")).await }, if deadline.is_some() => {
                host.handle_timeout(started.elapsed());
            }
        }
    }
    // Reads received but not yet committed are still stored (their recorder is not cleared:
    // the session is over), so the next docking does not need to carry them again.
    if let Some(c) = committing.take() {
        let c = c.await??;
        report.accepted.absorb(c.report);
        report.skips += c.skips;
        report.quarantined += c.quarantined;
    }
    if !pending.is_empty() {
        let c = start_commit(&mut pending, &serial).await??;
        report.accepted.absorb(c.report);
        report.skips += c.skips;
        report.quarantined += c.quarantined;
    }
    // Reserved routes the recorder did not take are not loaded anywhere.
    let unused: Vec<RouteLoad> = reservations
        .into_iter()
        .filter(|l| !report.routes_loaded.contains(&l.route))
        .collect();
    if !unused.is_empty() {
        store_blocking(&store, move |st| {
            crate::store::write(st, |txn| -> anyhow::Result<()> {
                for l in &unused {
                    txn.remove_route_load(l)?;
                }
                Ok(())
            })
        })
        .await?;
    }
    match (&report.finished, &report.failure) {
        (Some(_), _) => {
            tracing::info!(port = %opts.port, serial = %serial, reads = report.accepted.imported, "session finished")
        }
        // An empty cradle is polled every few seconds: not worth a warning each time.
        (None, Some(_)) if nobody_docked(&report) => tracing::debug!(port = %opts.port, "no recorder in the cradle"),
        // Shut down while polling an empty cradle: nothing was interrupted.
        (None, Some(_)) if report.cancelled && report.device.is_none() => {
            tracing::debug!(port = %opts.port, "stopped polling")
        }
        (None, Some(f)) => tracing::warn!(port = %opts.port, serial = %serial, failure = %f, "session ended early"),
        _ => {}
    }
    Ok(report)
}

/// `true` when the failure means nobody is on the line (no SYNC answer): the daemon then
/// waits quietly instead of logging a failed session.
pub fn nobody_docked(report: &SessionReport) -> bool {
    report.device.is_none() && report.failure.as_deref() == Some(&SessionFailure::NoAnswer.to_string())
}
