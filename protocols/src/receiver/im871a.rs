//! IMST iM871A / iU891A: the WM-Bus HCI (host controller interface) of the IMST WM-Bus
//! firmware, as described in IMST's "Wireless M-Bus Host Controller Interface" specification
//! (WMBus_HCI_Spec; see `docs/receivers.md` for what was verified, from where, and what was not).
//!
//! A message: `A5` (start of frame), one byte of control field (high nibble: 0x20 a 4-byte
//! timestamp follows the payload, 0x40 an RSSI byte, 0x80 a CRC16) and endpoint id (low
//! nibble: 1 device management, 2 radio link), the message id, the payload length, the
//! payload, then the optional timestamp, RSSI and CRC16.

use crc::{CRC_16_IBM_SDLC, Crc};

use super::{Event, LinkMode, Telegram, check_frame};
use crate::error::{Check, Error};

pub const START_OF_FRAME: u8 = 0xA5;
pub const DEVMGMT: u8 = 0x01;
pub const RADIOLINK: u8 = 0x02;
pub const PING_REQ: u8 = 0x01;
pub const PING_RSP: u8 = 0x02;
pub const SET_CONFIG_REQ: u8 = 0x03;
pub const SET_CONFIG_RSP: u8 = 0x04;
pub const RESET_REQ: u8 = 0x07;
pub const RESET_RSP: u8 = 0x08;
/// Radio link: a received wM-Bus message.
pub const WMBUSMSG_IND: u8 = 0x03;

const CF_TIMESTAMP: u8 = 0x20;
const CF_RSSI: u8 = 0x40;
const CF_CRC: u8 = 0x80;

/// CRC16 (the HCI's FCS field) over control field .. last byte of payload, timestamp or RSSI
/// (not the start of frame): CCITT polynomial 0x1021 bit-reversed (0x8408), start 0xFFFF,
/// complemented, sent low byte first, i.e. CRC-16/IBM-SDLC (X.25). Checked against frames
/// captured from a real iM871A (`tests` below).
const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_SDLC);

/// Bytes kept while waiting for the rest of a message; a message is at most 4+255+4+1+2.
const MAX_BUFFER: usize = 4096;

/// One HCI message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub endpoint: u8,
    pub id: u8,
    pub payload: Vec<u8>,
    pub timestamp: Option<u32>,
    pub rssi: Option<u8>,
}

/// Encodes a message (with a CRC16 when `crc`).
pub fn encode(m: &Message, crc: bool) -> Vec<u8> {
    let mut control = 0u8;
    if m.timestamp.is_some() {
        control |= CF_TIMESTAMP;
    }
    if m.rssi.is_some() {
        control |= CF_RSSI;
    }
    if crc {
        control |= CF_CRC;
    }
    let len = u8::try_from(m.payload.len()).unwrap_or(u8::MAX);
    let mut out = vec![START_OF_FRAME, control | (m.endpoint & 0x0F), m.id, len];
    out.extend_from_slice(&m.payload[..usize::from(len)]);
    if let Some(t) = m.timestamp {
        out.extend_from_slice(&t.to_be_bytes());
    }
    if let Some(r) = m.rssi {
        out.push(r);
    }
    if crc {
        let c = CRC16.checksum(&out[1..]);
        out.extend_from_slice(&c.to_le_bytes());
    }
    out
}

/// A request without payload from the host.
fn request(endpoint: u8, id: u8, payload: Vec<u8>) -> Vec<u8> {
    encode(
        &Message {
            endpoint,
            id,
            payload,
            timestamp: None,
            rssi: None,
        },
        false,
    )
}

/// The IMST link-mode code of a mode (S1 = 0, T1 = 3, C1 frame type A = 6).
pub fn link_mode_code(m: LinkMode) -> Option<u8> {
    match m {
        LinkMode::S1 => Some(0),
        LinkMode::T1 => Some(3),
        LinkMode::C1 => Some(6),
        LinkMode::N => None,
    }
}

/// DEVMGMT SET_CONFIG in RAM only (NVM flag 0): IIFlag1 0x02 (link mode follows), the link
/// mode, IIFlag2 0 (nothing else). Empty for a mode the stick does not have.
pub fn set_link_mode(m: LinkMode) -> Vec<u8> {
    match link_mode_code(m) {
        Some(code) => request(DEVMGMT, SET_CONFIG_REQ, vec![0x00, 0x02, code, 0x00]),
        None => Vec::new(),
    }
}

pub fn ping() -> Vec<u8> {
    request(DEVMGMT, PING_REQ, Vec::new())
}

pub fn reset() -> Vec<u8> {
    request(DEVMGMT, RESET_REQ, Vec::new())
}

/// A received telegram as the stick indicates it: the radio link's WMBUSMSG_IND, whose payload
/// is the frame from its C field (the stick leaves out the L field).
pub fn indication(frame: &[u8], rssi: Option<u8>, timestamp: Option<u32>) -> Vec<u8> {
    encode(
        &Message {
            endpoint: RADIOLINK,
            id: WMBUSMSG_IND,
            payload: frame.get(1..).unwrap_or_default().to_vec(),
            timestamp,
            rssi,
        },
        true,
    )
}

