//! The daemon's cradles: one task per configured port, docking continuously.
//!
//! Each task opens its port, runs sessions back to back (a session with nobody docked ends
//! quietly after the SYNC retries; the next one starts after [`IDLE_POLL`]; a recorder that
//! finished a session is not served again until a docking nobody answered shows it left the
//! cradle), and reopens the
//! port with a backoff when it is absent or vanishes (USB cradle unplugged). Cancellation
//! abandons a session in flight without CLEAR: committed reads stay, the recorder keeps all.

use std::sync::Arc;
use std::time::Duration;

use tokio_serial::SerialPortBuilderExt as _;
use tokio_util::sync::CancellationToken;

use super::config::CradleConfig;
use super::session::{SessionOptions, nobody_docked, run_session};
use crate::store::Store;
use crate::vee::VeeConfig;

/// Pause between sessions when nobody is docked.
pub const IDLE_POLL: Duration = Duration::from_millis(500);
/// Reopen backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Open a cradle port (8N1, raw, exclusive).
pub fn open_port(path: &std::path::Path, baud: u32) -> std::io::Result<tokio_serial::SerialStream> {
    let shown = path.to_string_lossy();
    tokio_serial::new(shown.as_ref(), baud)
        .timeout(Duration::from_millis(100))
        .open_native_async()
        .map_err(std::io::Error::from)
}

/// One cradle until `cancel`: the component takes the store, the VEE rules and its own
/// `[[cradle]]` section, nothing else of the daemon.
pub async fn run_cradle(
    store: Arc<dyn Store>,
    vee: Arc<VeeConfig>,
    cradle: CradleConfig,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let shown = cradle.port.display().to_string();
    let mut backoff = BACKOFF_MIN;
    let mut absent_logged = false;
    // The recorder served last, until a docking nobody answers shows it left the cradle.
    let mut hold_off: Option<String> = None;
    while !cancel.is_cancelled() {
        let port = match open_port(&cradle.port, cradle.baud) {
            Ok(p) => {
                backoff = BACKOFF_MIN;
                absent_logged = false;
                p
            }
            Err(e) => {
                if !absent_logged {
                    tracing::warn!(port = %shown, error = %e, "cradle port not available; retrying");
                    absent_logged = true;
                }
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let mut opts = SessionOptions::new(&shown, cradle.timing());
        opts.hold_off = hold_off.clone();
        let report = run_session(
            port,
            Arc::clone(&store),
            Arc::clone(&vee),
            opts,
            cancel.clone(),
            &mut (),
        )
        .await?;
        if report.cancelled {
            break;
        }
        if nobody_docked(&report) {
            tracing::debug!(port = %shown, "nobody docked");
            hold_off = None;
        } else if report.finished.is_some() {
            hold_off = report.device.as_ref().map(|d| d.serial.clone());
        }
        // The port is closed here (dropped with the session); reopening also notices a vanished device.
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(IDLE_POLL) => {}
        }
    }
    Ok(())
}
