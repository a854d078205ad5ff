//! Simulated AMR gateway traffic for `meterd simulate gateway`, the demo, tests and the
//! benchmark: SCM, SCM+, IDM and R900 meters heard by several gateways, with repeats and some
//! corrupt packets, as rtlamr JSON lines and raw-hex envelopes.
//!
//! Frames are built with the protocol crate's encoders, so every good packet passes its check
//! and every corrupt one (one flipped bit after the sync) fails it. Each message says which
//! transmission it carries, so a test knows exactly which reads must be stored once.

use std::collections::VecDeque;

use jiff::{SignedDuration, Timestamp};
use meterd_protocols::Decoded;
use meterd_protocols::ert::idm::{IDM_INTERVALS, Idm};
use meterd_protocols::ert::r900::R900;
use meterd_protocols::ert::scm::Scm;
use meterd_protocols::ert::scm_plus::ScmPlus;
use meterd_protocols::ert::{self};
use serde_json::json;

use crate::demo::Rng;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub meters: usize,
    pub gateways: usize,
    pub corrupt_rate: f64,
    pub seed: u64,
    /// Topics are `PREFIX/gwN/rtlamr` and `PREFIX/gwN/raw`.
    pub topic_prefix: String,
    /// Virtual time of the first transmission.
    pub start: Timestamp,
}

/// One MQTT message to publish.
#[derive(Debug, Clone)]
pub struct SimMessage {
    pub topic: String,
    pub payload: Vec<u8>,
    /// The transmission it carries (dedup key) when it is intact; `None` when corrupt.
    pub key: Option<String>,
    /// Endpoint key (`scm:ID`) and register of the transmission.
    pub endpoint: String,
    pub register: u64,
    pub protocol: &'static str,
}

#[derive(Debug, Clone)]
enum Kind {
    Scm(Scm),
    ScmPlus(ScmPlus),
    Idm(Box<Idm>),
    R900(R900),
}

#[derive(Debug, Clone)]
struct SimMeter {
    kind: Kind,
    /// Virtual time of its latest transmission.
    at: Timestamp,
}

/// An endless stream of gateway messages.
#[derive(Debug)]
pub struct Traffic {
    rng: Rng,
    opts: SimOptions,
    meters: Vec<SimMeter>,
    next: usize,
    queue: VecDeque<SimMessage>,
}

/// An IDM packet heard over the air (serial 11278109; rtl_433_tests `tests/idm/`), the shape of
/// every simulated IDM.
const IDM_TEMPLATE: &str = "555516A31C5CC6041700AC171DF6BC020100EF0900000000000000000000053004000000000000000000000000000000000000000000000000000000008000000000000000000000200000000000000000000008000001DCEABA7C37";

impl Traffic {
    pub fn new(opts: SimOptions) -> Self {
        let mut rng = Rng::new(opts.seed ^ 0x6761_7465_7761_7900);
        let template = Idm::parse(&hex::decode(IDM_TEMPLATE).expect("hex")).expect("the template passes its CRCs");
        let meters = (0..opts.meters.max(1))
            .map(|i| {
                let id = 10_000_000 + i as u32 * 7 + (rng.range(0, 6) as u32);
                let c = rng.range(1_000, 900_000) as u32;
                let kind = match i % 10 {
                    0..=4 => Kind::Scm(Scm {
                        id,
                        ert_type: [3, 4, 7, 12, 13][i % 5],
                        tamper_phy: rng.range(0, 3) as u8,
                        tamper_enc: 1,
                        consumption: c,
                        checksum: 0,
                    }),
                    5 | 6 => Kind::ScmPlus(ScmPlus {
                        frame_sync: 0x16A3,
                        protocol_id: 0x1E,
                        endpoint_type: [0xAB, 0xBC, 0x07][i % 3],
                        endpoint_id: id,
                        consumption: c,
                        tamper: 0x0100,
                        packet_crc: 0,
                    }),
                    7 => Kind::Idm(Box::new(Idm {
                        serial: id,
                        interval_count: rng.range(0, 255) as u8,
                        last_consumption: c,
                        intervals: [0; IDM_INTERVALS],
                        transmit_time_offset: 0,
                        ..template
                    })),
                    _ => Kind::R900(R900 {
                        id: 1_500_000_000 + id,
                        unkn1: 0xA3,
                        no_use: 0,
                        back_flow: 0,
                        consumption: c,
                        unkn3: 0,
                        leak: 0,
                        leak_now: 0,
                        parity: [0; 5],
                    }),
                };
                let offset = SignedDuration::from_millis(rng.range(0, 300_000));
                SimMeter {
                    kind,
                    at: opts.start.checked_add(offset).unwrap_or(opts.start),
                }
            })
            .collect();
        Traffic {
            rng,
            opts,
            meters,
            next: 0,
            queue: VecDeque::new(),
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.rng.next_u64() % 1_000_000) as f64 / 1_000_000.0 < p
    }

