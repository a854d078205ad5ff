//! The wired M-Bus master over a serial line (2400 8E1): SND_NKE, REQ_UD2 with FCB toggling
//! across multi-telegram readouts, primary and secondary addressing, and a segment scan, using
//! the sans-IO pieces of `meterd_protocols::mbus::link`.
//!
//! A request that gets no answer, garbage or a frame failing its checksum is repeated with the
//! same FCB (the slave then repeats its last telegram) up to `retries` times; what still fails
//! is handed back as a refused capture for the quarantine.

use std::path::Path;
use std::time::Duration;

use meterd_protocols::decode::Protocol;
use meterd_protocols::mbus::frame::Frame;
use meterd_protocols::mbus::link::{self, NETWORK_LAYER, Next, Probe, Readout, Reply, Scan, SecondaryAddress};
use meterd_protocols::mbus::{self, header};
use meterd_protocols::{Decoded, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::Capture;
use super::config::MbusTiming;
use super::line::{self, Format, Line};

/// What came back for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Silence until the timeout.
    Nothing,
    /// `E5`.
    Ack,
    /// A frame that parsed (checksum included); its bytes.
    Frame(Vec<u8>),
    /// Bytes that are not one valid frame (noise, a collision, a bad checksum).
    Garbage(Vec<u8>, String),
}

/// An M-Bus master on one line.
pub struct Master<L> {
    line: L,
    timing: MbusTiming,
    /// Requests sent (for reports and tests).
    pub requests: u64,
}

/// Opens an M-Bus port (8E1).
pub fn open(path: &Path, baud: u32) -> anyhow::Result<tokio_serial::SerialStream> {
    line::open(path, baud, Format::EightE1)
}

