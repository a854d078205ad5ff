//! The reliable link under the session: SYNC handshake, a byte stream of length-prefixed
//! messages cut into DATA frames whose `seq` is the stream offset, cumulative ACKs, go-back-N
//! retransmission on NAK or timeout, and an adaptive frame size.
//!
//! Because `seq` counts bytes, not frames, a retransmission may cut the unacknowledged bytes
//! into smaller frames than the first attempt: on a noisy line a 500-byte frame almost never
//! survives, so shrinking what is *already queued* is what keeps a transfer moving.
//!
//! Firmware 1 negotiates a window of 1 frame (stop-and-wait), firmware 2 a window of 8, so one
//! engine serves both. Time is whatever the caller passes as `now`.

use std::collections::VecDeque;
use std::time::Duration;

use super::frame::{Frame, FrameDecoder, FrameKind, OVERHEAD, encode_parts};
use super::message::Firmware;
use crate::error::Error;

/// Line parameters both ends need to size their retransmission timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineTiming {
    /// Bits per second; a byte takes 10 bit times (8N1).
    pub baud: u32,
    /// Delay before the far end sees the first bit (modem/cradle turnaround), each way.
    pub turnaround: Duration,
}

impl LineTiming {
    pub fn new(baud: u32, turnaround: Duration) -> Self {
        LineTiming {
            baud: baud.max(1),
            turnaround,
        }
    }

    /// Time `bytes` take on the line at 10 bits per byte.
    pub fn bytes_time(&self, bytes: usize) -> Duration {
        Duration::from_nanos((bytes as u64) * 10 * 1_000_000_000 / u64::from(self.baud))
    }

    /// Retransmission timeout for a window: every frame of a full window may be queued on the
    /// line ahead of the one we wait for, then its ACK needs two turnarounds.
    pub fn rto(&self, window: u8, max_payload: usize) -> Duration {
        self.bytes_time((usize::from(window) + 1) * (max_payload + OVERHEAD) + OVERHEAD)
            + self.turnaround * 2
            + Duration::from_millis(50)
    }
}

impl Default for LineTiming {
    fn default() -> Self {
        LineTiming::new(115_200, Duration::from_millis(10))
    }
}

