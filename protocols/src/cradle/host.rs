//! The host end of a cradle session (meterd's side), as a sans-IO state machine.
//!
//! The caller owns the serial port, the clock and the store. It feeds bytes and time in and
//! takes bytes, timer deadlines and events out:
//!
//! ```text
//! loop {
//!     while let Some(bytes) = host.poll_transmit(now) { port.write_all(&bytes) }
//!     while let Some(event) = host.poll_event() { ...store, host.committed(seq), host.load(routes)... }
//!     select { bytes = port.read() => host.handle_bytes(&bytes, now),
//!              _ = sleep_until(host.poll_timeout()) => host.handle_timeout(now) }
//! }
//! ```
//!
//! The durability rule is enforced here: `CLEAR` is only queued from [`Host::committed`] (or,
//! for reads the caller declared already committed via [`Host::unload`]'s `after`), and only
//! once the unload is complete, so no recorder is ever told to delete a read that is not in the
//! store.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;

use super::link::{LineTiming, Link, LinkEvent, LinkStats, Role};
use super::message::{BATCH_HEADER_LEN, DeviceInfo, Firmware, Message};
use super::record::{ReadRecord, Route};

/// How a host session is set up.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub timing: LineTiming,
    /// Distinguishes this docking from the previous one on the same port (any value that
    /// changes per session, e.g. a counter); a recorder restarts its session when it changes.
    pub session_nonce: u32,
    /// Local civil time, as seconds since 1970 (see [`super::ReadTime::to_unix`]), at `now = 0`;
    /// `SET_CLOCK` sends this plus the session time elapsed.
    pub clock_at_start: i64,
    /// Consecutive retransmission timeouts before the link is declared lost.
    pub max_retries: u32,
    /// How long to wait for the recorder to say anything while it owes us a message.
    pub idle_timeout: Duration,
}

impl HostConfig {
    pub fn new(timing: LineTiming, session_nonce: u32, clock_at_start: i64) -> Self {
        HostConfig {
            timing,
            session_nonce,
            clock_at_start,
            max_retries: 12,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// Where the session is. Public so a driver can show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Phase {
    /// Waiting for a recorder to answer SYNC.
    Syncing,
    /// Link up, waiting for HELLO.
    AwaitHello,
    /// [`HostEvent::Docked`] emitted; waiting for the caller's [`Host::unload`].
    AwaitUnloadCommand,
    /// Reads are coming in.
    Unloading,
    /// Unload complete; waiting for [`Host::committed`] before CLEAR.
    AwaitCommit,
    /// CLEAR sent, waiting for CLEARED.
    Clearing,
    /// Waiting for the caller's [`Host::load`].
    AwaitRoutes,
    /// Route records going down.
    Loading,
    /// SET_CLOCK sent.
    SettingClock,
    /// BYE sent, waiting for its acknowledgement.
    Closing,
    Finished,
    Failed,
}

/// Why a session ended early. Nothing was cleared unless [`HostEvent::Cleared`] was emitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SessionFailure {
    /// No recorder answered SYNC.
    NoAnswer,
    /// Retransmissions exhausted, or the driver reported the port gone.
    LinkLost,
    /// The recorder went silent while it owed us a message.
    Idle,
    /// The recorder broke the protocol (message out of order, reads missing, undecodable).
    Protocol(String),
}

impl std::fmt::Display for SessionFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionFailure::NoAnswer => f.write_str("no recorder answered"),
            SessionFailure::LinkLost => f.write_str("link lost"),
            SessionFailure::Idle => f.write_str("recorder went silent"),
            SessionFailure::Protocol(d) => write!(f, "protocol violation: {d}"),
        }
    }
}

/// What happened, for the caller to act on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum HostEvent {
    /// A recorder said HELLO. Call [`Host::unload`] (and [`Host::load`] when its routes are known).
    Docked(DeviceInfo),
    /// Reads to store durably, in sequence order, already deduplicated. Call
    /// [`Host::committed`] with the last one's `seq` once they are committed.
    ReadsReceived {
        serial: String,
        reads: Vec<ReadRecord>,
    },
    /// Every pending read has been sent.
    UnloadComplete {
        serial: String,
        received: u32,
        last_seq: Option<u32>,
    },
    /// The recorder deleted its reads up to the committed sequence and unloaded its routes.
    Cleared {
        deleted: u32,
        remaining: u32,
    },
    RouteLoaded {
        route_id: String,
        meters: u32,
    },
    RouteRefused {
        route_id: String,
        reason: String,
    },
    ClockSet {
        previous: Option<i64>,
        now: i64,
    },
    /// A message that could not be decoded, kept for the quarantine.
    Quarantined {
        payload: Vec<u8>,
        error: String,
    },
    /// Session complete: the recorder may be taken from the cradle.
    Finished(SessionSummary),
    /// Session ended early.
    Failed(SessionFailure),
}

