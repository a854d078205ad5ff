//! The `[[receiver]]` component: one task per receiver. It opens the port (reopening with a
//! backoff while the stick is unplugged or the port fails), sets the stick's mode on every
//! open, turns what it hears into units and commits each read's units in one transaction
//! (a telegram counts once it is durable; a receiver has nothing to acknowledge), and resets a
//! receiver that heard no telegram for `reset_after_secs`: the stick's reset command and the
//! mode again, or (culfw, rtl_wmbus, rtl_433) the port closed and reopened.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use meterd_protocols::decode::Keys;
use meterd_protocols::receiver::{Event, Kind, LinkMode};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::SOURCE_PREFIX;
use super::config::ReceiverConfig;
use super::port::Port;
use super::units::units_of;
use crate::ingest::mqtt::MqttConfig;
use crate::ingest::mqtt::commit::{Job, Message, commit_group, expire_due};
use crate::ingest::mqtt::message::locator_of;
use crate::store::Store;
use crate::vee::VeeConfig;
use crate::vee::interval::IntervalConfig;

/// Reopen backoff bounds (as the cradles).
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// After a reset command, time for the stick to restart before its mode is set again.
const AFTER_RESET: Duration = Duration::from_millis(300);
/// A silent receiver without a reset command: the port stays closed this long, so the device
/// (or the decoder's pty) sees the close.
const CLOSED_FOR: Duration = Duration::from_millis(500);

/// What the receivers write through: the store, the rules, and the `[mqtt]` settings the
/// gateway ingest applies (de-duplication window, endpoint → meter map, wM-Bus keys), so a
/// telegram is the same read whichever way it arrived.
#[derive(Clone)]
pub struct ReceiverIngest {
    pub store: Arc<dyn Store>,
    pub vee: Arc<VeeConfig>,
    pub intervals: Arc<IntervalConfig>,
    pub mqtt: Arc<MqttConfig>,
    pub keys: Arc<Keys>,
}

impl ReceiverIngest {
    /// Over the daemon's configuration: `[mqtt]` when present (its keys file too), else its
    /// defaults.
    pub fn new(
        store: Arc<dyn Store>,
        vee: VeeConfig,
        intervals: IntervalConfig,
        mqtt: Option<MqttConfig>,
    ) -> anyhow::Result<Self> {
        let mqtt = mqtt.unwrap_or_default();
        let keys = match &mqtt.wmbus_key_file {
            Some(p) => crate::secrets::read_key_file(p)?,
            None => Keys::new(),
        };
        Ok(ReceiverIngest {
            store,
            vee: Arc::new(vee),
            intervals: Arc::new(intervals),
            mqtt: Arc::new(mqtt),
            keys: Arc::new(keys),
        })
    }
}

/// How listening on an open port ended.
enum Ended {
    Cancelled,
    /// The port failed or went away (unplugged).
    Lost(String),
    /// Silent, and the kind has no reset command: close and reopen.
    Reopen,
}

