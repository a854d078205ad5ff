//! The probe session against the meter simulator over a simulated serial line, in virtual time.
//! The line models what matters here: bytes take 10 bit times each, and a byte sent at one
//! speed and received at another arrives as garbage.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use serde_json::json;

use super::dataset::{DataSet, DataValue};
use super::message::Identification;
use super::meter::{MeterConfig, MeterSim};
use super::probe::{Action, ProbeConfig, ProbeSession, ReadMode, Readout, SessionError, WakeUp};
use crate::error::Check;

const PROBE: usize = 0;
const METER: usize = 1;

#[derive(Default)]
struct Port {
    /// (from time µs, baud)
    bauds: Vec<(u64, u32)>,
    timer: Option<u64>,
    busy_until: u64,
}

impl Port {
    fn baud_at(&self, t: u64) -> u32 {
        self.bauds
            .iter()
            .rev()
            .find(|(from, _)| *from <= t)
            .map_or(300, |(_, b)| *b)
    }
}

/// (time µs, sequence, receiver, byte, baud it was sent at)
type Delivery = (u64, u64, usize, u8, u32);

struct Link {
    now: u64,
    probe: ProbeSession,
    meter: MeterSim,
    ports: [Port; 2],
    seq: u64,
    deliveries: BinaryHeap<Reverse<Delivery>>,
    /// Everything each side sent: (time µs, side, bytes) and speed changes.
    sent: Vec<(u64, usize, Vec<u8>)>,
    baud_changes: Vec<(u64, usize, u32)>,
    /// The optical head hears its own transmission (many do).
    probe_echo: bool,
}

impl Link {
    fn new(probe: ProbeConfig, meter: MeterConfig) -> Self {
        Link {
            now: 0,
            probe: ProbeSession::new(probe),
            meter: MeterSim::new(meter),
            ports: [Port::default(), Port::default()],
            seq: 0,
            deliveries: BinaryHeap::new(),
            sent: Vec::new(),
            baud_changes: Vec::new(),
            probe_echo: false,
        }
    }

    fn pump(&mut self, side: usize) {
        let mut t = self.now.max(self.ports[side].busy_until);
        loop {
            let action = if side == PROBE {
                self.probe.poll_action()
            } else {
                self.meter.poll_action()
            };
            let Some(action) = action else { break };
            let port = &mut self.ports[side];
            match action {
                Action::Send(bytes) => {
                    let baud = port.baud_at(t);
                    let per_byte = 10_000_000 / u64::from(baud);
                    self.sent.push((t, side, bytes.clone()));
                    for b in bytes {
                        t += per_byte;
                        self.seq += 1;
                        self.deliveries.push(Reverse((t, self.seq, 1 - side, b, baud)));
                        if side == PROBE && self.probe_echo {
                            self.seq += 1;
                            self.deliveries.push(Reverse((t, self.seq, PROBE, b, baud)));
                        }
                    }
                    port.busy_until = t;
                }
                Action::SetBaud(b) => {
                    port.bauds.push((t, b));
                    self.baud_changes.push((t, side, b));
                }
                Action::Timer(d) => port.timer = Some(t + d.as_micros() as u64),
                Action::CancelTimer => port.timer = None,
                Action::Done => {}
            }
        }
    }

    /// Runs until the probe is done; returns its outcome.
    fn run(&mut self) -> Result<Readout, SessionError> {
        self.probe.start();
        self.pump(PROBE);
        // After the probe is done, let what it last sent reach the meter (the B0 break).
        while !self.probe.is_done() || !self.deliveries.is_empty() {
            let next_delivery = self.deliveries.peek().map(|Reverse(d)| d.0);
            let timers = [self.ports[PROBE].timer, self.ports[METER].timer];
            let next_timer = timers.iter().flatten().min().copied();
            let next = match (next_delivery, next_timer) {
                (Some(d), Some(t)) => d.min(t),
                (Some(d), None) => d,
                (None, Some(t)) => t,
                (None, None) => panic!("link idle but the probe is not done"),
            };
            assert!(next < 120_000_000, "session still running after 120 s of line time");
            self.now = next;
            if next_delivery == Some(next) {
                let Reverse((_, _, to, byte, baud)) = self.deliveries.pop().unwrap();
                // A byte read at the wrong speed is a framing error: garbage with odd parity.
                let byte = if self.ports[to].baud_at(self.now) == baud {
                    byte
                } else {
                    0x80
                };
                if to == PROBE {
                    self.probe.on_bytes(&[byte])
                } else {
                    self.meter.on_bytes(&[byte])
                }
                self.pump(to);
            } else {
                let side = timers.iter().position(|t| *t == Some(next)).unwrap();
                self.ports[side].timer = None;
                if side == PROBE {
                    self.probe.on_timeout()
                } else {
                    self.meter.on_timeout()
                }
                self.pump(side);
            }
        }
        self.probe.take_outcome().expect("done without outcome")
    }

