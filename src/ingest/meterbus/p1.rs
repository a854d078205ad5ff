//! The DSMR P1 listener: splits the port's byte stream into telegrams
//! ([`meterd_protocols::dsmr::splitter::Splitter`]), checks and decodes each (CRC-16/ARC for
//! DSMR 4/5), and hands them on as captures. Bytes between telegrams (a port opened
//! mid-telegram, line noise) and telegrams failing their CRC are captures too, refused with the
//! reason, so they reach the quarantine.

use std::collections::HashMap;
use std::time::Duration;

use meterd_protocols::decode::Protocol;
use meterd_protocols::dsmr::{
    self,
    splitter::{Event, Splitter},
};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Capture;

/// Why the listener stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    Cancelled,
    /// The port returned end of file (device unplugged; a pty whose other side closed).
    PortClosed,
}

/// Turns a P1 byte stream into captures, keeping at most one stored telegram per meter per
/// `store_every`.
pub struct Listener {
    splitter: Splitter,
    store_every: Duration,
    last_stored: HashMap<String, Instant>,
    telegrams: u64,
}

impl Listener {
    pub fn new(store_every: Duration) -> Self {
        Listener {
            splitter: Splitter::default(),
            store_every,
            last_stored: HashMap::new(),
            telegrams: 0,
        }
    }

    /// Telegrams seen (stored, skipped by the interval, or refused).
    pub fn telegrams(&self) -> u64 {
        self.telegrams
    }

    /// Feeds received bytes; returns what is ready.
    pub fn push(&mut self, bytes: &[u8], now: Instant) -> Vec<Capture> {
        self.splitter.push(bytes);
        let mut out = Vec::new();
        while let Some(event) = self.splitter.next_event() {
            if let Some(c) = self.on_event(event, now) {
                out.push(c);
            }
        }
        out
    }

    /// The partial telegram held when the stream ends.
    pub fn finish(&mut self) -> Option<Capture> {
        self.splitter.flush().and_then(|e| self.on_event(e, Instant::now()))
    }

    fn on_event(&mut self, event: Event, now: Instant) -> Option<Capture> {
        match event {
            Event::Discarded { bytes, reason } => {
                // Line ends and idle NULs between telegrams are not data.
                if bytes.iter().all(|b| b.is_ascii_whitespace() || *b == 0) {
                    return None;
                }
                Some(Capture::Refused {
                    raw: bytes,
                    reason: format!("P1 stream: {reason}"),
                    locator: "between telegrams".into(),
                })
            }
            Event::Telegram(bytes) => {
                self.telegrams += 1;
                let locator = format!("telegram {}", self.telegrams);
                match dsmr::decode(&bytes) {
                    Err(e) => Some(Capture::Refused {
                        raw: bytes,
                        reason: e.to_string(),
                        locator,
                    }),
                    Ok(decoded) => {
                        let due = self
                            .last_stored
                            .get(&decoded.meter_id)
                            .is_none_or(|t| self.store_every.is_zero() || now.duration_since(*t) >= self.store_every);
                        if !due {
                            // Nothing to commit: counted as received and left out.
                            crate::metrics::frames_add("serial", &[("skipped", 1)]);
                            return None;
                        }
                        self.last_stored.insert(decoded.meter_id.clone(), now);
                        Some(Capture::Frame {
                            protocol: Protocol::Dsmr,
                            decoded,
                            raw: bytes,
                            locator,
                            address: None,
                        })
                    }
                }
            }
        }
    }
}

/// Reads `port` until cancelled or closed, calling `deliver` with every batch of captures
/// (each batch is committed before the next read is processed).
pub async fn listen<R, F, Fut>(
    port: &mut R,
    listener: &mut Listener,
    cancel: &CancellationToken,
    mut deliver: F,
) -> anyhow::Result<Stopped>
where
    R: AsyncRead + Unpin,
    F: FnMut(Vec<Capture>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::select! {
            n = port.read(&mut buf) => n?,
            () = cancel.cancelled() => return Ok(Stopped::Cancelled),
        };
        if n == 0 {
            if let Some(c) = listener.finish() {
                deliver(vec![c]).await?;
            }
            return Ok(Stopped::PortClosed);
        }
        let captures = listener.push(&buf[..n], Instant::now());
        if !captures.is_empty() && !deliver(captures).await? {
            return Ok(Stopped::Cancelled);
        }
    }
}