/// Why a slave could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("no answer to {0}")]
    NoAnswer(&'static str),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl<L: Line> Master<L> {
    pub fn new(line: L, timing: MbusTiming) -> Self {
        Master {
            line,
            timing,
            requests: 0,
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.timing.response_timeout_ms)
    }

    /// Sends one request and waits for one answer.
    pub async fn exchange(&mut self, request: &[u8]) -> std::io::Result<Answer> {
        self.requests += 1;
        self.line.write_all(request).await?;
        self.line.flush().await?;
        let deadline = Instant::now() + self.timeout();
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 512];
        loop {
            if !buf.is_empty() {
                match link::parse_reply(&buf) {
                    Ok((reply, used)) => {
                        if used < buf.len() {
                            return Ok(Answer::Garbage(
                                buf,
                                "bytes after the answer (several slaves answered?)".into(),
                            ));
                        }
                        return Ok(match reply {
                            Reply::Ack => Answer::Ack,
                            Reply::Frame(_) => Answer::Frame(buf),
                        });
                    }
                    Err(Error::Incomplete { .. }) => {}
                    Err(e) => {
                        // Let the rest of the noise arrive so it does not spoil the next answer.
                        self.drain(Duration::from_millis(50)).await?;
                        return Ok(Answer::Garbage(buf, e.to_string()));
                    }
                }
            }
            tokio::select! {
                n = self.line.read(&mut chunk) => {
                    let n = n?;
                    if n == 0 {
                        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the serial port closed"));
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                () = tokio::time::sleep_until(deadline) => {
                    return Ok(if buf.is_empty() {
                        Answer::Nothing
                    } else {
                        Answer::Garbage(buf, "answer cut short (timeout)".into())
                    });
                }
            }
        }
    }

    /// Reads and drops whatever arrives within `quiet`.
    async fn drain(&mut self, quiet: Duration) -> std::io::Result<()> {
        let mut chunk = [0u8; 512];
        loop {
            match tokio::time::timeout(quiet, self.line.read(&mut chunk)).await {
                Ok(Ok(0)) | Err(_) => return Ok(()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// Sends a request until it is answered by something valid or the retries are used up.
    async fn exchange_retrying(&mut self, request: &[u8]) -> std::io::Result<Answer> {
        let mut answer = Answer::Nothing;
        for _ in 0..=self.timing.retries {
            answer = self.exchange(request).await?;
            match &answer {
                Answer::Ack => return Ok(answer),
                Answer::Frame(bytes) if mbus::decode(bytes).is_ok() => return Ok(answer),
                _ => {}
            }
        }
        Ok(answer)
    }

    /// SND_NKE to a primary address, then the readout.
    pub async fn read_primary(&mut self, address: u8) -> Result<Vec<Capture>, PollError> {
        match self.exchange_retrying(&link::snd_nke(address)).await? {
            Answer::Ack => {}
            Answer::Nothing => return Err(PollError::NoAnswer("SND_NKE")),
            // Some slaves answer a reset with junk; the readout decides.
            other => tracing::debug!(address, ?other, "unexpected answer to SND_NKE"),
        }
        self.readout(address, format!("address {address}")).await
    }

    /// Selects a slave by secondary address, then the readout through address 253.
    pub async fn read_secondary(&mut self, address: &SecondaryAddress) -> Result<Vec<Capture>, PollError> {
        match self.exchange_retrying(&link::select(address, false)).await? {
            Answer::Ack => {}
            Answer::Nothing => return Err(PollError::NoAnswer("the selection")),
            other => {
                return Ok(vec![refused(other, format!("select {address}"))]);
            }
        }
        self.readout(NETWORK_LAYER, format!("secondary {address}")).await
    }

    /// REQ_UD2 until the slave has no more telegrams. The telegrams of one readout become one
    /// capture: the first telegram's header with the records of all of them (a register may be
    /// in any telegram), the frames one after the other as the raw bytes.
    async fn readout(&mut self, address: u8, locator: String) -> Result<Vec<Capture>, PollError> {
        let mut readout = Readout::new(address, self.timing.max_telegrams);
        let mut merged: Option<(Decoded, Vec<u8>, Option<u8>)> = None;
        let mut out = Vec::new();
        loop {
            let n = readout.telegrams() + 1;
            let answer = self.exchange_retrying(&readout.request()).await?;
            let failure = match answer {
                Answer::Frame(bytes) => match mbus::decode(&bytes) {
                    Ok(decoded) => {
                        let more = decoded
                            .fields
                            .get("more_records_follow")
                            .and_then(|v| v.as_bool())
                            .unwrap_or(false);
                        match &mut merged {
                            None => merged = Some((decoded, bytes.clone(), frame_address(&bytes))),
                            Some((first, raw, _)) => {
                                first.readings.extend(decoded.readings);
                                for f in decoded.flags {
                                    if !first.flags.contains(&f) {
                                        first.flags.push(f);
                                    }
                                }
                                raw.extend_from_slice(&bytes);
                            }
                        }
                        match readout.on_response(more) {
                            Next::Poll => continue,
                            Next::Done => None,
                            Next::TooManyTelegrams => {
                                tracing::warn!(%locator, "slave keeps announcing more telegrams; stopped at the limit");
                                None
                            }
                        }
                    }
                    Err(e) => Some(Capture::Refused {
                        raw: bytes,
                        reason: e.to_string(),
                        locator: format!("{locator} telegram {n}"),
                    }),
                },
                Answer::Nothing if merged.is_none() => return Err(PollError::NoAnswer("REQ_UD2")),
                Answer::Nothing => Some(Capture::Refused {
                    raw: Vec::new(),
                    reason: format!("no answer to REQ_UD2 for telegram {n}"),
                    locator: locator.clone(),
                }),
                other => Some(refused(other, format!("{locator} telegram {n}"))),
            };
            if let Some((mut decoded, raw, slave_address)) = merged.take() {
                let telegrams = readout.telegrams();
                decoded.fields.remove("more_records_follow");
                decoded.fields.insert("telegrams".into(), telegrams.into());
                out.push(Capture::Frame {
                    protocol: Protocol::Mbus,
                    decoded,
                    raw,
                    locator: locator.clone(),
                    address: slave_address,
                });
            }
            out.extend(failure);
            return Ok(out);
        }
    }

    /// Scans the segment by secondary address (wildcards, digit by digit). A selection
    /// answered by `E5` is confirmed by reading the selected slave: overlapping `E5`s of several
    /// slaves look like one.
    pub async fn scan(&mut self, base: SecondaryAddress) -> std::io::Result<ScanReport> {
        let mut scan = Scan::new(base);
        while let Some(pattern) = scan.next_probe() {
            let outcome = match self.exchange(&link::select(&pattern, false)).await? {
                Answer::Nothing => Probe::Nothing,
                Answer::Ack => match self.exchange(&link::req_ud2(NETWORK_LAYER, true)).await? {
                    Answer::Frame(bytes) => match secondary_of(&bytes) {
                        Some(a) => Probe::Single(a),
                        None => Probe::Collision,
                    },
                    // Selected but silent: treat like a collision and look closer.
                    _ => Probe::Collision,
                },
                Answer::Frame(_) | Answer::Garbage(..) => Probe::Collision,
            };
            scan.report(outcome);
        }
        Ok(ScanReport {
            found: scan.found().to_vec(),
            unresolved: scan.unresolved().to_vec(),
            probes: scan.probes(),
        })
    }
}

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanReport {
    pub found: Vec<SecondaryAddress>,
    /// Full ids several slaves share (they differ in manufacturer, version or medium).
    pub unresolved: Vec<SecondaryAddress>,
    pub probes: usize,
}

fn refused(answer: Answer, locator: String) -> Capture {
    match answer {
        Answer::Garbage(raw, why) => Capture::Refused {
            raw,
            reason: why,
            locator,
        },
        Answer::Frame(raw) => {
            let reason = mbus::decode(&raw)
                .err()
                .map_or_else(|| "unexpected frame".to_owned(), |e| e.to_string());
            Capture::Refused { raw, reason, locator }
        }
        Answer::Ack => Capture::Refused {
            raw: vec![0xE5],
            reason: "E5 where a telegram was expected".into(),
            locator,
        },
        Answer::Nothing => Capture::Refused {
            raw: Vec::new(),
            reason: "no answer".into(),
            locator,
        },
    }
}

fn frame_address(bytes: &[u8]) -> Option<u8> {
    match mbus::frame::parse(bytes) {
        Ok((Frame::Long { a, .. } | Frame::Short { a, .. } | Frame::Control { a, .. }, _)) => Some(a),
        _ => None,
    }
}

/// The secondary address in a RSP_UD with a long header.
fn secondary_of(bytes: &[u8]) -> Option<SecondaryAddress> {
    match mbus::frame::parse(bytes) {
        Ok((
            Frame::Long {
                ci: 0x72 | 0x76, data, ..
            },
            _,
        )) => header::long_header(data).ok().map(|(_, h)| SecondaryAddress::of(&h)),
        _ => None,
    }
}