    fn sent_by(&self, side: usize) -> Vec<&[u8]> {
        self.sent
            .iter()
            .filter(|(_, s, _)| *s == side)
            .map(|(_, _, b)| &b[..])
            .collect()
    }
}

fn e350_sets() -> Vec<DataSet> {
    let set = |a: &str, v: &str, u: Option<&str>| DataSet {
        address: a.into(),
        values: vec![DataValue::new(v, u)],
    };
    vec![
        set("F.F", "00", None),
        set("C.1.1", "0000000074892473", None),
        set("1.8.0", "000065.3", Some("kWh")),
        set("2.8.0", "000003.5", Some("kWh")),
        set("1.8.1", "000021.5", Some("kWh")),
        set("1.8.2", "00043.8", Some("kWh")),
        set("C.5.0", "02", None),
    ]
}

fn meter(baud_char: u8) -> MeterConfig {
    let ident = Identification {
        manufacturer: "LGZ".into(),
        baud_char,
        enhanced: Some(b'2'),
        ident: "ZMD120APt.G03".into(),
    };
    MeterConfig::new(ident, e350_sets())
}

fn assert_e350(readout: &Readout) {
    let d = readout.decode().unwrap();
    assert_eq!(d.meter_id, "0000000074892473");
    let r = d.readings.iter().find(|r| r.obis.as_deref() == Some("1.8.2")).unwrap();
    assert_eq!((r.value.clone(), r.unit.as_deref()), (json!(43.8), Some("kWh")));
    assert_eq!(d.readings.len(), 7);
}

#[test]
fn readout_after_switching_to_the_proposed_rate() {
    let mut link = Link::new(ProbeConfig::default(), meter(b'5'));
    let readout = link.run().unwrap();
    assert_e350(&readout);
    assert_eq!(readout.baud, 9600);
    assert!(!readout.fell_back_to_300);
    assert_eq!(readout.naks, 0);
    let probe_sent = link.sent_by(PROBE);
    assert_eq!(probe_sent[0], b"/?!\r\n");
    assert_eq!(probe_sent[1], b"\x06050\r\n");
    // The option select left at 300 baud; the switch came after it had been sent.
    let ack_time = link
        .sent
        .iter()
        .find(|(_, s, b)| *s == PROBE && b[0] == 0x06)
        .unwrap()
        .0;
    let (switch_time, _, baud) = link.baud_changes.iter().find(|(_, s, _)| *s == PROBE).copied().unwrap();
    assert_eq!(baud, 9600);
    assert!(
        switch_time >= ack_time + 6 * (10_000_000 / 300),
        "switched before the ACK had left"
    );
    assert_eq!(link.meter.stats().sign_ons, 1);
}

#[test]
fn meter_that_ignores_its_proposal_read_with_the_switch_skipped() {
    let mut m = meter(b'5');
    m.ignores_proposed_baud = true;
    let cfg = ProbeConfig {
        baud_switch: false,
        ..ProbeConfig::default()
    };
    let mut link = Link::new(cfg, m);
    let readout = link.run().unwrap();
    assert_e350(&readout);
    assert_eq!(readout.baud, 300);
    assert!(link.baud_changes.is_empty());
    // Skipping the switch asks for 300 baud in the option select.
    assert_eq!(link.sent_by(PROBE)[1], b"\x06000\r\n");
}

#[test]
fn meter_that_ignores_its_proposal_is_read_after_falling_back() {
    let mut m = meter(b'5');
    m.ignores_proposed_baud = true;
    let mut link = Link::new(ProbeConfig::default(), m);
    let readout = link.run().unwrap();
    assert_e350(&readout);
    assert!(readout.fell_back_to_300);
    assert_eq!(readout.baud, 300);
    assert_eq!(link.meter.stats().sign_ons, 2);
}

#[test]
fn meter_that_ignores_its_proposal_without_fallback_times_out() {
    let mut m = meter(b'5');
    m.ignores_proposed_baud = true;
    let cfg = ProbeConfig {
        fallback_to_300: false,
        ..ProbeConfig::default()
    };
    let err = Link::new(cfg, m).run().unwrap_err();
    assert_eq!(err, SessionError::Timeout("the data message"));
}

