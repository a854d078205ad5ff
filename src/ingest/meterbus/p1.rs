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
/// `store_every`, and every telegram that brings a gas value captured on a new whole hour
/// (the hourly intervals need each hour's value; [`super::history`]).
pub struct Listener {
    splitter: Splitter,
    store_every: Duration,
    last_stored: HashMap<String, Instant>,
    /// Per meter, the capture time of the last hourly gas value passed on.
    last_hour: HashMap<String, String>,
    telegrams: u64,
}

impl Listener {
    pub fn new(store_every: Duration) -> Self {
        Listener {
            splitter: Splitter::default(),
            store_every,
            last_stored: HashMap::new(),
            last_hour: HashMap::new(),
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
                        let hour = hourly_capture(&decoded);
                        let new_hour = hour
                            .as_ref()
                            .is_some_and(|h| self.last_hour.get(&decoded.meter_id) != Some(h));
                        let due = new_hour
                            || self.last_stored.get(&decoded.meter_id).is_none_or(|t| {
                                self.store_every.is_zero() || now.duration_since(*t) >= self.store_every
                            });
                        if let Some(h) = hour.filter(|_| due) {
                            self.last_hour.insert(decoded.meter_id.clone(), h);
                        }
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

/// The capture time of a gas (M-Bus channel, group C 24) value of the telegram taken on a whole
/// hour, as decoded (`2017-01-02T15:00:05Z`, UTC). DSMR 4 gas meters capture hourly, DSMR 5
/// ones every 5 minutes (DSMR 5.0.2 §6.12); only whole hours make intervals. The minute is
/// checked in UTC, the same as local time for the Dutch and Belgian zones P1 is used in.
fn hourly_capture(decoded: &meterd_protocols::Decoded) -> Option<String> {
    decoded.readings.iter().find_map(|r| {
        let obis = meterd_protocols::iec62056_21::dataset::Obis::parse(r.obis.as_deref()?);
        let at = r.at.as_deref()?;
        (obis.c == "24" && at.get(14..16) == Some("00")).then(|| at.to_owned())
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn telegram(gas_at: &str) -> Vec<u8> {
        let text = format!(
            "/ISk5\\2MT382-1000\r\n\r\n1-3:0.2.8(50)\r\n0-0:96.1.1(4530303132)\r\n1-0:1.8.1(000123.456*kWh)\r\n\
             0-1:24.2.1({gas_at})(00100.000*m3)\r\n!"
        );
        let mut bytes = text.into_bytes();
        let crc = dsmr::CRC.checksum(&bytes);
        bytes.extend_from_slice(format!("{crc:04X}\r\n").as_bytes());
        bytes
    }

    #[test]
    fn a_gas_value_of_a_new_hour_is_passed_on_between_the_stored_telegrams() {
        let mut l = Listener::new(Duration::from_secs(900));
        let now = Instant::now();
        let frames = |l: &mut Listener, at: &str| {
            l.push(&telegram(at), now)
                .iter()
                .filter(|c| matches!(c, Capture::Frame { .. }))
                .count()
        };
        assert_eq!(frames(&mut l, "240115100005W"), 1);
        // Within store_every: the same hour and a DSMR 5 five-minute value are skipped.
        assert_eq!(frames(&mut l, "240115100005W"), 0);
        assert_eq!(frames(&mut l, "240115100505W"), 0);
        // The next hour's value is needed for its interval.
        assert_eq!(frames(&mut l, "240115110005W"), 1);
        assert_eq!(frames(&mut l, "240115110005W"), 0);
    }
}
