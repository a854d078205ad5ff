//! The recorder end of a cradle session: the handheld's firmware, as a sans-IO state machine.
//! The simulator (`meterd simulate handheld`) and the tests drive it; its [`RecorderData`] is
//! what survives between dockings (routes, reads, the read sequence counter, the clock).

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::host::batch_len;
use super::link::{LineTiming, Link, LinkEvent, LinkStats, Role};
use super::message::{BATCH_HEADER_LEN, DeviceInfo, Firmware, Message};
use super::record::{ReadRecord, Route, RouteMeter, TroubleCode};
use crate::error::Result;

/// Fixed identity of a recorder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecorderConfig {
    pub serial: String,
    pub model: String,
    pub firmware: Firmware,
    pub firmware_version: String,
    /// Meters the recorder can hold across its routes.
    pub capacity: u32,
    pub timing: LineTiming,
    pub max_retries: u32,
}

impl RecorderConfig {
    pub fn new(serial: &str, firmware: Firmware, timing: LineTiming) -> Self {
        RecorderConfig {
            serial: serial.into(),
            model: match firmware {
                Firmware::V1 => "AR-3".into(),
                Firmware::V2 => "AR-5".into(),
            },
            firmware,
            firmware_version: match firmware {
                Firmware::V1 => "1.9.4".into(),
                Firmware::V2 => "2.3.1".into(),
            },
            capacity: 5000,
            timing,
            max_retries: 12,
        }
    }
}

/// What the recorder keeps in its memory between dockings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecorderData {
    pub routes: Vec<Route>,
    /// Reads not yet cleared by a host, in sequence order.
    pub reads: Vec<ReadRecord>,
    /// Sequence number the next read gets; never goes back, so (serial, seq) stays unique.
    pub next_seq: u32,
    /// Local civil time last set by a host (seconds since 1970).
    pub clock: Option<i64>,
}

impl RecorderData {
    /// Stores a read taken in the field, giving it the next sequence number.
    pub fn take_read(&mut self, mut read: ReadRecord) -> Result<u32> {
        read.seq = self.next_seq;
        read.validate()?;
        self.next_seq = self.next_seq.wrapping_add(1);
        let seq = read.seq;
        self.reads.push(read);
        Ok(seq)
    }

    /// Meters on the loaded routes, in walk order, with their route.
    pub fn meters(&self) -> impl Iterator<Item = (&Route, &RouteMeter)> {
        self.routes.iter().flat_map(|r| r.meters.iter().map(move |m| (r, m)))
    }
}

/// What happened on the recorder side (for the simulator's log and the tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum RecorderEvent {
    /// A host started a session.
    Docked,
    UnloadStarted {
        after: Option<u32>,
        reads: u32,
    },
    Cleared {
        deleted: u32,
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
        local_unix: i64,
    },
    /// The host said BYE.
    Bye,
    LinkFailed,
}

#[derive(Debug)]
struct Loading {
    route_id: String,
    meters_expected: u32,
    codes_expected: u32,
    meters: Vec<RouteMeter>,
    codes: Vec<TroubleCode>,
}

#[derive(Debug)]
struct Unloading {
    /// Index into `data.reads` of the next read to send.
    next: usize,
    sent: u32,
}

/// The recorder state machine. Same driving loop as [`super::Host`].
#[derive(Debug)]
pub struct Recorder {
    config: RecorderConfig,
    data: RecorderData,
    link: Link,
    unloading: Option<Unloading>,
    loading: Option<Loading>,
    events: VecDeque<RecorderEvent>,
}

impl Recorder {
    pub fn new(config: RecorderConfig, data: RecorderData) -> Self {
        let link = Link::new(
            Role::Recorder {
                firmware: config.firmware,
            },
            config.timing,
            config.max_retries,
        );
        Recorder {
            config,
            data,
            link,
            unloading: None,
            loading: None,
            events: VecDeque::new(),
        }
    }

    /// Puts the recorder in a cradle: a fresh link, waiting for a host's SYNC.
    pub fn dock(&mut self) {
        self.link = Link::new(
            Role::Recorder {
                firmware: self.config.firmware,
            },
            self.config.timing,
            self.config.max_retries,
        );
        self.unloading = None;
        self.loading = None;
    }

    pub fn config(&self) -> &RecorderConfig {
        &self.config
    }

    pub fn data(&self) -> &RecorderData {
        &self.data
    }

    pub fn data_mut(&mut self) -> &mut RecorderData {
        &mut self.data
    }

    pub fn stats(&self) -> LinkStats {
        self.link.stats()
    }

    pub fn poll_event(&mut self) -> Option<RecorderEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Duration> {
        self.link.poll_timeout()
    }

    pub fn handle_timeout(&mut self, now: Duration) {
        self.link.handle_timeout(now);
        self.process();
    }

    pub fn handle_bytes(&mut self, bytes: &[u8], now: Duration) {
        self.link.handle_bytes(bytes, now);
        self.process();
    }

    pub fn poll_transmit(&mut self, now: Duration) -> Option<Vec<u8>> {
        self.feed_unload();
        self.link.poll_transmit(now)
    }