/// What a finished session did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionSummary {
    pub device: DeviceInfo,
    pub reads_received: u32,
    pub last_seq: Option<u32>,
    pub routes_loaded: Vec<String>,
    pub link: LinkStats,
}

/// A command given at the wrong time, or with an impossible argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{command} refused in phase {phase:?}: {reason}")]
pub struct CommandError {
    pub command: &'static str,
    pub phase: Phase,
    pub reason: String,
}

#[derive(Debug)]
enum LoadStep {
    Header,
    Codes(usize),
    Meters(usize),
    End,
}

/// The host state machine. See the module docs for the driving loop.
#[derive(Debug)]
pub struct Host {
    config: HostConfig,
    link: Link,
    phase: Phase,
    device: Option<DeviceInfo>,
    resume_after: Option<u32>,
    highest_seen: Option<u32>,
    emitted_through: Option<u32>,
    committed_through: Option<u32>,
    received: u32,
    unload_last: Option<u32>,
    routes: Option<Vec<Route>>,
    load_cursor: (usize, LoadStep),
    awaiting_loaded: VecDeque<String>,
    routes_loaded: Vec<String>,
    events: VecDeque<HostEvent>,
    last_heard: Duration,
    frames_heard: u64,
    dropped: u32,
}

fn max_opt(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    a.max(b)
}

impl Host {
    pub fn new(config: HostConfig, now: Duration) -> Self {
        let link = Link::new(
            Role::Host {
                nonce: config.session_nonce,
            },
            config.timing,
            config.max_retries,
        );
        Host {
            config,
            link,
            phase: Phase::Syncing,
            device: None,
            resume_after: None,
            highest_seen: None,
            emitted_through: None,
            committed_through: None,
            received: 0,
            unload_last: None,
            routes: None,
            load_cursor: (0, LoadStep::Header),
            awaiting_loaded: VecDeque::new(),
            routes_loaded: Vec::new(),
            events: VecDeque::new(),
            last_heard: now,
            frames_heard: 0,
            dropped: 0,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn device(&self) -> Option<&DeviceInfo> {
        self.device.as_ref()
    }

    /// Firmware generation, once the recorder answered SYNC.
    pub fn firmware(&self) -> Option<Firmware> {
        self.link.firmware()
    }

    pub fn stats(&self) -> LinkStats {
        self.link.stats()
    }

    /// Reads delivered so far and the number the recorder announced in HELLO (for a
    /// progress bar; the announcement includes reads a resumed unload skips).
    pub fn unload_progress(&self) -> (u32, u32) {
        (self.received, self.device.as_ref().map_or(0, |d| d.reads_pending))
    }

    /// True once the session ended, successfully or not.
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Finished | Phase::Failed)
    }

    fn refuse(&self, command: &'static str, reason: impl Into<String>) -> CommandError {
        CommandError {
            command,
            phase: self.phase,
            reason: reason.into(),
        }
    }

    /// Starts the unload. `after` is the highest read sequence of this device that the store
    /// has already committed (from an interrupted earlier session), or `None`: the recorder
    /// resends only later reads, and any read at or below it is dropped as a duplicate.
    pub fn unload(&mut self, after: Option<u32>) -> Result<(), CommandError> {
        if self.phase != Phase::AwaitUnloadCommand {
            return Err(self.refuse("unload", "only after Docked and once per session"));
        }
        let next_seq = self.device.as_ref().map_or(0, |d| d.next_seq);
        if let Some(a) = after.filter(|a| *a >= next_seq) {
            // The recorder numbers reads below what the store already holds: its memory was
            // reset. Resuming from this watermark could clear reads never stored, so stop.
            let reason = format!("committed watermark {a} is not below the recorder's next sequence {next_seq}");
            let err = self.refuse("unload", reason.clone());
            self.fail(SessionFailure::Protocol(reason));
            return Err(err);
        }
        self.resume_after = after;
        self.committed_through = after;
        self.send(Message::Unload { after });
        self.phase = Phase::Unloading;
        Ok(())
    }

