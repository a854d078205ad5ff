//! The reliable link under the session: SYNC handshake, sequenced DATA frames, cumulative ACKs,
//! go-back-N retransmission on NAK or timeout, and an adaptive payload size.
//!
//! Firmware 1 negotiates a window of 1 (stop-and-wait), firmware 2 a window of 8, so one engine
//! serves both. Time is whatever the caller passes as `now` (a `Duration` since session start).

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
    Host { nonce: u32 },
    Recorder { firmware: Firmware },
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

#[derive(Debug)]
struct Outgoing {
    seq: u8,
    bytes: Vec<u8>,
    sent_before: bool,
}

/// Host side offers up to this; the recorder's firmware caps it.
const HOST_WINDOW: u8 = 16;
const HOST_MAX_PAYLOAD: usize = super::frame::MAX_PAYLOAD;
/// Smallest payload the adaptive sizing shrinks to (one record is always sent whole).
pub(crate) const MIN_PAYLOAD: usize = 64;

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
    // Sender.
    outq: VecDeque<Outgoing>,
    next_idx: usize,
    next_seq: u8,
    timer: Option<Duration>,
    retries: u32,
    payload_target: usize,
    clean_acks: u32,
    sync_due: bool,
    sync_ack_due: Option<u32>,
    // Receiver.
    expected: u8,
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
            Role::Recorder { firmware } => {
                (firmware.window(), firmware.max_payload(), Some(firmware))
            }
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
            outq: VecDeque::new(),
            next_idx: 0,
            next_seq: 0,
            timer: None,
            retries: 0,
            payload_target: max_payload,
            clean_acks: 0,
            sync_due: matches!(role, Role::Host { .. }),
            sync_ack_due: None,
            expected: 0,
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

    fn rto(&self) -> Duration {
        self.timing.rto(self.window, self.max_payload)
    }

    /// True when another DATA frame may be queued without exceeding the window.
    pub(crate) fn has_room(&self) -> bool {
        self.synced && !self.failed && self.outq.len() < usize::from(self.window)
    }

    /// Payload size to aim for: the firmware maximum on a clean line, less after losses, so a
    /// noisy line still gets frames through.
    pub(crate) fn payload_target(&self) -> usize {
        self.payload_target
    }

    pub(crate) fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Nothing queued, unacknowledged or owed to the peer.
    pub(crate) fn is_idle(&self) -> bool {
        self.outq.is_empty()
            && !self.ack_due
            && !self.nak_due
            && self.sync_ack_due.is_none()
            && !self.sync_due
    }

    /// Queues a session message payload. The caller keeps it within [`Self::max_payload`].
    pub(crate) fn send(&mut self, payload: Vec<u8>) -> Result<(), Error> {
        let mut bytes = Vec::with_capacity(payload.len() + OVERHEAD);
        if payload.len() > self.max_payload {
            return Err(Error::invalid(
                "frame length",
                format!("{} exceeds negotiated {}", payload.len(), self.max_payload),
            ));
        }
        encode_parts(FrameKind::Data, self.next_seq, &payload, &mut bytes)?;
        self.outq.push_back(Outgoing {
            seq: self.next_seq,
            bytes,
            sent_before: false,
        });
        self.next_seq = self.next_seq.wrapping_add(1);
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
        let holdoff =
            self.timing.turnaround * 2 + self.timing.bytes_time(2 * (self.max_payload + OVERHEAD));
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
                if p.len() != 8
                    || u32::from_le_bytes([p[0], p[1], p[2], p[3]]) != nonce
                    || self.synced
                {
                    return;
                }
                let Ok(fw) = Firmware::from_code(p[4]) else {
                    return;
                };
                self.window = p[5].clamp(1, HOST_WINDOW);
                self.max_payload = usize::from(u16::from_le_bytes([p[6], p[7]]))
                    .clamp(MIN_PAYLOAD, HOST_MAX_PAYLOAD);
                self.payload_target = self.max_payload;
                self.firmware = Some(fw);
                self.synced = true;
                self.sync_due = false;
                self.timer = None;
                self.retries = 0;
                self.events.push_back(LinkEvent::Synced(fw));
            }
            (FrameKind::Data, _) if self.synced => {
                if frame.seq == self.expected {
                    self.delivered.push_back(frame.payload);
                    self.expected = self.expected.wrapping_add(1);
                    self.ack_due = true;
                    self.last_nak = None;
                } else if self.expected.wrapping_sub(frame.seq) <= 128 {
                    // A duplicate of something delivered: our ACK was lost, repeat it.
                    self.ack_due = true;
                } else {
                    self.request_resend(now);
                }
            }
            (FrameKind::Ack, _) if self.synced => self.acknowledge(frame.seq, now),
            (FrameKind::Nak, _) if self.synced => {
                self.stats.naks_received += 1;
                self.acknowledge(frame.seq, now);
                if self.next_idx > 0 {
                    self.go_back();
                    self.timer = Some(now + self.rto());
                }
            }
            _ => {}
        }
    }

    /// A host started a new link: both directions restart at sequence 0.
    fn reset_for(&mut self, nonce: u32, window: u8, max_payload: usize, firmware: Firmware) {
        self.current_nonce = Some(nonce);
        self.window = window.clamp(1, firmware.window());
        self.max_payload = max_payload.clamp(MIN_PAYLOAD, firmware.max_payload());
        self.payload_target = self.max_payload;
        self.outq.clear();
        self.next_idx = 0;
        self.next_seq = 0;
        self.timer = None;
        self.retries = 0;
        self.clean_acks = 0;
        self.expected = 0;
        self.ack_due = false;
        self.nak_due = false;
        self.last_nak = None;
        self.delivered.clear();
        self.synced = true;
        self.events.push_back(LinkEvent::Reset);
    }

    fn acknowledge(&mut self, next_expected: u8, now: Duration) {
        let Some(front) = self.outq.front() else {
            return;
        };
        let k = usize::from(next_expected.wrapping_sub(front.seq));
        if k == 0 || k > self.outq.len() || k > usize::from(self.window) {
            return;
        }
        for _ in 0..k {
            if let Some(o) = self.outq.pop_front()
                && !o.sent_before
            {
                self.clean_acks += 1;
            }
        }
        self.next_idx = self.next_idx.saturating_sub(k);
        self.retries = 0;
        self.timer = if self.next_idx > 0 {
            Some(now + self.rto())
        } else {
            None
        };
        if self.clean_acks >= 16 && self.payload_target < self.max_payload {
            self.payload_target = (self.payload_target * 2).min(self.max_payload);
            self.clean_acks = 0;
        }
    }

    fn go_back(&mut self) {
        self.next_idx = 0;
        self.clean_acks = 0;
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
        if !self.synced
            || self.next_idx >= self.outq.len()
            || self.next_idx >= usize::from(self.window)
        {
            return None;
        }
        let out = &mut self.outq[self.next_idx];
        if out.sent_before {
            self.stats.retransmissions += 1;
        }
        out.sent_before = true;
        let bytes = out.bytes.clone();
        self.next_idx += 1;
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