    /// The meter's next transmission: a new reading 5 minutes after its last.
    fn advance(&mut self, i: usize) {
        // Steady use, so VEE flags the planted tamper and leak rather than noise.
        let step = self.rng.range(15, 25) as u32;
        let tamper = self.chance(0.01);
        let leak = self.chance(0.02);
        let m = &mut self.meters[i];
        m.at = m.at.checked_add(SignedDuration::from_secs(300)).unwrap_or(m.at);
        match &mut m.kind {
            Kind::Scm(s) => {
                s.consumption = (s.consumption + step) & 0xFF_FFFF;
                if tamper {
                    s.tamper_phy = (s.tamper_phy + 1) & 3;
                }
            }
            Kind::ScmPlus(s) => {
                s.consumption = s.consumption.wrapping_add(step);
                if tamper {
                    s.tamper = s.tamper.wrapping_add(1);
                }
            }
            Kind::Idm(m) => {
                m.intervals.copy_within(0..IDM_INTERVALS - 1, 1);
                m.intervals[0] = step as u16;
                m.last_consumption = m.last_consumption.wrapping_add(step);
                m.interval_count = m.interval_count.wrapping_add(1);
            }
            Kind::R900(r) => {
                r.consumption = (r.consumption + step) & 0xFF_FFFF;
                r.leak_now = u8::from(leak);
            }
        }
    }

    /// Frame bytes, decoded form and rtlamr type of the meter's current transmission heard
    /// `repeat` × 30 s after it began (IDM: the transmit time offset grows).
    fn frame(&mut self, i: usize, repeat: u16) -> (Vec<u8>, Decoded, &'static str, &'static str) {
        match &mut self.meters[i].kind {
            Kind::Scm(s) => {
                let f = s.encode().to_vec();
                (f.clone(), ert::scm::decode(&f).expect("valid SCM"), "SCM", "scm")
            }
            Kind::ScmPlus(s) => {
                let f = s.encode().to_vec();
                (
                    f.clone(),
                    ert::scm_plus::decode(&f).expect("valid SCM+"),
                    "SCM+",
                    "scm+",
                )
            }
            Kind::Idm(m) => {
                m.transmit_time_offset = 16 * (5 + 30 * repeat);
                let f = m.encode().to_vec();
                (f.clone(), ert::idm::decode(&f, false).expect("valid IDM"), "IDM", "idm")
            }
            Kind::R900(r) => {
                let f = r.encode().to_vec();
                (
                    f.clone(),
                    ert::r900::decode(&f, false).expect("valid R900"),
                    "R900",
                    "r900",
                )
            }
        }
    }

