//! The master side of wired M-Bus, sans-IO: the bytes to send and how to read what comes back.
//! The daemon drives these over a 2400 8E1 serial port; nothing here touches IO or clocks.
//!
//! - [`snd_nke`], [`req_ud2`], [`select`]: request frames (EN 13757-2 §5, EN 13757-3 §11).
//! - [`Readout`]: REQ_UD2 with FCB toggling across a multi-telegram readout (DIF `1F`).
//! - [`parse_reply`]: a slave's reply, `E5` or a frame, telling "wait" from "garbage".
//! - [`Scan`]: wildcard search of a segment by secondary address, driven by probe outcomes.

use std::fmt;
use std::str::FromStr;

use super::frame::{self, Frame};
use super::header::{self, LongHeader};
use crate::error::{Error, Result};

/// C field: reset the slave's link layer (FCB).
pub const SND_NKE: u8 = 0x40;
/// C field: send user data (FCB clear).
pub const SND_UD: u8 = 0x53;
/// C field: request class 2 data (FCB clear).
pub const REQ_UD2: u8 = 0x5B;
/// Frame count bit in a master C field.
pub const FCB: u8 = 0x20;
/// Address of the slave selected by secondary address.
pub const NETWORK_LAYER: u8 = 0xFD;
/// Broadcast, all slaves answer.
pub const BROADCAST_REPLY: u8 = 0xFE;
/// Broadcast, no slave answers.
pub const BROADCAST_NO_REPLY: u8 = 0xFF;
/// Highest primary address a slave can have.
pub const MAX_PRIMARY: u8 = 250;
/// CI of a secondary-address selection (LSB first).
pub const CI_SELECT: u8 = 0x52;

fn short(c: u8, address: u8) -> [u8; 5] {
    [0x10, c, address, c.wrapping_add(address), 0x16]
}

/// SND_NKE to a primary address (or [`NETWORK_LAYER`] / a broadcast).
pub fn snd_nke(address: u8) -> [u8; 5] {
    short(SND_NKE, address)
}

/// REQ_UD2 with the given frame count bit.
pub fn req_ud2(address: u8, fcb: bool) -> [u8; 5] {
    short(REQ_UD2 | if fcb { FCB } else { 0 }, address)
}

/// A secondary address: identification, manufacturer, version, medium. In a selection each
/// ID nibble may be `F` and each other byte `FF` ("any"), which is how a segment is scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecondaryAddress {
    /// Identification as sent (BCD, least significant byte first; `F` nibbles are wildcards).
    pub id: [u8; 4],
    /// Manufacturer as sent (`0xFFFF` = any).
    pub manufacturer: u16,
    /// Version (`0xFF` = any).
    pub version: u8,
    /// Medium (`0xFF` = any).
    pub medium: u8,
}

impl SecondaryAddress {
    /// An 8-digit id (digits or `F`/`*` wildcards) with manufacturer, version and medium any.
    pub fn id_pattern(id: &str) -> Result<Self> {
        Ok(SecondaryAddress {
            id: parse_id(id)?,
            manufacturer: 0xFFFF,
            version: 0xFF,
            medium: 0xFF,
        })
    }

    /// The address of the meter that sent a variable data header.
    pub fn of(h: &LongHeader) -> Self {
        SecondaryAddress {
            id: h.id,
            manufacturer: h.manufacturer,
            version: h.version,
            medium: h.medium,
        }
    }

    /// The 8 bytes of a selection: ID, MAN, VER, MED.
    pub fn to_bytes(&self) -> [u8; 8] {
        let [m0, m1] = self.manufacturer.to_le_bytes();
        let [a, b, c, d] = self.id;
        [a, b, c, d, m0, m1, self.version, self.medium]
    }

    /// True when a meter's address matches this (possibly wildcarded) pattern.
    pub fn matches(&self, meter: &SecondaryAddress) -> bool {
        let nibbles_match = self
            .id
            .iter()
            .zip(meter.id)
            .all(|(p, m)| (p >> 4 == 0xF || p >> 4 == m >> 4) && (p & 0x0F == 0x0F || p & 0x0F == m & 0x0F));
        nibbles_match
            && (self.manufacturer == 0xFFFF || self.manufacturer == meter.manufacturer)
            && (self.version == 0xFF || self.version == meter.version)
            && (self.medium == 0xFF || self.medium == meter.medium)
    }
}