#[test]
fn bad_bcc_once_is_repeated_after_nak() {
    let mut m = meter(b'4');
    m.bad_bcc_answers = 1;
    let mut link = Link::new(ProbeConfig::default(), m);
    let readout = link.run().unwrap();
    assert_e350(&readout);
    assert_eq!(readout.naks, 1);
    assert_eq!(readout.baud, 4800);
    assert_eq!(link.meter.stats().naks_received, 1);
    assert_eq!(link.meter.stats().blocks_sent, 2);
    assert!(link.sent_by(PROBE).contains(&&[0x15][..]));
}

#[test]
fn bad_bcc_every_time_fails_naming_the_check() {
    let mut m = meter(b'5');
    m.bad_bcc_answers = 100;
    let cfg = ProbeConfig {
        max_repeats: 3,
        ..ProbeConfig::default()
    };
    let mut link = Link::new(cfg, m);
    let err = link.run().unwrap_err();
    assert_eq!(err.failed_check(), Some(Check::Bcc), "{err}");
    assert_eq!(link.meter.stats().naks_received, 3);
}

#[test]
fn battery_meter_needs_the_wake_up() {
    let mut m = meter(b'5');
    m.wake_up_nuls = 40;
    let err = Link::new(ProbeConfig::default(), m.clone()).run().unwrap_err();
    assert_eq!(err, SessionError::Timeout("the identification"));

    let cfg = ProbeConfig {
        wake_up: Some(WakeUp::default()),
        ..ProbeConfig::default()
    };
    let mut link = Link::new(cfg, m);
    assert_e350(&link.run().unwrap());
    assert_eq!(link.sent_by(PROBE)[0], vec![0u8; 65]);
}

#[test]
fn software_parity_on_an_8n1_line() {
    let mut m = meter(b'5');
    m.software_parity = true;
    m.bad_bcc_answers = 1;
    let cfg = ProbeConfig {
        software_parity: true,
        ..ProbeConfig::default()
    };
    let mut link = Link::new(cfg, m);
    let readout = link.run().unwrap();
    assert_e350(&readout);
    // `/` travels with its parity bit set.
    assert_eq!(link.sent_by(PROBE)[0][0], 0xAF);
}

#[test]
fn protocol_character_and_reaction_delay_are_configurable() {
    let cfg = ProbeConfig {
        protocol_char: b'2',
        reaction_delay: Some(Duration::from_millis(700)),
        ..ProbeConfig::default()
    };
    let mut link = Link::new(cfg, meter(b'5'));
    link.run().unwrap();
    assert_eq!(link.sent_by(PROBE)[1], b"\x06250\r\n");
    let ident_end = {
        let (t, _, b) = link.sent.iter().find(|(_, s, _)| *s == METER).unwrap();
        t + b.len() as u64 * (10_000_000 / 300)
    };
    let ack_time = link
        .sent
        .iter()
        .find(|(_, s, b)| *s == PROBE && b[0] == 0x06)
        .unwrap()
        .0;
    assert_eq!(ack_time - ident_end, 700_000);
}

#[test]
fn lower_case_manufacturer_means_a_short_reaction_time() {
    let mut m = meter(b'5');
    m.identification.manufacturer = "ISk".into();
    let mut link = Link::new(ProbeConfig::default(), m);
    link.run().unwrap();
    let (t, _, b) = link.sent.iter().find(|(_, s, _)| *s == METER).unwrap();
    let ident_end = t + b.len() as u64 * (10_000_000 / 300);
    let ack_time = link
        .sent
        .iter()
        .find(|(_, s, b)| *s == PROBE && b[0] == 0x06)
        .unwrap()
        .0;
    assert_eq!(ack_time - ident_end, 25_000);
}

fn registers(read_command: u8, password: Option<&str>) -> ProbeConfig {
    ProbeConfig {
        mode: ReadMode::Registers {
            read_command,
            password: password.map(str::to_owned),
            addresses: vec!["1.8.0".into(), "C.1.1".into(), "9.9.9".into()],
        },
        ..ProbeConfig::default()
    }
}

