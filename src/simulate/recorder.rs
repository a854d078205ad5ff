//! A handheld recorder on the far end of a port (`meterd simulate handheld`, the demo, the
//! tests and the benchmark): the protocol crate's [`Recorder`] state machine, driven in real
//! time, with the line's behaviour added: bytes paced at the baud rate, the recorder's
//! turnaround before it answers, and byte corruption at a given rate.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use meterd_protocols::cradle::sim::{Corruptor, XorShift64, read_routes};
use meterd_protocols::cradle::{ReadRecord, Recorder, RecorderConfig, RecorderData, RecorderEvent};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Later than this after the line went free, the line counts as having been idle.
const IDLE_GAP: Duration = Duration::from_millis(5);

/// How long the recorder keeps answering after BYE (so the host gets the acknowledgement).
const LINGER: Duration = Duration::from_millis(300);

/// How a docking on the simulated recorder ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DockingEnd {
    /// The host said BYE.
    Bye,
    /// The link failed (the host went silent).
    LinkFailed,
    /// The port closed or failed under the recorder (host gone, cable pulled).
    PortClosed,
    Cancelled,
}

/// Sees every recorder event as it happens.
pub type EventHook = Box<dyn FnMut(&RecorderEvent) + Send>;

/// A recorder, its memory, its line and its reader.
pub struct SimulatedRecorder {
    recorder: Recorder,
    corruptor: Corruptor,
    rng: XorShift64,
    /// Routes loaded during the last docking, not yet read.
    pub route_loaded: bool,
    /// Reads to take from a file instead of generating them.
    pub scripted_reads: Option<Vec<ReadRecord>>,
    /// Every recorder event, for logs and tests.
    pub events: Vec<RecorderEvent>,
    /// Called with every recorder event as it happens (`meterd simulate handheld --events`).
    pub on_event: Option<EventHook>,
}

impl SimulatedRecorder {
    pub fn new(config: RecorderConfig, data: RecorderData, corrupt_rate: f64, seed: u64) -> Self {
        SimulatedRecorder {
            recorder: Recorder::new(config, data),
            corruptor: Corruptor::new(corrupt_rate, seed ^ 0x5eed),
            rng: XorShift64::new(seed.max(1)),
            route_loaded: false,
            scripted_reads: None,
            events: Vec::new(),
            on_event: None,
        }
    }

    pub fn data(&self) -> &RecorderData {
        self.recorder.data()
    }

    pub fn config(&self) -> &RecorderConfig {
        self.recorder.config()
    }

    /// The recorder's link counters (frames, retransmissions, timeouts).
    pub fn stats(&self) -> meterd_protocols::cradle::LinkStats {
        self.recorder.stats()
    }

    /// Bytes corrupted so far.
    pub fn corrupted(&self) -> u64 {
        self.corruptor.corrupted
    }

    /// The reader walks the loaded routes: scripted reads when given, else every meter read
    /// from its previous read with realistic anomalies (hi/lo re-keys, skips, trouble codes).
    /// Returns the number of reads taken.
    pub fn read_loaded_routes(&mut self, local_unix: i64) -> anyhow::Result<usize> {
        self.route_loaded = false;
        if let Some(script) = self.scripted_reads.take() {
            let n = script.len();
            for r in script {
                self.recorder.data_mut().take_read(r)?;
            }
            return Ok(n);
        }
        Ok(read_routes(self.recorder.data_mut(), &mut self.rng, local_unix)?)
    }

    /// Serve one docking over `port` until BYE, link failure, the port closing, or `cancel`.
    pub async fn serve<P: AsyncRead + AsyncWrite>(&mut self, port: P, cancel: &CancellationToken) -> DockingEnd {
        let timing = self.recorder.config().timing;
        let started = Instant::now();
        self.recorder.dock();
        let (mut rd, mut wr) = tokio::io::split(port);
        let mut buf = vec![0u8; 8192];
        // Bytes heard, handed to the firmware one turnaround later.
        let mut inbound: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
        // The frame on the line and when its last bit is out (it reaches the host then).
        let mut on_line: Option<(Instant, Vec<u8>)> = None;
        let mut line_free = Instant::now();
        let mut bye = false;
        let mut bye_at: Option<Instant> = None;
        loop {
            while let Some(ev) = self.recorder.poll_event() {
                if let Some(f) = self.on_event.as_mut() {
                    f(&ev);
                }
                match &ev {
                    RecorderEvent::Bye => bye = true,
                    RecorderEvent::RouteLoaded { .. } => self.route_loaded = true,
                    RecorderEvent::LinkFailed => {
                        self.events.push(ev);
                        return DockingEnd::LinkFailed;
                    }
                    _ => {}
                }
                self.events.push(ev);
            }
            if on_line.is_none()
                && let Some(mut bytes) = self.recorder.poll_transmit(started.elapsed())
            {
                self.corruptor.apply(&mut bytes);
                // A UART with bytes waiting sends them back to back: a timer waking a little
                // late must not stretch the line, only a really idle line restarts at "now".
                let now = Instant::now();
                let start = if line_free + IDLE_GAP >= now { line_free } else { now };
                line_free = start + timing.bytes_time(bytes.len());
                on_line = Some((line_free, bytes));
            }
            // After BYE the acknowledgement still has to reach the host: linger until the host
            // lets go of the port, or briefly.
            let linger = if bye && on_line.is_none() {
                Some(*bye_at.get_or_insert_with(|| Instant::now() + LINGER))
            } else {
                None
            };
            if linger.is_some_and(|l| l <= Instant::now()) {
                return DockingEnd::Bye;
            }
            let wake = [
                self.recorder.poll_timeout().map(|d| started + d),
                inbound.front().map(|(t, _)| *t),
                on_line.as_ref().map(|(t, _)| *t),
                linger,
            ]
            .into_iter()
            .flatten()
            .min();
            tokio::select! {
                () = cancel.cancelled() => return DockingEnd::Cancelled,
                n = rd.read(&mut buf) => match n {
                    Ok(0) | Err(_) => return if bye { DockingEnd::Bye } else { DockingEnd::PortClosed },
                    Ok(n) => inbound.push_back((Instant::now() + timing.turnaround, buf[..n].to_vec())),
                },
                () = async { tokio::time::sleep_until(wake.expect("guarded")).await }, if wake.is_some() => {
                    let now = Instant::now();
                    if on_line.as_ref().is_some_and(|(t, _)| *t <= now) {
                        let (_, bytes) = on_line.take().expect("checked");
                        if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                            return DockingEnd::PortClosed;
                        }
                    }
                    while inbound.front().is_some_and(|(t, _)| *t <= now) {
                        let (_, bytes) = inbound.pop_front().expect("checked");
                        self.recorder.handle_bytes(&bytes, started.elapsed());
                    }
                    if self.recorder.poll_timeout().is_some_and(|t| started + t <= now) {
                        self.recorder.handle_timeout(started.elapsed());
                    }
                }
            }
        }
    }
}