fn parse_id(id: &str) -> Result<[u8; 4]> {
    let digits: Vec<u8> = id
        .chars()
        .map(|c| match c {
            '0'..='9' => Ok(c as u8 - b'0'),
            'F' | 'f' | '*' => Ok(0x0F),
            _ => Err(Error::invalid(
                "secondary address",
                format!("{c:?} is not a digit or wildcard"),
            )),
        })
        .collect::<Result<_>>()?;
    if digits.len() != 8 {
        return Err(Error::invalid(
            "secondary address",
            format!("id {id:?} is not 8 digits"),
        ));
    }
    // Printed most significant digit first; sent least significant byte first.
    let mut out = [0u8; 4];
    for (k, pair) in digits.chunks(2).enumerate() {
        out[3 - k] = (pair[0] << 4) | pair[1];
    }
    Ok(out)
}

/// libmbus' 16-hex-digit form `IIIIIIIIMMMMVVDD` (id printed, manufacturer bytes as sent).
impl fmt::Display for SecondaryAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [m0, m1] = self.manufacturer.to_le_bytes();
        write!(
            f,
            "{}{m0:02X}{m1:02X}{:02X}{:02X}",
            header::id_string(self.id),
            self.version,
            self.medium
        )
    }
}

impl FromStr for SecondaryAddress {
    type Err = Error;
    /// Accepts `12345678` (any manufacturer/version/medium) or the 16-hex-digit form.
    fn from_str(s: &str) -> Result<Self> {
        match s.len() {
            8 => Self::id_pattern(s),
            16 if s.is_ascii() => {
                let id = parse_id(&s[..8])?;
                let rest =
                    hex::decode(&s[8..]).map_err(|e| Error::invalid("secondary address", format!("{s:?}: {e}")))?;
                Ok(SecondaryAddress {
                    id,
                    manufacturer: u16::from_le_bytes([rest[0], rest[1]]),
                    version: rest[2],
                    medium: rest[3],
                })
            }
            _ => Err(Error::invalid(
                "secondary address",
                format!("{s:?} is neither 8 nor 16 hex digits"),
            )),
        }
    }
}

/// SND_UD to [`NETWORK_LAYER`] selecting a slave by (wildcarded) secondary address.
pub fn select(address: &SecondaryAddress, fcb: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(17);
    let c = SND_UD | if fcb { FCB } else { 0 };
    let data = address.to_bytes();
    frame::encode(
        &Frame::Long {
            c,
            a: NETWORK_LAYER,
            ci: CI_SELECT,
            data: &data,
        },
        &mut out,
    )
    .expect("8 bytes of user data always fit");
    out
}

/// What a slave answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `E5`: the request was accepted.
    Ack,
    /// A frame (normally RSP_UD).
    Frame(Frame<'a>),
}

/// Parses a slave's reply from the start of the receive buffer. `Error::Incomplete` means keep
/// reading; any other error means the bytes are garbage (on a scan: several slaves answered).
pub fn parse_reply(buf: &[u8]) -> Result<(Reply<'_>, usize)> {
    let (frame, used) = frame::parse(buf)?;
    Ok((
        if frame == Frame::Ack {
            Reply::Ack
        } else {
            Reply::Frame(frame)
        },
        used,
    ))
}

/// The state of one slave's readout: REQ_UD2 with the FCB toggled after every answered
/// request, repeated while the slave signals more records (DIF `1F`).
#[derive(Debug, Clone)]
pub struct Readout {
    address: u8,
    fcb: bool,
    telegrams: usize,
    max_telegrams: usize,
}

/// What to do after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send [`Readout::request`] again: more telegrams follow.
    Poll,
    /// The readout is complete.
    Done,
    /// The slave kept saying "more" beyond the limit; stop to avoid looping forever.
    TooManyTelegrams,
}