#[test]
fn programming_mode_register_reads() {
    let mut m = meter(b'5');
    m.password = Some("00000000".into());
    // The first answer arrives corrupt once.
    m.bad_bcc_answers = 1;
    let mut link = Link::new(registers(b'1', Some("00000000")), m);
    let readout = link.run().unwrap();
    assert_eq!(
        readout.data,
        b"1.8.0(000065.3*kWh)\r\nC.1.1(0000000074892473)\r\n(ERROR)\r\n!\r\n"
    );
    let probe_sent = link.sent_by(PROBE);
    assert_eq!(probe_sent[1], b"\x06051\r\n");
    assert_eq!(probe_sent[2], b"\x01P1\x02(00000000)\x03a");
    assert_eq!(probe_sent[3], b"\x01R1\x021.8.0()\x03Z");
    assert_eq!(probe_sent[4], [0x15]); // NAK for the corrupt answer
    assert_eq!(*probe_sent.last().unwrap(), b"\x01B0\x03q");
    assert_eq!(link.meter.stats().breaks, 1);
    assert_eq!(link.meter.stats().naks_received, 1);
    assert_eq!(readout.naks, 1);
    let d = readout.decode().unwrap();
    assert_eq!(d.meter_id, "0000000074892473");
    assert_eq!(d.readings[0].value, json!(65.3));
}

#[test]
fn meter_that_wants_r5_acknowledges_r1_without_data() {
    let mut m = meter(b'5');
    m.read_command = b'5';
    let err = Link::new(registers(b'1', None), m.clone()).run().unwrap_err();
    assert!(
        matches!(&err, SessionError::Refused(why) if why.contains("R1/R5")),
        "{err}"
    );
    let readout = Link::new(registers(b'5', None), m).run().unwrap();
    assert!(readout.data.starts_with(b"1.8.0(000065.3*kWh)\r\n"));
}

#[test]
fn wrong_password_is_refused() {
    let mut m = meter(b'5');
    m.password = Some("secret".into());
    let err = Link::new(registers(b'1', Some("guess")), m).run().unwrap_err();
    assert_eq!(err, SessionError::Refused("password not accepted".into()));
}

#[test]
fn addressed_sign_on_is_answered_only_by_that_meter() {
    let mut m = meter(b'5');
    m.address = "45678903".into();
    let cfg = ProbeConfig {
        address: "11111111".into(),
        sign_on_attempts: 1,
        ..ProbeConfig::default()
    };
    assert_eq!(
        Link::new(cfg, m.clone()).run().unwrap_err(),
        SessionError::Timeout("the identification")
    );
    let cfg = ProbeConfig {
        address: "45678903".into(),
        ..ProbeConfig::default()
    };
    let mut link = Link::new(cfg, m);
    assert_e350(&link.run().unwrap());
    assert_eq!(link.sent_by(PROBE)[0], b"/?45678903!\r\n");
}

#[test]
fn mode_a_meter_sends_without_option_select() {
    let mut link = Link::new(ProbeConfig::default(), meter(b'X'));
    let readout = link.run().unwrap();
    assert_e350(&readout);
    assert_eq!(readout.baud, 300);
    assert_eq!(link.sent_by(PROBE), vec![&b"/?!\r\n"[..]]);
}

#[test]
fn mode_b_meter_switches_right_after_its_identification() {
    let mut link = Link::new(ProbeConfig::default(), meter(b'C'));
    let readout = link.run().unwrap();
    assert_e350(&readout);
    assert_eq!(readout.baud, 2400);
    assert_eq!(link.sent_by(PROBE).len(), 1);
    assert!(link.baud_changes.iter().any(|&(_, side, b)| side == PROBE && b == 2400));
}

#[test]
fn optical_head_echo_is_not_taken_for_the_meter() {
    for mode in [ReadMode::Readout, registers(b'1', None).mode] {
        let mut m = meter(b'5');
        m.bad_bcc_answers = 1;
        let mut link = Link::new(
            ProbeConfig {
                mode,
                ..ProbeConfig::default()
            },
            m,
        );
        link.probe_echo = true;
        let readout = link.run().unwrap();
        assert_eq!(readout.naks, 1);
        assert!(
            readout
                .decode()
                .unwrap()
                .readings
                .iter()
                .any(|r| r.obis.as_deref() == Some("1.8.0"))
        );
    }
}

#[test]
fn partial_blocks_are_acknowledged_one_by_one() {
    for lines in [1, 3, 7] {
        let mut m = meter(b'5');
        m.lines_per_block = lines;
        m.bad_bcc_answers = 1;
        let mut link = Link::new(ProbeConfig::default(), m);
        let readout = link.run().unwrap();
        assert_e350(&readout);
        let blocks = 7usize.div_ceil(lines) as u32;
        assert_eq!(link.meter.stats().blocks_sent, blocks + 1, "{lines} lines per block");
        let acks = link.sent_by(PROBE).iter().filter(|b| **b == [0x06]).count();
        assert_eq!(acks as u32, blocks - 1);
        assert_eq!(readout.naks, 1);
    }
}
