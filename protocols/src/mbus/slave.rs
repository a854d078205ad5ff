//! A wired M-Bus slave, sans-IO: the meter side the master ([`super::link`]) is tested against,
//! and what `meterd simulate meter --kind mbus` answers with on a pseudo-terminal.
//!
//! It answers SND_NKE (`E5`), REQ_UD2 with RSP_UD (CI `72`, long header, records), and a
//! secondary-address selection (`E5` when the pattern matches, silence otherwise). The FCB is
//! honoured: a REQ_UD2 with the same FCB as the last one is a retry and gets the last telegram
//! again; a toggled FCB moves on to the next telegram of a multi-telegram readout (DIF `1F`).
//! A [`Segment`] puts several slaves on one bus; when more than one answers, the master hears
//! the bytes of all answers OR-ed together (a collision), as on a real bus.

use super::frame::{self, Frame};
use super::link::{CI_SELECT, FCB, NETWORK_LAYER, REQ_UD2, SND_NKE, SND_UD, SecondaryAddress};
use crate::error::{Error, Result};

/// One simulated meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaveConfig {
    /// Primary address (1..=250; 0 = unconfigured).
    pub primary: u8,
    /// Identification (8 decimal digits).
    pub id: u32,
    /// Manufacturer as the 2-byte code (e.g. [`super::header::manufacturer_id`]`("PAD")`).
    pub manufacturer: u16,
    pub version: u8,
    /// Medium (7 = water, 4 = heat, 3 = gas, 2 = electricity).
    pub medium: u8,
    /// Volume register in litres (sent as VIF `13`, 10⁻³ m³, 32-bit integer, storage 0).
    pub volume_litres: u32,
    /// Split the readout over this many telegrams (all but the last end with DIF `1F`).
    pub telegrams: usize,
    /// Answer this many REQ_UD2 with a corrupted checksum (the master must retry).
    pub bad_checksum_answers: u32,
}

impl SlaveConfig {
    /// A water meter with one telegram and no quirks.
    pub fn water(primary: u8, id: u32, volume_litres: u32) -> Self {
        SlaveConfig {
            primary,
            id,
            manufacturer: super::header::manufacturer_id("PAD").unwrap_or(0x4024),
            version: 1,
            medium: 7,
            volume_litres,
            telegrams: 1,
            bad_checksum_answers: 0,
        }
    }

    /// The full secondary address.
    pub fn secondary(&self) -> SecondaryAddress {
        SecondaryAddress {
            id: bcd4(self.id),
            manufacturer: self.manufacturer,
            version: self.version,
            medium: self.medium,
        }
    }
}

fn bcd4(mut v: u32) -> [u8; 4] {
    let mut out = [0u8; 4];
    for byte in &mut out {
        let lo = (v % 10) as u8;
        v /= 10;
        let hi = (v % 10) as u8;
        v /= 10;
        *byte = (hi << 4) | lo;
    }
    out
}

/// What the slave does with a request.
#[derive(Debug, Clone)]
pub struct Slave {
    cfg: SlaveConfig,
    selected: bool,
    last_fcb: Option<bool>,
    /// Telegram to send on the next toggled REQ_UD2.
    next: usize,
    last_reply: Vec<u8>,
    access_no: u8,
    bad_left: u32,
    /// REQ_UD2 answered (for tests).
    pub answered: u32,
}

impl Slave {
    pub fn new(cfg: SlaveConfig) -> Self {
        let bad_left = cfg.bad_checksum_answers;
        Slave {
            cfg,
            selected: false,
            last_fcb: None,
            next: 0,
            last_reply: Vec::new(),
            access_no: 0,
            bad_left,
            answered: 0,
        }
    }

    pub fn config(&self) -> &SlaveConfig {
        &self.cfg
    }

    /// Sets the volume register (a meter that keeps counting).
    pub fn set_volume(&mut self, litres: u32) {
        self.cfg.volume_litres = litres;
    }

    fn addressed(&self, a: u8) -> bool {
        a == self.cfg.primary || (a == NETWORK_LAYER && self.selected) || a == 0xFE
    }

    /// The answer to one request frame, if any.
    pub fn on_frame(&mut self, frame: &Frame<'_>) -> Option<Vec<u8>> {
        match *frame {
            Frame::Short { c: SND_NKE, a } if self.addressed(a) => {
                self.last_fcb = None;
                self.next = 0;
                Some(vec![frame::ACK])
            }
            Frame::Short { c, a } if c & !FCB == REQ_UD2 && self.addressed(a) => {
                let fcb = c & FCB != 0;
                if self.last_fcb == Some(fcb) && !self.last_reply.is_empty() {
                    return Some(self.last_reply.clone()); // a retry: same telegram again
                }
                self.last_fcb = Some(fcb);
                let index = self.next;
                self.next = (self.next + 1) % self.cfg.telegrams.max(1);
                let mut reply = self.telegram(index);
                self.last_reply = reply.clone();
                self.answered += 1;
                if self.bad_left > 0 {
                    self.bad_left -= 1;
                    let n = reply.len();
                    reply[n - 2] = reply[n - 2].wrapping_add(1);
                    // A corrupt answer does not count: the master's retry (same FCB) gets it right.
                    self.last_reply.clear();
                    self.last_fcb = None;
                    self.next = index;
                }
                Some(reply)
            }
            Frame::Long {
                c,
                a: NETWORK_LAYER,
                ci: CI_SELECT,
                data,
            } if c & !FCB == SND_UD => {
                let Ok(pattern) = select_pattern(data) else { return None };
                self.selected = pattern.matches(&self.cfg.secondary());
                if self.selected {
                    self.last_fcb = None;
                    self.next = 0;
                }
                self.selected.then(|| vec![frame::ACK])
            }
            _ => None,
        }
    }