impl Readout {
    /// A readout of `address` after SND_NKE (or a selection); the first REQ_UD2 carries FCB=1.
    pub fn new(address: u8, max_telegrams: usize) -> Self {
        Readout {
            address,
            fcb: true,
            telegrams: 0,
            max_telegrams,
        }
    }

    /// The REQ_UD2 to send now. Resending the same bytes is a retry (FCB unchanged), which
    /// tells the slave to repeat its last telegram rather than move on.
    pub fn request(&self) -> [u8; 5] {
        req_ud2(self.address, self.fcb)
    }

    /// Telegrams received so far.
    pub fn telegrams(&self) -> usize {
        self.telegrams
    }

    /// Records a valid response; `more_follows` is true when its records ended with DIF `1F`.
    pub fn on_response(&mut self, more_follows: bool) -> Next {
        self.telegrams += 1;
        self.fcb = !self.fcb;
        if !more_follows {
            Next::Done
        } else if self.telegrams >= self.max_telegrams {
            Next::TooManyTelegrams
        } else {
            Next::Poll
        }
    }
}

/// The outcome of selecting a wildcard pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Nobody answered (timeout).
    Nothing,
    /// Exactly one slave answered; its full address (read with REQ_UD2 to [`NETWORK_LAYER`]).
    Single(SecondaryAddress),
    /// Several slaves answered at once (garbled reply).
    Collision,
}

/// Wildcard search of a segment by secondary address, digit by digit (the method of
/// EN 13757-3 Annex and libmbus): probe `0FFFFFFF`…`9FFFFFFF`; on a collision, fix that digit
/// and probe the next position. Sans-IO: ask [`Scan::next_probe`], select it, report the outcome.
#[derive(Debug, Clone)]
pub struct Scan {
    base: SecondaryAddress,
    /// (fixed digits, next digit to try at the following position).
    stack: Vec<(Vec<u8>, u8)>,
    pending: Option<Vec<u8>>,
    found: Vec<SecondaryAddress>,
    unresolved: Vec<SecondaryAddress>,
    probes: usize,
}

impl Scan {
    /// A scan over all ids; `manufacturer`/`version`/`medium` of `base` narrow it (or are any).
    pub fn new(base: SecondaryAddress) -> Self {
        Scan {
            base,
            stack: vec![(Vec::new(), 0)],
            pending: None,
            found: Vec::new(),
            unresolved: Vec::new(),
            probes: 0,
        }
    }

    fn pattern(&self, digits: &[u8]) -> SecondaryAddress {
        let mut all = [0x0Fu8; 8];
        all[..digits.len()].copy_from_slice(digits);
        let mut id = [0u8; 4];
        for k in 0..4 {
            id[3 - k] = (all[2 * k] << 4) | all[2 * k + 1];
        }
        SecondaryAddress { id, ..self.base }
    }

    /// The next pattern to select, or `None` when the scan is complete.
    pub fn next_probe(&mut self) -> Option<SecondaryAddress> {
        loop {
            let (prefix, next) = self.stack.last_mut()?;
            if *next > 9 {
                self.stack.pop();
                continue;
            }
            let mut digits = prefix.clone();
            digits.push(*next);
            *next += 1;
            let pattern = self.pattern(&digits);
            self.pending = Some(digits);
            self.probes += 1;
            return Some(pattern);
        }
    }

    /// Reports what the last probe found.
    pub fn report(&mut self, outcome: Probe) {
        let Some(digits) = self.pending.take() else { return };
        match outcome {
            Probe::Nothing => {}
            Probe::Single(address) => {
                if !self.found.contains(&address) {
                    self.found.push(address);
                }
            }
            Probe::Collision if digits.len() < 8 => self.stack.push((digits, 0)),
            // Same id, different manufacturer/version/medium: cannot be split by id digits.
            Probe::Collision => self.unresolved.push(self.pattern(&digits)),
        }
    }

    /// Slaves found so far.
    pub fn found(&self) -> &[SecondaryAddress] {
        &self.found
    }

    /// Full ids where several slaves still collided.
    pub fn unresolved(&self) -> &[SecondaryAddress] {
        &self.unresolved
    }