/// Parses one message at the start of `input`: the message and the bytes it took.
pub fn parse(input: &[u8]) -> Result<(Message, usize), Error> {
    let (&sof, rest) = input.split_first().ok_or(Error::Incomplete { needed: 4 })?;
    if sof != START_OF_FRAME {
        return Err(Error::invalid("start of frame", format!("0x{sof:02X}, not 0xA5")));
    }
    let [cf, id, len, ..] = rest else {
        return Err(Error::Incomplete {
            needed: 4 - input.len(),
        });
    };
    let (cf, id, len) = (*cf, *id, usize::from(*len));
    let mut total = 4 + len;
    let ts_at = total;
    if cf & CF_TIMESTAMP != 0 {
        total += 4;
    }
    let rssi_at = total;
    if cf & CF_RSSI != 0 {
        total += 1;
    }
    let crc_at = total;
    if cf & CF_CRC != 0 {
        total += 2;
    }
    if input.len() < total {
        return Err(Error::Incomplete {
            needed: total - input.len(),
        });
    }
    if cf & CF_CRC != 0 {
        let want = u16::from_le_bytes([input[crc_at], input[crc_at + 1]]);
        let got = CRC16.checksum(&input[1..crc_at]);
        if want != got {
            return Err(Error::check(
                Check::Crc,
                format!(
                    "HCI CRC16 0x{want:04X} sent, 0x{got:04X} computed (endpoint {}, message 0x{id:02X})",
                    cf & 0x0F
                ),
            ));
        }
    }
    let timestamp = (cf & CF_TIMESTAMP != 0)
        .then(|| u32::from_be_bytes([input[ts_at], input[ts_at + 1], input[ts_at + 2], input[ts_at + 3]]));
    let rssi = (cf & CF_RSSI != 0).then(|| input[rssi_at]);
    Ok((
        Message {
            endpoint: cf & 0x0F,
            id,
            payload: input[4..4 + len].to_vec(),
            timestamp,
            rssi,
        },
        total,
    ))
}

/// The stream decoder: resynchronises on the start of frame, refuses a message whose CRC16
/// fails (naming it) and skips it whole.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            // Bytes before a start of frame are line noise (or a frame cut by a reset).
            let start = self
                .buf
                .iter()
                .position(|&b| b == START_OF_FRAME)
                .unwrap_or(self.buf.len());
            if start > 0 {
                let raw: Vec<u8> = self.buf.drain(..start).collect();
                out.push(Event::Bad {
                    error: Error::invalid(
                        "start of frame",
                        format!("{} bytes without 0xA5 before them", raw.len()),
                    ),
                    raw,
                });
            }
            if self.buf.is_empty() {
                break;
            }
            match parse(&self.buf) {
                Ok((m, used)) => {
                    self.buf.drain(..used);
                    out.push(event_of(m));
                }
                Err(Error::Incomplete { .. }) => {
                    if self.buf.len() > MAX_BUFFER {
                        let raw: Vec<u8> = self.buf.drain(..).collect();
                        out.push(Event::Bad {
                            error: Error::invalid("length", "no complete message in 4096 bytes"),
                            raw,
                        });
                    }
                    break;
                }
                Err(error) => {
                    // The whole claimed message goes (a CRC failure) with its bytes.
                    let used = claimed_len(&self.buf).min(self.buf.len()).max(1);
                    let raw: Vec<u8> = self.buf.drain(..used).collect();
                    out.push(Event::Bad { raw, error });
                }
            }
        }
        out
    }
}

fn claimed_len(buf: &[u8]) -> usize {
    let (Some(&cf), Some(&len)) = (buf.get(1), buf.get(3)) else {
        return 1;
    };
    4 + usize::from(len)
        + if cf & CF_TIMESTAMP != 0 { 4 } else { 0 }
        + if cf & CF_RSSI != 0 { 1 } else { 0 }
        + if cf & CF_CRC != 0 { 2 } else { 0 }
}