    /// RSP_UD for telegram `index` of the readout.
    fn telegram(&mut self, index: usize) -> Vec<u8> {
        self.access_no = self.access_no.wrapping_add(1);
        let s = self.cfg.secondary();
        let mut data = Vec::with_capacity(40);
        data.extend_from_slice(&s.id);
        data.extend_from_slice(&s.manufacturer.to_le_bytes());
        data.extend_from_slice(&[s.version, s.medium, self.access_no, 0x00, 0x00, 0x00]);
        let last = index + 1 >= self.cfg.telegrams.max(1);
        if index == 0 {
            // Volume, 32-bit integer, 10⁻³ m³, storage 0.
            data.extend_from_slice(&[0x04, 0x13]);
            data.extend_from_slice(&self.cfg.volume_litres.to_le_bytes());
        }
        // Later telegrams carry the volume at storage `index` (a due-date value).
        if index > 0 {
            let (dif, dife) = storage_dif(index as u8);
            data.push(dif);
            if let Some(e) = dife {
                data.push(e);
            }
            data.push(0x13);
            data.extend_from_slice(&self.cfg.volume_litres.saturating_sub(1000 * index as u32).to_le_bytes());
        }
        // Volume flow, 16-bit integer, 10⁻³ m³/h.
        data.extend_from_slice(&[0x02, 0x3B, 0x10, 0x00]);
        if !last {
            data.push(0x1F);
        }
        let mut out = Vec::with_capacity(data.len() + 9);
        frame::encode(
            &Frame::Long {
                c: 0x08,
                a: self.cfg.primary,
                ci: 0x72,
                data: &data,
            },
            &mut out,
        )
        .expect("a simulated telegram fits a long frame");
        out
    }
}

/// DIF (and DIFE) of a 32-bit integer at a storage number (bit 6 of the DIF is its LSB).
fn storage_dif(storage: u8) -> (u8, Option<u8>) {
    let dif = 0x04 | ((storage & 1) << 6);
    let rest = storage >> 1;
    if rest == 0 {
        (dif, None)
    } else {
        (dif | 0x80, Some(rest & 0x0F))
    }
}

fn select_pattern(data: &[u8]) -> Result<SecondaryAddress> {
    let [i0, i1, i2, i3, m0, m1, version, medium] = *data else {
        return Err(Error::invalid("selection", "needs 8 bytes"));
    };
    Ok(SecondaryAddress {
        id: [i0, i1, i2, i3],
        manufacturer: u16::from_le_bytes([m0, m1]),
        version,
        medium,
    })
}

/// Slaves sharing one bus, fed the master's byte stream.
#[derive(Debug, Clone, Default)]
pub struct Segment {
    pub slaves: Vec<Slave>,
    rx: Vec<u8>,
}

impl Segment {
    pub fn new(slaves: Vec<Slave>) -> Self {
        Segment { slaves, rx: Vec::new() }
    }

    /// Bytes from the master; returns what the bus carries back (nothing, one answer, or a
    /// collision of several).
    pub fn on_bytes(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.rx.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            let parsed = frame::parse(&self.rx).map(|(f, used)| (f.to_owned_parts(), used));
            match parsed {
                Err(Error::Incomplete { .. }) => break,
                Err(_) => {
                    // Line noise: drop a byte and look for the next frame start.
                    self.rx.remove(0);
                }
                Ok((owned, used)) => {
                    self.rx.drain(..used);
                    let frame = owned.frame();
                    let answers: Vec<Vec<u8>> = self.slaves.iter_mut().filter_map(|s| s.on_frame(&frame)).collect();
                    out.extend(collide(&answers));
                }
            }
        }
        out
    }
}

/// What the master hears when several slaves answer at once. Several `E5`s overlap into one
/// `E5` (which is why a scan reads the selected slave before trusting a selection); longer
/// answers are never bit-synchronous, so the UART sees framing errors: modelled as the answers
/// OR-ed together with the checksum byte broken.
fn collide(answers: &[Vec<u8>]) -> Vec<u8> {
    let len = answers.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = vec![0u8; len];
    for a in answers {
        for (o, b) in out.iter_mut().zip(a) {
            *o |= b;
        }
    }
    if answers.len() > 1 && len >= 2 {
        out[len - 2] ^= 0xFF;
    }
    out
}

/// A frame with its user data copied out of the receive buffer.
#[derive(Debug, Clone)]
struct OwnedFrame {
    kind: u8,
    c: u8,
    a: u8,
    ci: u8,
    data: Vec<u8>,
}