    /// Selections sent so far.
    pub fn probes(&self) -> usize {
        self.probes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn w7_request_frames() {
        assert_eq!(snd_nke(0xFD), [0x10, 0x40, 0xFD, 0x3D, 0x16]);
        assert_eq!(req_ud2(0xFD, false), [0x10, 0x5B, 0xFD, 0x58, 0x16]);
        assert_eq!(req_ud2(0xFD, true), [0x10, 0x7B, 0xFD, 0x78, 0x16]);
        let sel = select(&"12345678".parse().unwrap(), true);
        assert_eq!(hex::encode_upper(sel), "680B0B6873FD5278563412FFFFFFFFD216");
        assert_eq!(parse_reply(&[0xE5]).unwrap(), (Reply::Ack, 1));
        assert!(matches!(parse_reply(&[0x10, 0x7B]), Err(Error::Incomplete { .. })));
        assert!(parse_reply(&[0xE4]).is_err());
    }

    #[test]
    fn fcb_toggles_per_answered_request() {
        let mut r = Readout::new(5, 3);
        assert_eq!(r.request(), req_ud2(5, true));
        assert_eq!(r.request(), req_ud2(5, true), "a retry keeps the FCB");
        assert_eq!(r.on_response(true), Next::Poll);
        assert_eq!(r.request(), req_ud2(5, false));
        assert_eq!(r.on_response(true), Next::Poll);
        assert_eq!(r.request(), req_ud2(5, true));
        assert_eq!(r.on_response(true), Next::TooManyTelegrams);
        let mut r = Readout::new(5, 3);
        assert_eq!(r.on_response(false), Next::Done);
    }

    #[test]
    fn secondary_address_text_forms() {
        let a: SecondaryAddress = "12345678".parse().unwrap();
        assert_eq!(a.id, [0x78, 0x56, 0x34, 0x12]);
        let b: SecondaryAddress = "1234FFFF".parse().unwrap();
        assert!(b.matches(&SecondaryAddress {
            id: [0x99, 0x00, 0x34, 0x12],
            manufacturer: 1,
            version: 2,
            medium: 7
        }));
        assert!(!b.matches(&SecondaryAddress {
            id: [0x99, 0x00, 0x35, 0x12],
            manufacturer: 1,
            version: 2,
            medium: 7
        }));
        let full: SecondaryAddress = "1234567824400107".parse().unwrap();
        assert_eq!(full.to_string(), "1234567824400107");
        assert_eq!(header::manufacturer_code(full.manufacturer), "PAD");
        assert!("1234567".parse::<SecondaryAddress>().is_err());
        // 16 bytes with a two-byte character across byte 8: an error, not a panic.
        assert!("1234567\u{e9}1234567".parse::<SecondaryAddress>().is_err());
    }

    /// A simulated segment: the outcome of a selection is decided by how many meters match.
    #[test]
    fn scan_finds_every_meter_on_a_segment() {
        let meters: Vec<SecondaryAddress> = ["12345678", "12345679", "12349999", "00000001", "99999999", "12345670"]
            .iter()
            .map(|id| SecondaryAddress {
                manufacturer: 0x4024,
                version: 1,
                medium: 7,
                ..SecondaryAddress::id_pattern(id).unwrap()
            })
            .collect();
        let mut scan = Scan::new(SecondaryAddress::id_pattern("FFFFFFFF").unwrap());
        while let Some(pattern) = scan.next_probe() {
            let hits: Vec<_> = meters.iter().filter(|m| pattern.matches(m)).collect();
            scan.report(match hits.as_slice() {
                [] => Probe::Nothing,
                [one] => Probe::Single(**one),
                _ => Probe::Collision,
            });
        }
        let mut found = scan.found().to_vec();
        found.sort_by_key(|a| a.to_string());
        let mut expected = meters.clone();
        expected.sort_by_key(|a| a.to_string());
        assert_eq!(found, expected);
        assert!(scan.unresolved().is_empty());
        assert!(scan.probes() < 100, "{} probes", scan.probes());
    }
}