/// One receiver until `cancel`.
pub async fn run(ingest: ReceiverIngest, cfg: ReceiverConfig, cancel: CancellationToken) -> anyhow::Result<()> {
    let kind = cfg.kind().map_err(anyhow::Error::msg)?;
    let mode = cfg.link_mode().map_err(anyhow::Error::msg)?;
    let shown = cfg.port.display().to_string();
    let mut backoff = BACKOFF_MIN;
    let mut absent_logged = false;
    while !cancel.is_cancelled() {
        let mut port = match Port::open(&cfg.port, cfg.baud()) {
            Ok(p) => {
                backoff = BACKOFF_MIN;
                absent_logged = false;
                p
            }
            Err(e) => {
                if !absent_logged {
                    tracing::warn!(port = %shown, kind = %kind, error = %e, "receiver: port not available; retrying");
                    absent_logged = true;
                }
                if !pause(backoff, &cancel).await {
                    break;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        tracing::info!(port = %shown, kind = %kind, mode = ?mode.map(|m| m.to_string()), "receiver: opened");
        let ended = match set_up(&mut port, kind, mode).await {
            Ok(()) => listen(&ingest, &cfg, kind, mode, &mut port, &cancel).await?,
            Err(e) => Ended::Lost(format!("setting the mode: {e}")),
        };
        drop(port);
        match ended {
            Ended::Cancelled => break,
            Ended::Lost(why) => {
                tracing::warn!(port = %shown, kind = %kind, error = %why, "receiver: port lost; reopening");
                if !pause(backoff, &cancel).await {
                    break;
                }
            }
            Ended::Reopen => {
                if !pause(CLOSED_FOR, &cancel).await {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Waits `d` or until cancelled; false when cancelled.
async fn pause(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        () = cancel.cancelled() => false,
    }
}

async fn set_up(port: &mut Port, kind: Kind, mode: Option<LinkMode>) -> std::io::Result<()> {
    let setup = kind.setup(mode);
    if !setup.is_empty() {
        port.write_all(&setup).await?;
    }
    Ok(())
}

async fn listen(
    ingest: &ReceiverIngest,
    cfg: &ReceiverConfig,
    kind: Kind,
    mode: Option<LinkMode>,
    port: &mut Port,
    cancel: &CancellationToken,
) -> anyhow::Result<Ended> {
    let shown = cfg.port.display().to_string();
    // Within the topic limit whatever the path (it is the gateway's `last_topic`).
    let locator = locator_of(&format!("{SOURCE_PREFIX}{shown}"));
    let gateway = cfg.gateway();
    let silence = Duration::from_secs(cfg.reset_after_secs);
    let mut decoder = kind.decoder();
    let mut last_heard = Instant::now();
    let mut last_expire = Instant::now();
    let mut buf = vec![0u8; 4096];
    loop {
        let read = tokio::select! {
            () = cancel.cancelled() => return Ok(Ended::Cancelled),
            () = tokio::time::sleep_until(last_heard + silence) => {
                let reset = kind.reset();
                tracing::warn!(port = %shown, kind = %kind, silent_secs = cfg.reset_after_secs,
                    action = if reset.is_empty() { "reopen" } else { "reset command" }, "receiver: silent; resetting");
                if reset.is_empty() {
                    return Ok(Ended::Reopen);
                }
                if let Err(e) = port.write_all(&reset).await {
                    return Ok(Ended::Lost(format!("sending the reset: {e}")));
                }
                if !pause(AFTER_RESET, cancel).await {
                    return Ok(Ended::Cancelled);
                }
                if let Err(e) = set_up(port, kind, mode).await {
                    return Ok(Ended::Lost(format!("setting the mode after the reset: {e}")));
                }
                // A frame cut by the reset is not completed by what follows it.
                decoder = kind.decoder();
                last_heard = Instant::now();
                continue;
            }
            r = port.read(&mut buf) => r,
        };
        let n = match read {
            Ok(0) => return Ok(Ended::Lost("end of input".into())),
            Ok(n) => n,
            Err(e) => return Ok(Ended::Lost(e.to_string())),
        };
        let received = Timestamp::now();
        let events = decoder.push(&buf[..n]);
        for e in &events {
            match e {
                Event::Telegram(_) | Event::Json(_) => last_heard = Instant::now(),
                Event::Reply(what) if what.contains("status") && !what.ends_with("status 0") => {
                    tracing::warn!(port = %shown, kind = %kind, reply = %what, "receiver: the stick refused a command");
                }
                Event::Reply(what) => tracing::info!(port = %shown, kind = %kind, reply = %what, "receiver: answered"),
                Event::Bad { error, .. } => {
                    tracing::warn!(port = %shown, layer = kind.layer(), error = %error, "receiver: undecodable input quarantined");
                }
            }
        }
        let units = units_of(kind, &locator, &gateway, events, received, &ingest.keys);
        if units.is_empty() {
            continue;
        }
        let job = Job {
            messages: vec![Message {
                topic: locator.clone(),
                units,
                received,
            }],
            // Held compact frames released by this job decode with the keys; the receiver
            // also expires de-duplication keys (with no [mqtt] session nothing else would).
            keys: Arc::clone(&ingest.keys),
            expire_seen: expire_due(&mut last_expire),
            ..Job::default()
        };
        let (store, mqtt, vee, intervals) = (
            Arc::clone(&ingest.store),
            Arc::clone(&ingest.mqtt),
            Arc::clone(&ingest.vee),
            Arc::clone(&ingest.intervals),
        );
        let done =
            tokio::task::spawn_blocking(move || commit_group(store.as_ref(), &mqtt, &vee, &intervals, job)).await??;
        for (outcome, n) in done.outcomes() {
            if n > 0 {
                crate::metrics::counter_add(
                    crate::metrics::FRAMES,
                    &[("source", "receiver"), ("outcome", outcome)],
                    n,
                );
            }
        }
        tracing::info!(
            port = %shown, gateway = %gateway, frames = done.frames, duplicates = done.duplicates,
            reads = done.reads.imported, flagged = done.reads.flagged, quarantined = done.quarantined,
            "receiver: committed"
        );
    }
}
