//! The IEC 62056-21 probe session over a serial line: pumps [`ProbeSession`] (300 baud sign-on,
//! identification, option select at the old speed, switch, readout, BCC, NAK and repeat, the
//! meter type's quirks from its profile) and turns the readout into a [`Capture`].

use std::path::Path;
use std::time::Duration;

use meterd_protocols::decode::Protocol;
use meterd_protocols::iec62056_21::{Action, ProbeConfig, ProbeSession, Readout, SessionError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Capture;
use super::line::{self, Format, Line};

/// Most bytes of a session kept for the quarantine when it fails.
const TRANSCRIPT_LIMIT: usize = 64 * 1024;

/// How a session ended.
#[derive(Debug)]
pub struct SessionResult {
    pub outcome: Result<Readout, SessionError>,
    /// Everything the meter sent (bounded), for the quarantine of a failed session.
    pub received: Vec<u8>,
}

impl SessionResult {
    /// The readout as a capture: decoded, or refused with the reason.
    pub fn capture(&self) -> Capture {
        match &self.outcome {
            Ok(readout) => {
                let raw = readout.capture();
                match readout.decode() {
                    Ok(decoded) => Capture::Frame {
                        protocol: Protocol::Iec62056_21,
                        decoded,
                        raw,
                        locator: "readout".into(),
                        address: None,
                    },
                    Err(e) => Capture::Refused {
                        raw,
                        reason: format!("readout: {e}"),
                        locator: "readout".into(),
                    },
                }
            }
            Err(e) => Capture::Refused {
                raw: self.received.clone(),
                reason: format!("probe session failed: {e}"),
                locator: "session".into(),
            },
        }
    }
}

/// Opens `path` at 300 baud (7E1, or 8N1 when the profile does parity in software).
pub fn open(path: &Path, cfg: &ProbeConfig) -> anyhow::Result<tokio_serial::SerialStream> {
    line::open(
        path,
        300,
        if cfg.software_parity {
            Format::EightN1
        } else {
            Format::SevenE1
        },
    )
}

/// Runs one session on an open line at 300 baud. Returns early (as a timeout) when `cancel`
/// fires; IO errors end the session with an error.
pub async fn run_session<L: Line>(
    line: &mut L,
    cfg: ProbeConfig,
    cancel: &CancellationToken,
) -> anyhow::Result<SessionResult> {
    let mut session = ProbeSession::new(cfg);
    session.start();
    let mut deadline: Option<Instant> = None;
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        while let Some(action) = session.poll_action() {
            match action {
                Action::Send(bytes) => {
                    line.write_all(&bytes).await?;
                    // Wait until the bytes have left (tcdrain): the next action may change the speed.
                    line.flush().await?;
                }
                Action::SetBaud(baud) => {
                    tracing::debug!(baud, "probe switches speed");
                    line.set_baud(baud)?;
                }
                Action::Timer(d) => deadline = Some(Instant::now() + d),
                Action::CancelTimer => deadline = None,
                Action::Done => {
                    let outcome = session
                        .take_outcome()
                        .unwrap_or(Err(SessionError::Timeout("an outcome")));
                    return Ok(SessionResult { outcome, received });
                }
            }
        }
        let sleep = deadline.map(tokio::time::sleep_until);
        tokio::select! {
            n = line.read(&mut buf) => {
                let n = n?;
                if n == 0 {
                    anyhow::bail!("the serial port closed during the session");
                }
                if received.len() < TRANSCRIPT_LIMIT {
                    received.extend_from_slice(&buf[..n]);
                }
                session.on_bytes(&buf[..n]);
            }
            () = async { sleep.expect("guarded").await }, if sleep.is_some() => {
                deadline = None;
                session.on_timeout();
            }
            () = cancel.cancelled() => anyhow::bail!("cancelled"),
        }
    }
}

/// Opens the port, runs one session, closes the port.
pub async fn read_once(path: &Path, cfg: ProbeConfig, cancel: &CancellationToken) -> anyhow::Result<SessionResult> {
    let mut port = open(path, &cfg)?;
    let result = run_session(&mut port, cfg, cancel).await;
    // Let a final break message leave before the port closes.
    tokio::time::sleep(Duration::from_millis(20)).await;
    result
}