fn event_of(m: Message) -> Event {
    match (m.endpoint, m.id) {
        (RADIOLINK, WMBUSMSG_IND) => {
            // Put back the L field the stick leaves out.
            let Ok(l) = u8::try_from(m.payload.len()) else {
                return Event::Bad {
                    error: Error::invalid("length", "indication over 255 bytes"),
                    raw: m.payload,
                };
            };
            let mut frame = Vec::with_capacity(m.payload.len() + 1);
            frame.push(l);
            frame.extend_from_slice(&m.payload);
            match check_frame(&frame) {
                Ok(()) => Event::Telegram(Telegram { frame, rssi_dbm: None }),
                Err(error) => Event::Bad { raw: frame, error },
            }
        }
        (DEVMGMT, PING_RSP) => Event::Reply("ping".into()),
        (DEVMGMT, SET_CONFIG_RSP) => Event::Reply(format!(
            "set-config status {}",
            m.payload.first().copied().unwrap_or(0xFF)
        )),
        (DEVMGMT, RESET_RSP) => Event::Reply("reset".into()),
        (ep, id) => Event::Reply(format!("endpoint {ep} message 0x{id:02X}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "1844AE4C4455223368077A55000000041389E20100023B0000";

    /// A WMBUSMSG_IND captured from a real iM871A (control field 0x8: CRC16 only), as published
    /// in a public IM871A CRC test script (see `docs/receivers.md`): the payload starts at the
    /// C field (0x44), the FCS `C1 AB` is CRC-16/IBM-SDLC 0xABC1 sent low byte first.
    const CAPTURED: &str = "a5820327442d2c5768663230028d20cd12340720519df247ff65e751662a300bc4e5c67da86477f0182637c1ab";

    #[test]
    fn a_frame_captured_from_a_real_stick_decodes() {
        let wire = hex::decode(CAPTURED).unwrap();
        assert_eq!(CRC16.checksum(&wire[1..wire.len() - 2]), 0xABC1);
        let (m, used) = parse(&wire).unwrap();
        assert_eq!((m.endpoint, m.id, used), (RADIOLINK, WMBUSMSG_IND, wire.len()));
        let events = Decoder::default().push(&wire);
        let [Event::Telegram(t)] = &events[..] else {
            panic!("{events:?}")
        };
        // The L field put back: 0x27 bytes from the C field.
        assert_eq!(t.frame, wire[3..wire.len() - 2].to_vec());
        assert_eq!(&t.frame[..2], &[0x27, 0x44]);
        // Our encoder reproduces the stick's bytes, FCS included.
        assert_eq!(indication(&t.frame, None, None), wire);
        // The same bytes under a big-endian or non-reflected CRC would be refused.
        let mut swapped = wire.clone();
        let n = swapped.len();
        swapped.swap(n - 1, n - 2);
        assert!(matches!(&Decoder::default().push(&swapped)[..], [Event::Bad { .. }]));
    }

    #[test]
    fn indication_round_trip_with_rssi_timestamp_and_crc() {
        let frame = hex::decode(R1).unwrap();
        let wire = indication(&frame, Some(0x40), Some(0x0102_0304));
        assert_eq!(wire[0], 0xA5);
        assert_eq!(wire[1], 0x80 | 0x40 | 0x20 | 0x02);
        assert_eq!(usize::from(wire[3]), frame.len() - 1, "the L field is left out");
        let mut d = Decoder::default();
        // Byte by byte: a stream reader gets it in pieces.
        let mut events = Vec::new();
        for b in &wire {
            events.extend(d.push(&[*b]));
        }
        assert_eq!(events, vec![Event::Telegram(Telegram { frame, rssi_dbm: None })]);
    }

    #[test]
    fn a_bad_crc_is_named_and_the_next_message_still_decodes() {
        let frame = hex::decode(R1).unwrap();
        let mut wire = indication(&frame, None, None);
        let n = wire.len();
        wire[n - 1] ^= 0x01;
        wire.extend(indication(&frame, None, None));
        let events = Decoder::default().push(&wire);
        assert_eq!(events.len(), 2, "{events:?}");
        let Event::Bad { error, raw } = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(error.failed_check(), Some(Check::Crc));
        assert!(error.to_string().contains("HCI CRC16"), "{error}");
        assert_eq!(raw.len(), n);
        assert!(matches!(&events[1], Event::Telegram(t) if t.frame == frame));
    }

    #[test]
    fn commands_and_replies() {
        let set = set_link_mode(LinkMode::T1);
        assert_eq!(set, vec![0xA5, 0x01, 0x03, 0x04, 0x00, 0x02, 0x03, 0x00]);
        assert!(set_link_mode(LinkMode::N).is_empty(), "868 MHz only");
        let (m, used) = parse(&set).unwrap();
        assert_eq!((m.endpoint, m.id, used), (DEVMGMT, SET_CONFIG_REQ, set.len()));
        assert_eq!(reset(), vec![0xA5, 0x01, 0x07, 0x00]);
        let rsp = encode(
            &Message {
                endpoint: DEVMGMT,
                id: SET_CONFIG_RSP,
                payload: vec![0],
                timestamp: None,
                rssi: None,
            },
            true,
        );
        assert_eq!(
            Decoder::default().push(&[&[0x00, 0x13][..], &rsp].concat()),
            vec![
                Event::Bad {
                    raw: vec![0x00, 0x13],
                    error: Error::invalid("start of frame", "2 bytes without 0xA5 before them")
                },
                Event::Reply("set-config status 0".into())
            ]
        );
    }

    #[test]
    fn short_and_garbage_input_never_panics() {
        let mut d = Decoder::default();
        for chunk in [
            &[0xA5][..],
            &[0x02, 0x03],
            &[0x02, 0x44, 0x00],
            &[0xA5; 300],
            &[0xFF; 10],
        ] {
            let _ = d.push(chunk);
        }
        assert!(matches!(parse(&[0xA5, 0x02]), Err(Error::Incomplete { .. })));
        // An indication too short for a wM-Bus frame is refused, not passed on.
        let short = indication(&[3, 0x44, 1, 2], None, None);
        assert!(matches!(&Decoder::default().push(&short)[..], [Event::Bad { .. }]));
    }
}