    /// Declares every read up to and including `through` durably committed. This is the only
    /// path to CLEAR.
    pub fn committed(&mut self, through: u32) -> Result<(), CommandError> {
        if self.emitted_through.is_none_or(|e| through > e) {
            return Err(self.refuse(
                "committed",
                format!("read {through} was never delivered in this session"),
            ));
        }
        self.committed_through = max_opt(self.committed_through, Some(through));
        self.try_clear();
        Ok(())
    }

    /// Gives the routes to load after CLEAR (may be empty). Valid from [`HostEvent::Docked`]
    /// until the load starts; the routes are checked field by field first.
    pub fn load(&mut self, routes: Vec<Route>) -> Result<(), CommandError> {
        if self.device.is_none() || self.routes.is_some() || self.is_done() {
            return Err(self.refuse("load", "only once, after Docked"));
        }
        for r in &routes {
            r.validate()
                .map_err(|e| self.refuse("load", format!("route {:?}: {e}", r.id)))?;
        }
        let capacity = self.device.as_ref().map_or(0, |d| d.capacity) as usize;
        let meters: usize = routes.iter().map(|r| r.meters.len()).sum();
        if meters > capacity {
            return Err(self.refuse(
                "load",
                format!("{meters} meters exceed the recorder's capacity of {capacity}"),
            ));
        }
        self.routes = Some(routes);
        if self.phase == Phase::AwaitRoutes {
            self.phase = Phase::Loading;
        }
        Ok(())
    }

    /// The driver lost the port (read returned 0 bytes, device vanished).
    pub fn link_lost(&mut self) {
        self.fail(SessionFailure::LinkLost);
    }

    pub fn handle_bytes(&mut self, bytes: &[u8], now: Duration) {
        if self.is_done() {
            return;
        }
        self.link.handle_bytes(bytes, now);
        let heard = self.link.stats().frames_received;
        if heard != self.frames_heard {
            self.frames_heard = heard;
            self.last_heard = now;
        }
        self.process(now);
    }

