//! Amber (Würth Elektronik) AMB8465 (868 MHz) / AMB3665 (169 MHz) wM-Bus sticks.
//!
//! Command mode (Amber's manuals, "Command mode"): `FF CMD LEN PAYLOAD CS`, CS the XOR of
//! every byte before it including the start byte 0xFF; the stick confirms a request with the
//! command byte | 0x80 (CMD_SET_MODE_REQ 0x04 → 0x84, CMD_RESET_REQ 0x05 → 0x85). Received
//! telegrams arrive in command mode as CMD_DATA_IND (0x03) or in transparent mode as the bare
//! telegram. With the stick's RSSI_Enable parameter set, which meterd expects, one RSSI byte
//! follows the telegram and the stick counts it in the length: transparent mode sends `L+1`,
//! the telegram from its C field, then the RSSI byte; CMD_DATA_IND's length byte is that same
//! `L+1` and its payload the telegram from its C field, then the RSSI byte (as the jmbus driver,
//! tested with an AMB8426-M, reads them; see `docs/receivers.md`).

use super::{Event, LinkMode, Telegram, check_frame};
use crate::error::{Check, Error};

pub const START: u8 = 0xFF;
pub const CMD_DATA_IND: u8 = 0x03;
pub const CMD_SET_MODE_REQ: u8 = 0x04;
pub const CMD_RESET_REQ: u8 = 0x05;
/// A confirmation is the request's command byte with this bit set.
pub const CONFIRM: u8 = 0x80;

/// Bytes kept while waiting for the rest of a frame.
const MAX_BUFFER: usize = 4096;

/// The mode preselect byte for CMD_SET_MODE_REQ, receiving as the "other" (collector) side.
/// S 0x03, T 0x08 and C 0x0E are the values the jmbus driver writes to the AMB8426-M's mode
/// preselect parameter; N 0x0A and the AMB8465's own table are not verified (see
/// `docs/receivers.md`).
pub fn mode_code(m: LinkMode) -> u8 {
    match m {
        LinkMode::S1 => 0x03,
        LinkMode::T1 => 0x08,
        LinkMode::C1 => 0x0E,
        LinkMode::N => 0x0A,
    }
}

/// The XOR checksum of a command frame's bytes before it.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |a, b| a ^ b)
}

/// Encodes a command frame.
pub fn command(cmd: u8, payload: &[u8]) -> Vec<u8> {
    let len = u8::try_from(payload.len()).unwrap_or(u8::MAX);
    let mut out = vec![START, cmd, len];
    out.extend_from_slice(&payload[..usize::from(len)]);
    out.push(checksum(&out));
    out
}

/// CMD_SET_MODE_REQ: the mode in volatile memory (no flash write wear; set again on each open).
pub fn set_mode(m: LinkMode) -> Vec<u8> {
    command(CMD_SET_MODE_REQ, &[mode_code(m)])
}

pub fn reset() -> Vec<u8> {
    command(CMD_RESET_REQ, &[])
}

/// A received telegram (`frame`, L field first) as the stick sends it in transparent mode with
/// RSSI_Enable set: the length byte counts the RSSI byte too (`L+1`), then the telegram from its
/// C field, then the RSSI byte.
pub fn transparent(frame: &[u8], rssi: u8) -> Vec<u8> {
    let body = frame.get(1..).unwrap_or_default();
    let mut out = Vec::with_capacity(body.len() + 2);
    out.push(u8::try_from(body.len() + 1).unwrap_or(u8::MAX));
    out.extend_from_slice(body);
    out.push(rssi);
    out
}

/// A received telegram as the stick sends it in command mode with RSSI_Enable set:
/// CMD_DATA_IND whose payload is the telegram from its C field, then the RSSI byte (so the
/// command's length byte is `L+1`).
pub fn data_ind(frame: &[u8], rssi: u8) -> Vec<u8> {
    let mut payload = frame.get(1..).unwrap_or_default().to_vec();
    payload.push(rssi);
    command(CMD_DATA_IND, &payload)
}

/// The telegram (L field put back) and its RSSI byte from the stick's `L+1`-counted bytes after
/// the length byte: the telegram from its C field, then the RSSI byte.
fn with_rssi(body_and_rssi: &[u8]) -> Result<Telegram, Error> {
    let Some((&rssi, body)) = body_and_rssi.split_last() else {
        return Err(Error::invalid("telegram", "no RSSI byte"));
    };
    let l = u8::try_from(body.len()).map_err(|_| Error::invalid("length", "telegram over 255 bytes"))?;
    let mut frame = Vec::with_capacity(body.len() + 1);
    frame.push(l);
    frame.extend_from_slice(body);
    check_frame(&frame)?;
    Ok(Telegram {
        frame,
        rssi_dbm: Some(rssi_dbm(rssi)),
    })
}

/// The RSSI byte in dBm (two's complement half-dB steps, offset −74 dBm, as Amber's manuals
/// give it for CMD_RSSI_REQ).
pub fn rssi_dbm(raw: u8) -> i16 {
    i16::from(raw as i8) / 2 - 74
}

/// A command frame at the start of `input`: (command, payload, bytes taken).
pub fn parse_command(input: &[u8]) -> Result<(u8, Vec<u8>, usize), Error> {
    match input {
        [] => Err(Error::Incomplete { needed: 4 }),
        [b, ..] if *b != START => Err(Error::invalid("start byte", format!("0x{b:02X}, not 0xFF"))),
        [_, cmd, len, ..] => {
            let total = 3 + usize::from(*len) + 1;
            if input.len() < total {
                return Err(Error::Incomplete {
                    needed: total - input.len(),
                });
            }
            let want = checksum(&input[..total - 1]);
            let got = input[total - 1];
            if want != got {
                return Err(Error::check(
                    Check::Checksum,
                    format!("XOR checksum 0x{got:02X} sent, 0x{want:02X} computed (command 0x{cmd:02X})"),
                ));
            }
            Ok((*cmd, input[3..total - 1].to_vec(), total))
        }
        _ => Err(Error::Incomplete {
            needed: 4 - input.len(),
        }),
    }
}