    fn send(&mut self, msg: Message) {
        if let Ok(p) = msg.encode(self.config.firmware) {
            // Only fails for a message over 65535 bytes, which batching prevents.
            let _ = self.link.send(p);
        }
    }

    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            serial: self.config.serial.clone(),
            model: self.config.model.clone(),
            firmware: self.config.firmware,
            firmware_version: self.config.firmware_version.clone(),
            capacity: self.config.capacity,
            routes: self.data.routes.iter().map(|r| r.id.clone()).collect(),
            reads_pending: self.data.reads.len() as u32,
            next_seq: self.data.next_seq,
        }
    }

    fn process(&mut self) {
        while let Some(ev) = self.link.poll_event() {
            match ev {
                LinkEvent::Reset => {
                    self.unloading = None;
                    self.loading = None;
                    self.events.push_back(RecorderEvent::Docked);
                    let hello = Message::Hello(self.info());
                    self.send(hello);
                }
                LinkEvent::Failed => self.events.push_back(RecorderEvent::LinkFailed),
                LinkEvent::Synced(_) => {}
            }
        }
        while let Some(payload) = self.link.recv() {
            match Message::decode(&payload, self.config.firmware) {
                Ok(msg) => self.on_message(msg),
                Err(e) => self.send(Message::Refused {
                    reason: format!("undecodable message: {e}"),
                }),
            }
        }
    }

    fn on_message(&mut self, msg: Message) {
        match msg {
            Message::Unload { after } => {
                let next = self
                    .data
                    .reads
                    .iter()
                    .position(|r| after.is_none_or(|a| r.seq > a))
                    .unwrap_or(self.data.reads.len());
                let reads = (self.data.reads.len() - next) as u32;
                self.events.push_back(RecorderEvent::UnloadStarted { after, reads });
                self.unloading = Some(Unloading { next, sent: 0 });
            }
            Message::Clear { through } => {
                let before = self.data.reads.len();
                if let Some(t) = through {
                    self.data.reads.retain(|r| r.seq > t);
                }
                let deleted = (before - self.data.reads.len()) as u32;
                self.data.routes.clear();
                self.events.push_back(RecorderEvent::Cleared { deleted });
                self.send(Message::Cleared {
                    deleted,
                    remaining: self.data.reads.len() as u32,
                });
            }
            Message::LoadRoute {
                route_id,
                meters,
                codes,
            } => {
                self.loading = Some(Loading {
                    route_id,
                    meters_expected: meters,
                    codes_expected: codes,
                    meters: Vec::new(),
                    codes: Vec::new(),
                });
            }
            Message::TroubleCodes(c) => {
                if let Some(l) = &mut self.loading {
                    l.codes.extend(c);
                }
            }
            Message::Meters(m) => {
                if let Some(l) = &mut self.loading {
                    l.meters.extend(m);
                }
            }
            Message::LoadEnd => {
                let Some(l) = self.loading.take() else {
                    return self.send(Message::Refused {
                        reason: "LOAD_END without LOAD_ROUTE".into(),
                    });
                };
                let held: usize = self
                    .data
                    .routes
                    .iter()
                    .filter(|r| r.id != l.route_id)
                    .map(|r| r.meters.len())
                    .sum();
                let reason = if l.meters.len() as u32 != l.meters_expected || l.codes.len() as u32 != l.codes_expected {
                    Some(format!(
                        "route {} announced {} meters and {} codes, got {} and {}",
                        l.route_id,
                        l.meters_expected,
                        l.codes_expected,
                        l.meters.len(),
                        l.codes.len()
                    ))
                } else if held + l.meters.len() > self.config.capacity as usize {
                    Some(format!("capacity {} meters exceeded", self.config.capacity))
                } else {
                    None
                };
                match reason {
                    Some(reason) => {
                        self.events.push_back(RecorderEvent::RouteRefused {
                            route_id: l.route_id,
                            reason: reason.clone(),
                        });
                        self.send(Message::Refused { reason });
                    }
                    None => {
                        let meters = l.meters.len() as u32;
                        self.data.routes.retain(|r| r.id != l.route_id);
                        self.data.routes.push(Route {
                            id: l.route_id.clone(),
                            meters: l.meters,
                            trouble_codes: l.codes,
                        });
                        self.events.push_back(RecorderEvent::RouteLoaded {
                            route_id: l.route_id.clone(),
                            meters,
                        });
                        self.send(Message::Loaded {
                            route_id: l.route_id,
                            meters,
                        });
                    }
                }
            }
            Message::SetClock { local_unix } => {
                let previous = self.data.clock.replace(local_unix);
                self.events.push_back(RecorderEvent::ClockSet { local_unix });
                self.send(Message::ClockSet { previous });
            }
            Message::Bye => self.events.push_back(RecorderEvent::Bye),
            other => self.send(Message::Refused {
                reason: format!("{} is not a host message", other.name()),
            }),
        }
    }

    /// Queues READS batches while the window has room, then UNLOAD_DONE.
    fn feed_unload(&mut self) {
        let fw = self.config.firmware;
        while self.link.has_room() {
            let Some(u) = &mut self.unloading else { return };
            let reads = &self.data.reads;
            if u.next >= reads.len() {
                let done = Message::UnloadDone {
                    sent: u.sent,
                    last_seq: reads.last().map(|r| r.seq),
                };
                self.unloading = None;
                self.send(done);
                return;
            }
            // Batches fill one frame on a clean line; on a noisy one the link cuts them smaller.
            let limit = self.link.max_message() - BATCH_HEADER_LEN;
            let budget = limit;
            let n = batch_len(&reads[u.next..], budget, limit, |r, out| fw.emit_read(r, out));
            let batch = reads[u.next..u.next + n].to_vec();
            u.next += n;
            u.sent += n as u32;
            self.send(Message::Reads(batch));
        }
    }
}