    pub fn poll_timeout(&self) -> Option<Duration> {
        if self.is_done() {
            return None;
        }
        let idle = self.awaits_peer().then(|| self.last_heard + self.config.idle_timeout);
        match (self.link.poll_timeout(), idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn handle_timeout(&mut self, now: Duration) {
        if self.is_done() {
            return;
        }
        self.link.handle_timeout(now);
        self.process(now);
        if !self.is_done() && self.awaits_peer() && now >= self.last_heard + self.config.idle_timeout {
            self.fail(SessionFailure::Idle);
        }
    }

    pub fn poll_event(&mut self) -> Option<HostEvent> {
        self.check_finished();
        self.events.pop_front()
    }

    /// The next frame to write to the port.
    pub fn poll_transmit(&mut self, now: Duration) -> Option<Vec<u8>> {
        if self.is_done() {
            return None;
        }
        if self.phase == Phase::Loading {
            self.feed_load(now);
        }
        let out = self.link.poll_transmit(now);
        self.check_finished();
        out
    }

    fn awaits_peer(&self) -> bool {
        matches!(
            self.phase,
            Phase::AwaitHello
                | Phase::Unloading
                | Phase::Clearing
                | Phase::Loading
                | Phase::SettingClock
                | Phase::Closing
        )
    }

    fn fail(&mut self, why: SessionFailure) {
        if !self.is_done() {
            self.phase = Phase::Failed;
            self.events.push_back(HostEvent::Failed(why));
        }
    }

    /// BYE is acknowledged and nothing is owed: the session is complete.
    fn check_finished(&mut self) {
        if self.phase == Phase::Closing && self.link.is_idle() {
            self.finish();
        }
    }

    fn finish(&mut self) {
        self.phase = Phase::Finished;
        let device = self.device.clone().expect("finished sessions had a HELLO");
        self.events.push_back(HostEvent::Finished(SessionSummary {
            device,
            reads_received: self.received,
            last_seq: self.unload_last,
            routes_loaded: self.routes_loaded.clone(),
            link: self.link.stats(),
        }));
    }

    fn send(&mut self, msg: Message) {
        let fw = self.link.firmware().unwrap_or(Firmware::V1);
        match msg.encode(fw).and_then(|p| self.link.send(p)) {
            Ok(()) => {}
            Err(e) => self.fail(SessionFailure::Protocol(format!("cannot send {}: {e}", msg.name()))),
        }
    }

    fn process(&mut self, now: Duration) {
        while let Some(ev) = self.link.poll_event() {
            match ev {
                LinkEvent::Synced(_) => {
                    if self.phase == Phase::Syncing {
                        self.phase = Phase::AwaitHello;
                        self.last_heard = now;
                    }
                }
                LinkEvent::Failed => {
                    let why = if self.phase == Phase::Syncing {
                        SessionFailure::NoAnswer
                    } else {
                        SessionFailure::LinkLost
                    };
                    self.fail(why);
                }
                LinkEvent::Reset => {}
            }
        }
        while !self.is_done() {
            let Some(payload) = self.link.recv() else {
                break;
            };
            let fw = self.link.firmware().unwrap_or(Firmware::V1);
            match Message::decode(&payload, fw) {
                Ok(msg) => self.on_message(msg, now),
                Err(e) => {
                    let error = e.to_string();
                    self.events.push_back(HostEvent::Quarantined {
                        payload,
                        error: error.clone(),
                    });
                    self.fail(SessionFailure::Protocol(format!("undecodable message: {error}")));
                }
            }
        }
    }

    fn unexpected(&mut self, msg: &Message) {
        let detail = format!("{} in phase {:?}", msg.name(), self.phase);
        self.fail(SessionFailure::Protocol(detail));
    }

    fn on_message(&mut self, msg: Message, now: Duration) {
        match (self.phase, msg) {
            (Phase::AwaitHello, Message::Hello(info)) => {
                if Some(info.firmware) != self.link.firmware() {
                    let detail = format!("HELLO says {:?}, link says {:?}", info.firmware, self.link.firmware());
                    return self.fail(SessionFailure::Protocol(detail));
                }
                self.device = Some(info.clone());
                self.phase = Phase::AwaitUnloadCommand;
                self.events.push_back(HostEvent::Docked(info));
            }
            (Phase::Unloading, Message::Reads(reads)) => self.on_reads(reads),
            (Phase::Unloading, Message::UnloadDone { sent, last_seq }) => {
                let have = max_opt(self.highest_seen, self.resume_after);
                if sent != self.received + self.duplicates_dropped()
                    || last_seq.is_some_and(|l| have.is_none_or(|h| h < l))
                {
                    let detail = format!(
                        "UNLOAD_DONE says {sent} reads through {last_seq:?}, received {} through {have:?}",
                        self.received
                    );
                    return self.fail(SessionFailure::Protocol(detail));
                }
                self.unload_last = last_seq;
                self.phase = Phase::AwaitCommit;
                let serial = self.serial();
                self.events.push_back(HostEvent::UnloadComplete {
                    serial,
                    received: self.received,
                    last_seq,
                });
                self.try_clear();
            }
            (Phase::Clearing, Message::Cleared { deleted, remaining }) => {
                self.events.push_back(HostEvent::Cleared { deleted, remaining });
                self.phase = if self.routes.is_some() {
                    Phase::Loading
                } else {
                    Phase::AwaitRoutes
                };
            }
            (Phase::Loading, Message::Loaded { route_id, meters })
                if self.awaiting_loaded.front() == Some(&route_id) =>
            {
                self.awaiting_loaded.pop_front();
                self.routes_loaded.push(route_id.clone());
                self.events.push_back(HostEvent::RouteLoaded { route_id, meters });
                self.after_load_answer(now);
            }
            (Phase::Loading, Message::Refused { reason }) if !self.awaiting_loaded.is_empty() => {
                let route_id = self.awaiting_loaded.pop_front().expect("checked non-empty");
                self.events.push_back(HostEvent::RouteRefused { route_id, reason });
                self.after_load_answer(now);
            }
            (Phase::SettingClock, Message::ClockSet { previous }) => {
                let now_local = self.clock_now(now);
                self.events.push_back(HostEvent::ClockSet {
                    previous,
                    now: now_local,
                });
                self.send(Message::Bye);
                self.phase = Phase::Closing;
            }
            (_, msg) => self.unexpected(&msg),
        }
    }

    fn duplicates_dropped(&self) -> u32 {
        self.dropped
    }

    fn serial(&self) -> String {
        self.device.as_ref().map(|d| d.serial.clone()).unwrap_or_default()
    }

    fn on_reads(&mut self, reads: Vec<ReadRecord>) {
        let mut fresh = Vec::with_capacity(reads.len());
        for r in reads {
            if self.resume_after.is_some_and(|a| r.seq <= a) {
                // Committed in an earlier session: the recorder sent it again because it was
                // never cleared. Dropping it is what makes a resumed unload duplicate-free.
                self.dropped += 1;
                continue;
            }
            if self.highest_seen.is_some_and(|h| r.seq <= h) {
                let detail = format!(
                    "read {} after read {:?}: sequence not increasing",
                    r.seq, self.highest_seen
                );
                return self.fail(SessionFailure::Protocol(detail));
            }
            self.highest_seen = Some(r.seq);
            fresh.push(r);
        }
        if let Some(last) = fresh.last() {
            self.emitted_through = Some(last.seq);
            self.received += fresh.len() as u32;
            let serial = self.serial();
            self.events.push_back(HostEvent::ReadsReceived { serial, reads: fresh });
        }
    }

    /// The only place a CLEAR is created: the unload is complete and everything the recorder
    /// holds up to its last read is committed.
    fn try_clear(&mut self) {
        if self.phase != Phase::AwaitCommit {
            return;
        }
        let covered = match self.unload_last {
            None => true,
            Some(last) => self.committed_through.is_some_and(|c| c >= last),
        };
        if covered {
            self.send(Message::Clear {
                through: self.unload_last,
            });
            self.phase = Phase::Clearing;
        }
    }

    fn clock_now(&self, now: Duration) -> i64 {
        self.config.clock_at_start + now.as_secs() as i64
    }

    fn after_load_answer(&mut self, now: Duration) {
        let all_sent = self.routes.as_ref().is_some_and(|r| self.load_cursor.0 >= r.len());
        if all_sent && self.awaiting_loaded.is_empty() {
            self.send(Message::SetClock {
                local_unix: self.clock_now(now),
            });
            self.phase = Phase::SettingClock;
        }
    }

    /// Queues route messages while the window has room, sized to the link's current target.
    fn feed_load(&mut self, now: Duration) {
        let fw = self.link.firmware().unwrap_or(Firmware::V1);
        let Some(routes) = self.routes.take() else {
            return;
        };
        while self.link.has_room() && self.load_cursor.0 < routes.len() {
            let route = &routes[self.load_cursor.0];
            // Batches fill one frame on a clean line; on a noisy one the link cuts them smaller.
            let limit = self.link.max_message() - BATCH_HEADER_LEN;
            let budget = limit;
            let msg = match self.load_cursor.1 {
                LoadStep::Header => {
                    self.load_cursor.1 = LoadStep::Codes(0);
                    Message::LoadRoute {
                        route_id: route.id.clone(),
                        meters: route.meters.len() as u32,
                        codes: route.trouble_codes.len() as u32,
                    }
                }
                LoadStep::Codes(i) if i < route.trouble_codes.len() => {
                    let n = batch_len(&route.trouble_codes[i..], budget, limit, |c, out| fw.emit_code(c, out));
                    self.load_cursor.1 = LoadStep::Codes(i + n);
                    Message::TroubleCodes(route.trouble_codes[i..i + n].to_vec())
                }
                LoadStep::Codes(_) => {
                    self.load_cursor.1 = LoadStep::Meters(0);
                    continue;
                }
                LoadStep::Meters(i) if i < route.meters.len() => {
                    let n = batch_len(&route.meters[i..], budget, limit, |m, out| fw.emit_meter(m, out));
                    self.load_cursor.1 = LoadStep::Meters(i + n);
                    Message::Meters(route.meters[i..i + n].to_vec())
                }
                LoadStep::Meters(_) => {
                    self.load_cursor.1 = LoadStep::End;
                    continue;
                }
                LoadStep::End => {
                    self.awaiting_loaded.push_back(route.id.clone());
                    self.load_cursor = (self.load_cursor.0 + 1, LoadStep::Header);
                    Message::LoadEnd
                }
            };
            self.send(msg);
        }
        let all_sent = self.load_cursor.0 >= routes.len();
        self.routes = Some(routes);
        if all_sent && self.awaiting_loaded.is_empty() {
            self.after_load_answer(now);
        }
    }
}

/// How many leading items fit in `budget` bytes (always at least one; never past `limit`).
pub(crate) fn batch_len<T>(
    items: &[T],
    budget: usize,
    limit: usize,
    emit: impl Fn(&T, &mut Vec<u8>) -> crate::Result<()>,
) -> usize {
    let mut scratch = Vec::new();
    let (mut used, mut n) = (0, 0);
    for item in items {
        scratch.clear();
        if emit(item, &mut scratch).is_err() {
            break;
        }
        let next = used + scratch.len();
        if next > limit || (n > 0 && next > budget) || n == usize::from(u16::MAX) {
            break;
        }
        used = next;
        n += 1;
    }
    n.max(1)
}