/// Load a recorder's memory from a state file (JSON), or start empty when it does not exist.
pub fn load_state(path: &Path) -> anyhow::Result<RecorderData> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("state file {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RecorderData::default()),
        Err(e) => Err(anyhow::anyhow!("cannot read state file {}: {e}", path.display())),
    }
}

/// Save a recorder's memory (write a temporary file, then rename: never half a state).
pub fn save_state(path: &Path, data: &RecorderData) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(data)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Scripted reads: one JSON read record per line (`seq` is ignored, the recorder numbers them).
pub fn load_reads_file(path: &Path) -> anyhow::Result<Vec<ReadRecord>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), i + 1)))
        .collect()
}

/// A pseudo-terminal whose other end is reachable at a path, as a docked recorder's cradle.
pub struct PtyCradle {
    pub master: tokio_serial::SerialStream,
    /// The slave device (`/dev/pts/N`).
    pub device: String,
    /// A symlink to it, removed on drop.
    pub link: Option<PathBuf>,
}

impl PtyCradle {
    /// A new pty; when `link` is given, a symlink there points at the slave device.
    pub fn open(link: Option<&Path>) -> anyhow::Result<Self> {
        use tokio_serial::SerialPort as _;
        let (master, mut slave) = tokio_serial::SerialStream::pair()?;
        let device = slave.name().ok_or_else(|| anyhow::anyhow!("pty slave has no name"))?;
        // The host opens the slave by path; this process must not hold it (exclusive ports).
        let _ = slave.set_exclusive(false);
        drop(slave);
        if let Some(l) = link {
            if std::fs::symlink_metadata(l).is_ok_and(|m| m.file_type().is_symlink()) {
                std::fs::remove_file(l)?;
            }
            std::os::unix::fs::symlink(&device, l)
                .map_err(|e| anyhow::anyhow!("cannot link {} to {device}: {e}", l.display()))?;
        }
        Ok(PtyCradle {
            master,
            device,
            link: link.map(Path::to_owned),
        })
    }
}

impl Drop for PtyCradle {
    fn drop(&mut self) {
        if let Some(l) = &self.link {
            let _ = std::fs::remove_file(l);
        }
    }
}

/// What the host sent while the recorder was out of the cradle (its polls) went nowhere on a
/// real line; a pty keeps it. Drop it, so the recorder answers only polls made after it docked.
async fn discard_pending(master: &mut tokio_serial::SerialStream) {
    use tokio::io::AsyncReadExt as _;
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(20), master.read(&mut buf)).await {
        if n == 0 {
            break;
        }
    }
}

/// Serve dockings on a pty cradle: wait for a host to open the slave and talk, serve it, and
/// after BYE keep the recorder out of the cradle for `away` (the reader's day), reading its
/// route at once or after `away`. Stops after `sessions` dockings (0: until cancelled).
/// `after_docking` sees the recorder after every docking (to save its state).
pub async fn serve_pty(
    cradle: &mut PtyCradle,
    sim: &mut SimulatedRecorder,
    sessions: u32,
    away: Duration,
    cancel: &CancellationToken,
    after_docking: &mut (dyn FnMut(&SimulatedRecorder, DockingEnd) + Send),
) -> anyhow::Result<u32> {
    let mut served = 0;
    loop {
        if sessions != 0 && served >= sessions {
            return Ok(served);
        }
        // Nobody has the slave open: the master fails at once (EIO) until a host opens it.
        let before = sim.events.len();
        let end = sim.serve(&mut cradle.master, cancel).await;
        let docked = sim.events[before..].contains(&RecorderEvent::Docked);
        if end == DockingEnd::Cancelled {
            after_docking(sim, end);
            return Ok(served);
        }
        if !docked {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        served += 1;
        if end == DockingEnd::Bye && sim.route_loaded {
            if !away.is_zero() {
                tokio::select! {
                    () = cancel.cancelled() => {}
                    () = tokio::time::sleep(away) => {}
                }
                discard_pending(&mut cradle.master).await;
            }
            let local = crate::ingest::cradle::convert::local_civil_now(&jiff::tz::TimeZone::system());
            sim.read_loaded_routes(local)?;
        }
        after_docking(sim, end);
    }
}