/// The stream decoder: command frames (0xFF first) and transparent-mode telegrams (`L+1` first,
/// then the telegram from its C field, then the RSSI byte).
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(&first) = self.buf.first() {
            if first == START {
                match parse_command(&self.buf) {
                    Ok((cmd, payload, used)) => {
                        self.buf.drain(..used);
                        out.push(confirm_event(cmd, payload));
                    }
                    Err(Error::Incomplete { .. }) => break,
                    Err(error) => {
                        let used = (4 + usize::from(self.buf[2])).min(self.buf.len());
                        let raw = self.buf.drain(..used).collect();
                        out.push(Event::Bad { raw, error });
                    }
                }
                continue;
            }
            // Transparent mode: the length byte counts the bytes after it, RSSI byte included.
            let total = usize::from(first) + 1;
            if usize::from(first) < super::MIN_FRAME {
                // No telegram is this short: line noise; drop up to the next plausible start.
                let skip = self
                    .buf
                    .iter()
                    .skip(1)
                    .position(|&b| b == START || usize::from(b) >= super::MIN_FRAME)
                    .map_or(self.buf.len(), |p| p + 1);
                let raw: Vec<u8> = self.buf.drain(..skip).collect();
                out.push(Event::Bad {
                    error: Error::invalid("L field", format!("{} bytes that start no telegram", raw.len())),
                    raw,
                });
                continue;
            }
            if self.buf.len() < total {
                if self.buf.len() > MAX_BUFFER {
                    let raw = self.buf.drain(..).collect();
                    out.push(Event::Bad {
                        error: Error::invalid("length", "no complete frame in 4096 bytes"),
                        raw,
                    });
                }
                break;
            }
            let raw: Vec<u8> = self.buf.drain(..total).collect();
            out.push(match with_rssi(&raw[1..]) {
                Ok(t) => Event::Telegram(t),
                Err(error) => Event::Bad { raw, error },
            });
        }
        out
    }
}

fn confirm_event(cmd: u8, payload: Vec<u8>) -> Event {
    match cmd {
        CMD_DATA_IND => match with_rssi(&payload) {
            Ok(t) => Event::Telegram(t),
            Err(error) => Event::Bad { raw: payload, error },
        },
        c if c == CMD_SET_MODE_REQ | CONFIRM => {
            Event::Reply(format!("set-mode status {}", payload.first().copied().unwrap_or(0xFF)))
        }
        c if c == CMD_RESET_REQ | CONFIRM => Event::Reply("reset".into()),
        c => Event::Reply(format!("command 0x{c:02X}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "1844AE4C4455223368077A55000000041389E20100023B0000";

    #[test]
    fn checksums_match_the_manuals_examples() {
        // CMD_RESET_REQ and CMD_SET_CHANNEL_REQ (channel 11) as printed in Amber's manual.
        assert_eq!(reset(), vec![0xFF, 0x05, 0x00, 0xFA]);
        assert_eq!(command(0x06, &[0x0B]), vec![0xFF, 0x06, 0x01, 0x0B, 0xF3]);
        assert_eq!(
            parse_command(&[0xFF, 0x86, 0x01, 0x0B, 0x73]).unwrap(),
            (0x86, vec![0x0B], 5)
        );
        assert_eq!(rssi_dbm(0x40), -42);
        assert_eq!(rssi_dbm(0xC0), -106);
    }

    #[test]
    fn transparent_telegrams_and_confirmations_interleave() {
        let frame = hex::decode(R1).unwrap();
        let mut wire = command(CMD_SET_MODE_REQ | CONFIRM, &[0]);
        let t = transparent(&frame, 0x40);
        // The length byte counts the RSSI byte; the L field itself is not repeated.
        assert_eq!(t[0], frame[0] + 1);
        assert_eq!(&t[1..t.len() - 1], &frame[1..]);
        wire.extend(t);
        let d = data_ind(&frame, 0xC0);
        assert_eq!(&d[..4], &[0xFF, CMD_DATA_IND, frame[0] + 1, frame[1]]);
        wire.extend(d);
        let mut d = Decoder::default();
        let mut events = Vec::new();
        for chunk in wire.chunks(7) {
            events.extend(d.push(chunk));
        }
        assert_eq!(
            events,
            vec![
                Event::Reply("set-mode status 0".into()),
                Event::Telegram(Telegram {
                    frame: frame.clone(),
                    rssi_dbm: Some(-42)
                }),
                Event::Telegram(Telegram {
                    frame,
                    rssi_dbm: Some(-106)
                }),
            ]
        );
    }

    #[test]
    fn a_bad_checksum_is_named() {
        let mut wire = set_mode(LinkMode::T1);
        let n = wire.len();
        wire[n - 1] ^= 0x55;
        let events = Decoder::default().push(&wire);
        let [Event::Bad { error, raw }] = &events[..] else {
            panic!("{events:?}")
        };
        assert_eq!(error.failed_check(), Some(Check::Checksum));
        assert!(error.to_string().contains("XOR checksum"), "{error}");
        assert_eq!(raw.len(), n);
    }

    #[test]
    fn noise_never_panics() {
        let mut d = Decoder::default();
        for chunk in [
            &[0x00, 0x01, 0x02][..],
            &[0xFF],
            &[0xFF, 0x10],
            &[0x30; 40],
            &[0xFF; 600],
        ] {
            let _ = d.push(chunk);
        }
    }
}