    fn fill(&mut self) {
        let i = self.next % self.meters.len();
        self.next += 1;
        self.advance(i);
        let repeats = if self.chance(0.3) { 2 } else { 1 };
        let gateways = self.opts.gateways.max(1);
        for repeat in 0..repeats {
            let (frame, decoded, rtlamr_type, protocol) = self.frame(i, repeat);
            let key = ert::dedup_key(&decoded).expect("ERT dedup key");
            let endpoint = format!("{}:{}", decoded.protocol, decoded.meter_id);
            let register = decoded
                .readings
                .iter()
                .find(|r| r.quantity == "register")
                .and_then(|r| r.value.as_u64())
                .unwrap_or(0);
            let heard = 1 + (self.rng.next_u64() % gateways.min(3) as u64) as usize;
            let first_gw = (self.rng.next_u64() % gateways as u64) as usize;
            let base = self.meters[i]
                .at
                .checked_add(SignedDuration::from_secs(30 * i64::from(repeat)))
                .expect("time");
            for k in 0..heard {
                let gw = (first_gw + k) % gateways;
                let at = base
                    .checked_add(SignedDuration::from_millis(self.rng.range(0, 400)))
                    .expect("time");
                let corrupt = self.chance(self.opts.corrupt_rate);
                let as_json = !corrupt && gw.is_multiple_of(2);
                let (topic, payload) = if as_json {
                    let line = json!({"Time": at.to_string(), "Offset": 0, "Length": 0, "Type": rtlamr_type, "Message": decoded.fields});
                    (
                        format!("{}/gw{gw}/rtlamr", self.opts.topic_prefix),
                        serde_json::to_vec(&line).expect("JSON"),
                    )
                } else {
                    let mut bytes = frame.clone();
                    if corrupt {
                        // One bit after the sync: every check here catches a single-bit error.
                        let (lo, hi): (usize, usize) = match protocol {
                            "scm" => (21, 96),
                            "scm+" => (16, 128),
                            "idm" => (40, 736),
                            _ => (0, 105),
                        };
                        let bit = lo + (self.rng.next_u64() % (hi - lo) as u64) as usize;
                        bytes[bit / 8] ^= 0x80 >> (bit % 8);
                    }
                    let mut env = json!({"gateway": format!("gw{gw}"), "received_at": at.to_string(), "hex": hex::encode_upper(&bytes)});
                    if gw % 4 == 1 {
                        env["protocol"] = protocol.into();
                    }
                    (
                        format!("{}/gw{gw}/raw", self.opts.topic_prefix),
                        serde_json::to_vec(&env).expect("JSON"),
                    )
                };
                self.queue.push_back(SimMessage {
                    topic,
                    payload,
                    key: (!corrupt).then(|| key.clone()),
                    endpoint: endpoint.clone(),
                    register,
                    protocol,
                });
            }
        }
    }
}

impl Iterator for Traffic {
    type Item = SimMessage;
    fn next(&mut self) -> Option<SimMessage> {
        while self.queue.is_empty() {
            self.fill();
        }
        self.queue.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meterd_protocols::decode::Keys;

    #[test]
    fn good_messages_decode_and_corrupt_ones_fail_their_check() {
        let opts = SimOptions {
            meters: 40,
            gateways: 3,
            corrupt_rate: 0.1,
            seed: 7,
            topic_prefix: "meters".into(),
            start: "2026-01-01T00:00:00Z".parse().unwrap(),
        };
        let keys = Keys::new();
        let (mut good, mut bad) = (0, 0);
        for m in Traffic::new(opts).take(2000) {
            let line = std::str::from_utf8(&m.payload).unwrap();
            let r = ert::parse_json_line(line, &keys);
            match (&m.key, r) {
                (Some(k), Ok(l)) => {
                    assert_eq!(&ert::dedup_key(&l.decoded).unwrap(), k);
                    good += 1;
                }
                (None, Err(e)) => {
                    assert!(e.failed_check().is_some(), "{e}");
                    bad += 1;
                }
                (k, r) => panic!("{k:?} {r:?} {line}"),
            }
        }
        assert!(good > 1500 && bad > 100, "{good} {bad}");
    }
}