/// Counters for logs, progress displays and the efficiency benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkStats {
    pub frames_sent: u64,
    pub bytes_sent: u64,
    pub data_frames_sent: u64,
    pub retransmissions: u64,
    pub timeouts: u64,
    pub naks_sent: u64,
    pub naks_received: u64,
    pub frames_received: u64,
    pub frames_rejected: u64,
    pub garbage_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Host {
        nonce: u32,
    },
    // Only the recorder simulator (feature `testing`) plays this side.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))]
    Recorder {
        firmware: Firmware,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkEvent {
    /// Host: the recorder answered SYNC.
    Synced(Firmware),
    /// Recorder: a host started a new link; all session state must restart.
    Reset,
    /// Too many timeouts without progress.
    Failed,
}

/// Host side offers up to this; the recorder's firmware caps it.
const HOST_WINDOW: u8 = 16;
const HOST_MAX_PAYLOAD: usize = super::frame::MAX_PAYLOAD;
/// Smallest frame payload the adaptive sizing shrinks to.
pub(crate) const MIN_PAYLOAD: usize = 32;
/// Bytes of the length prefix of each message in the stream.
pub(crate) const MESSAGE_PREFIX: usize = 2;

#[derive(Debug)]
pub(crate) struct Link {
    role: Role,
    timing: LineTiming,
    max_retries: u32,
    window: u8,
    max_payload: usize,
    firmware: Option<Firmware>,
    synced: bool,
    failed: bool,
    current_nonce: Option<u32>,
    decoder: FrameDecoder,
    // Sender: `stream` holds the bytes from offset `base` (unacknowledged, then unsent).
    stream: VecDeque<u8>,
    base: u32,
    next: u32,
    /// Highest offset ever sent, to tell retransmissions from first sends.
    sent_max: u32,
    timer: Option<Duration>,
    retries: u32,
    payload_target: usize,
    clean_frames: u32,
    sync_due: bool,
    sync_ack_due: Option<u32>,
    // Receiver.
    expected: u32,
    rx: Vec<u8>,
    ack_due: bool,
    nak_due: bool,
    last_nak: Option<Duration>,
    delivered: VecDeque<Vec<u8>>,
    events: VecDeque<LinkEvent>,
    stats: LinkStats,
}

impl Link {
    pub(crate) fn new(role: Role, timing: LineTiming, max_retries: u32) -> Self {
        let (window, max_payload, firmware) = match role {
            Role::Host { .. } => (1, Firmware::V1.max_payload(), None),
            Role::Recorder { firmware } => (firmware.window(), firmware.max_payload(), Some(firmware)),
        };
        Link {
            role,
            timing,
            max_retries,
            window,
            max_payload,
            firmware,
            synced: false,
            failed: false,
            current_nonce: None,
            decoder: FrameDecoder::new(),
            stream: VecDeque::new(),
            base: 0,
            next: 0,
            sent_max: 0,
            timer: None,
            retries: 0,
            payload_target: max_payload,
            clean_frames: 0,
            sync_due: matches!(role, Role::Host { .. }),
            sync_ack_due: None,
            expected: 0,
            rx: Vec::new(),
            ack_due: false,
            nak_due: false,
            last_nak: None,
            delivered: VecDeque::new(),
            events: VecDeque::new(),
            stats: LinkStats::default(),
        }
    }

    pub(crate) fn firmware(&self) -> Option<Firmware> {
        self.firmware
    }

    pub(crate) fn stats(&self) -> LinkStats {
        let d = self.decoder.stats();
        LinkStats {
            frames_received: d.frames,
            frames_rejected: d.rejected,
            garbage_bytes: d.skipped_bytes,
            ..self.stats
        }
    }

    /// Sized for a window of frames of the current size: after a shrink, an early expiry
    /// costs a spurious resend, while a long timer would stall a noisy transfer.
    fn rto(&self) -> Duration {
        self.timing.rto(self.window, self.payload_target)
    }

    fn window_bytes(&self) -> usize {
        usize::from(self.window) * self.max_payload
    }

    /// True when the session may queue another message: less than a window is waiting, so
    /// the line stays busy without the session building batches long before they are sent.
    pub(crate) fn has_room(&self) -> bool {
        self.synced && !self.failed && self.stream.len() < self.window_bytes()
    }

    /// Largest message that travels in one frame on a clean line.
    pub(crate) fn max_message(&self) -> usize {
        self.max_payload - MESSAGE_PREFIX
    }

    /// Nothing queued, unacknowledged or owed to the peer.
    pub(crate) fn is_idle(&self) -> bool {
        self.stream.is_empty() && !self.ack_due && !self.nak_due && self.sync_ack_due.is_none() && !self.sync_due
    }

    /// Queues one session message (at most 65535 bytes).
    pub(crate) fn send(&mut self, message: Vec<u8>) -> Result<(), Error> {
        let len = u16::try_from(message.len())
            .map_err(|_| Error::invalid("message length", format!("{} bytes exceed 65535", message.len())))?;
        self.stream.extend(len.to_le_bytes());
        self.stream.extend(message);
        Ok(())
    }

    pub(crate) fn recv(&mut self) -> Option<Vec<u8>> {
        self.delivered.pop_front()
    }

    pub(crate) fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    pub(crate) fn handle_bytes(&mut self, bytes: &[u8], now: Duration) {
        if self.failed {
            return;
        }
        self.decoder.push(bytes);
        while let Some(result) = self.decoder.next_frame() {
            match result {
                Ok(frame) => {
                    // The peer is alive: a noisy line is slow, not lost.
                    self.retries = 0;
                    self.handle_frame(frame, now)
                }
                Err(_) => {
                    // A damaged frame is most likely the DATA frame we expect: ask for it now
                    // rather than waiting for the sender's timer.
                    if self.synced {
                        self.request_resend(now);
                    }
                }
            }
        }
    }

    fn request_resend(&mut self, now: Duration) {
        let holdoff = self.timing.turnaround * 2 + self.timing.bytes_time(2 * (self.max_payload + OVERHEAD));
        if self.last_nak.is_none_or(|t| now >= t + holdoff) {
            self.nak_due = true;
            self.last_nak = Some(now);
        }
    }

    fn handle_frame(&mut self, frame: Frame, now: Duration) {
        match (frame.kind, self.role) {
            (FrameKind::Sync, Role::Recorder { firmware }) => {
                let Some((nonce, window, max_payload)) = parse_sync(&frame.payload) else {
                    return;
                };
                if self.current_nonce != Some(nonce) {
                    self.reset_for(nonce, window, max_payload, firmware);
                }
                self.sync_ack_due = Some(nonce);
            }
            (FrameKind::SyncAck, Role::Host { nonce }) => {
                let p = &frame.payload;
                if p.len() != 8 || u32::from_le_bytes([p[0], p[1], p[2], p[3]]) != nonce || self.synced {
                    return;
                }
                let Ok(fw) = Firmware::from_code(p[4]) else {
                    return;
                };
                self.window = p[5].clamp(1, HOST_WINDOW);
                self.max_payload = usize::from(u16::from_le_bytes([p[6], p[7]])).clamp(MIN_PAYLOAD, HOST_MAX_PAYLOAD);
                self.payload_target = self.max_payload;
                self.firmware = Some(fw);
                self.synced = true;
                self.sync_due = false;
                self.timer = None;
                self.events.push_back(LinkEvent::Synced(fw));
            }
            (FrameKind::Data, _) if self.synced => self.receive(frame.seq, &frame.payload, now),
            (FrameKind::Ack, _) if self.synced => self.acknowledge(frame.seq, now),
            (FrameKind::Nak, _) if self.synced => {
                self.stats.naks_received += 1;
                self.acknowledge(frame.seq, now);
                if self.next != self.base {
                    self.go_back();
                    self.timer = Some(now + self.rto());
                }
            }
            _ => {}
        }
    }

    fn receive(&mut self, offset: u32, payload: &[u8], now: Duration) {
        let end = offset.wrapping_add(payload.len() as u32);
        if offset > self.expected {
            // A frame before this one was lost.
            return self.request_resend(now);
        }
        // Re-cut retransmissions may overlap what we have: keep only the new tail.
        self.ack_due = true;
        if end <= self.expected {
            return;
        }
        let fresh = &payload[(self.expected - offset) as usize..];
        self.rx.extend_from_slice(fresh);
        self.expected = end;
        self.last_nak = None;
        while self.rx.len() >= MESSAGE_PREFIX {
            let len = usize::from(u16::from_le_bytes([self.rx[0], self.rx[1]]));
            if self.rx.len() < MESSAGE_PREFIX + len {
                break;
            }
            let message = self.rx[MESSAGE_PREFIX..MESSAGE_PREFIX + len].to_vec();
            self.rx.drain(..MESSAGE_PREFIX + len);
            self.delivered.push_back(message);
        }
    }

    /// A host started a new link: both directions restart at offset 0.
    fn reset_for(&mut self, nonce: u32, window: u8, max_payload: usize, firmware: Firmware) {
        self.current_nonce = Some(nonce);
        self.window = window.clamp(1, firmware.window());
        self.max_payload = max_payload.clamp(MIN_PAYLOAD, firmware.max_payload());
        self.payload_target = self.max_payload;
        self.stream.clear();
        self.base = 0;
        self.next = 0;
        self.sent_max = 0;
        self.timer = None;
        self.retries = 0;
        self.clean_frames = 0;
        self.expected = 0;
        self.rx.clear();
        self.ack_due = false;
        self.nak_due = false;
        self.last_nak = None;
        self.delivered.clear();
        self.synced = true;
        self.events.push_back(LinkEvent::Reset);
    }

    fn acknowledge(&mut self, next_expected: u32, now: Duration) {
        let acked = next_expected.wrapping_sub(self.base) as usize;
        if next_expected <= self.base || acked > self.stream.len() || next_expected > self.sent_max {
            return;
        }
        self.stream.drain(..acked);
        self.base = next_expected;
        if self.next < self.base {
            self.next = self.base;
        }
        self.retries = 0;
        self.timer = if self.next != self.base {
            Some(now + self.rto())
        } else {
            None
        };
    }

    fn go_back(&mut self) {
        self.next = self.base;
        self.clean_frames = 0;
        self.payload_target = (self.payload_target / 2).max(MIN_PAYLOAD);
    }

    pub(crate) fn poll_timeout(&self) -> Option<Duration> {
        if self.failed { None } else { self.timer }
    }

    pub(crate) fn handle_timeout(&mut self, now: Duration) {
        let Some(deadline) = self.timer else { return };
        if self.failed || now < deadline {
            return;
        }
        self.timer = None;
        self.retries += 1;
        self.stats.timeouts += 1;
        if self.retries > self.max_retries {
            self.failed = true;
            self.events.push_back(LinkEvent::Failed);
            return;
        }
        if !self.synced {
            self.sync_due = matches!(self.role, Role::Host { .. });
        } else {
            self.go_back();
        }
    }

    /// The next frame to write to the line, if any.
    pub(crate) fn poll_transmit(&mut self, now: Duration) -> Option<Vec<u8>> {
        if self.failed {
            return None;
        }
        let control = if let Some(nonce) = self.sync_ack_due.take() {
            let fw = self.firmware.expect("recorder knows its firmware");
            let mut p = nonce.to_le_bytes().to_vec();
            p.push(fw.code());
            p.push(self.window);
            p.extend_from_slice(&(self.max_payload as u16).to_le_bytes());
            Some(Frame::new(FrameKind::SyncAck, 0, p))
        } else if self.sync_due {
            let Role::Host { nonce } = self.role else {
                unreachable!("only hosts sync")
            };
            self.sync_due = false;
            self.timer = Some(now + self.timing.rto(1, MIN_PAYLOAD));
            let mut p = nonce.to_le_bytes().to_vec();
            p.push(HOST_WINDOW);
            p.extend_from_slice(&(HOST_MAX_PAYLOAD as u16).to_le_bytes());
            Some(Frame::new(FrameKind::Sync, 0, p))
        } else if self.nak_due {
            self.nak_due = false;
            self.ack_due = false;
            self.stats.naks_sent += 1;
            Some(Frame::new(FrameKind::Nak, self.expected, Vec::new()))
        } else if self.ack_due {
            self.ack_due = false;
            Some(Frame::new(FrameKind::Ack, self.expected, Vec::new()))
        } else {
            None
        };
        if let Some(frame) = control {
            let bytes = frame.encode().expect("control frames are small");
            self.stats.frames_sent += 1;
            self.stats.bytes_sent += bytes.len() as u64;
            return Some(bytes);
        }
        if !self.synced {
            return None;
        }
        let in_flight = self.next.wrapping_sub(self.base) as usize;
        let unsent = self.stream.len() - in_flight;
        // The window counts frames of the current size: on a noisy line a go-back then
        // resends a few small frames, not a whole kilobyte cut into crumbs.
        let window_left = (usize::from(self.window) * self.payload_target).saturating_sub(in_flight);
        if self.window == 1 && in_flight > 0 {
            // Stop-and-wait: one frame at a time.
            return None;
        }
        let n = unsent.min(window_left).min(self.payload_target);
        if n == 0 {
            return None;
        }
        let payload: Vec<u8> = self.stream.range(in_flight..in_flight + n).copied().collect();
        let mut bytes = Vec::with_capacity(n + OVERHEAD);
        encode_parts(FrameKind::Data, self.next, &payload, &mut bytes).expect("payload within MAX_PAYLOAD");
        let end = self.next.wrapping_add(n as u32);
        if self.next < self.sent_max {
            self.stats.retransmissions += 1;
        } else {
            self.clean_frames += 1;
            if self.clean_frames >= 16 && self.payload_target < self.max_payload {
                self.payload_target = (self.payload_target * 2).min(self.max_payload);
                self.clean_frames = 0;
            }
        }
        self.sent_max = self.sent_max.max(end);
        self.next = end;
        if self.timer.is_none() {
            self.timer = Some(now + self.rto());
        }
        self.stats.frames_sent += 1;
        self.stats.data_frames_sent += 1;
        self.stats.bytes_sent += bytes.len() as u64;
        Some(bytes)
    }
}

fn parse_sync(p: &[u8]) -> Option<(u32, u8, usize)> {
    (p.len() == 7).then(|| {
        (
            u32::from_le_bytes([p[0], p[1], p[2], p[3]]),
            p[4],
            usize::from(u16::from_le_bytes([p[5], p[6]])),
        )
    })
}