impl OwnedFrame {
    fn frame(&self) -> Frame<'_> {
        match self.kind {
            0 => Frame::Ack,
            1 => Frame::Short { c: self.c, a: self.a },
            2 => Frame::Control {
                c: self.c,
                a: self.a,
                ci: self.ci,
            },
            _ => Frame::Long {
                c: self.c,
                a: self.a,
                ci: self.ci,
                data: &self.data,
            },
        }
    }
}

trait ToOwnedParts {
    fn to_owned_parts(&self) -> OwnedFrame;
}

impl ToOwnedParts for Frame<'_> {
    fn to_owned_parts(&self) -> OwnedFrame {
        match *self {
            Frame::Ack => OwnedFrame {
                kind: 0,
                c: 0,
                a: 0,
                ci: 0,
                data: Vec::new(),
            },
            Frame::Short { c, a } => OwnedFrame {
                kind: 1,
                c,
                a,
                ci: 0,
                data: Vec::new(),
            },
            Frame::Control { c, a, ci } => OwnedFrame {
                kind: 2,
                c,
                a,
                ci,
                data: Vec::new(),
            },
            Frame::Long { c, a, ci, data } => OwnedFrame {
                kind: 3,
                c,
                a,
                ci,
                data: data.to_vec(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::link::{self, Probe, Readout, Scan};
    use super::*;

    #[test]
    fn answers_nke_req_ud2_and_selection() {
        let mut seg = Segment::new(vec![Slave::new(SlaveConfig::water(5, 12345678, 1234567))]);
        assert_eq!(seg.on_bytes(&link::snd_nke(5)), vec![0xE5]);
        assert!(seg.on_bytes(&link::snd_nke(6)).is_empty());
        let reply = seg.on_bytes(&link::req_ud2(5, true));
        let d = super::super::decode(&reply).unwrap();
        assert_eq!(d.meter_id, "12345678");
        assert_eq!(d.readings[0].quantity, "volume");
        assert_eq!(d.readings[0].value, serde_json::json!(1234.567));
        assert_eq!(
            seg.on_bytes(&link::select(&"12345678".parse().unwrap(), false)),
            vec![0xE5]
        );
        assert!(
            seg.on_bytes(&link::select(&"12345679".parse().unwrap(), false))
                .is_empty()
        );
    }

    #[test]
    fn fcb_retry_repeats_and_toggle_moves_on() {
        let mut cfg = SlaveConfig::water(1, 1, 5000);
        cfg.telegrams = 2;
        let mut seg = Segment::new(vec![Slave::new(cfg)]);
        let mut r = Readout::new(1, 5);
        let first = seg.on_bytes(&r.request());
        assert_eq!(seg.on_bytes(&r.request()), first, "same FCB: the same telegram");
        let d = super::super::decode(&first).unwrap();
        assert_eq!(
            d.fields.get("more_records_follow"),
            Some(&serde_json::Value::Bool(true))
        );
        assert_eq!(r.on_response(true), link::Next::Poll);
        let second = super::super::decode(&seg.on_bytes(&r.request())).unwrap();
        assert!(second.fields.get("more_records_follow").is_none());
        assert_eq!(second.readings[0].storage, Some(1));
    }

    #[test]
    fn a_scan_over_a_simulated_segment_finds_every_slave() {
        let ids = [12345678, 12345679, 22000001, 99999999];
        let mut seg = Segment::new(ids.iter().map(|&id| Slave::new(SlaveConfig::water(0, id, 1))).collect());
        let mut scan = Scan::new("FFFFFFFF".parse().unwrap());
        while let Some(pattern) = scan.next_probe() {
            let answer = seg.on_bytes(&link::select(&pattern, false));
            let outcome = match answer.as_slice() {
                [] => Probe::Nothing,
                [0xE5] => match link::parse_reply(&seg.on_bytes(&link::req_ud2(NETWORK_LAYER, true))) {
                    Ok((link::Reply::Frame(Frame::Long { data, .. }), _)) => Probe::Single(SecondaryAddress::of(
                        &super::super::header::long_header(data).unwrap().1,
                    )),
                    _ => Probe::Collision,
                },
                _ => Probe::Collision,
            };
            scan.report(outcome);
        }
        let mut found: Vec<String> = scan.found().iter().map(|a| a.to_string()[..8].to_owned()).collect();
        found.sort();
        assert_eq!(found, ["12345678", "12345679", "22000001", "99999999"]);
    }

    #[test]
    fn a_corrupt_answer_is_repeated_correctly_on_retry() {
        let mut cfg = SlaveConfig::water(3, 3, 42);
        cfg.bad_checksum_answers = 1;
        let mut seg = Segment::new(vec![Slave::new(cfg)]);
        let bad = seg.on_bytes(&link::req_ud2(3, true));
        assert!(super::super::decode(&bad).unwrap_err().failed_check().is_some());
        let good = seg.on_bytes(&link::req_ud2(3, true));
        assert!(super::super::decode(&good).is_ok());
    }
}
