//! Wireless M-Bus receivers on serial lines (USB sticks and the text output of SDR decoders):
//! the commands that set them up and the framing their received telegrams arrive in. Sans-IO:
//! bytes in, [`Event`]s out, commands as bytes; the daemon owns the port.
//!
//! - [`im871a`]: IMST iM871A / iU891A, the WM-Bus HCI (start of frame 0xA5).
//! - [`amber`]: Amber AMB8465 / AMB3665, command frames `FF CMD LEN PAYLOAD CS` and
//!   transparent-mode telegrams.
//! - [`cul`]: culfw CUL sticks, text lines (`brt`, `b<hex>`).
//! - [`rtl_wmbus`]: rtl_wmbus's `;`-separated lines.
//! - [`rtl_433`]: rtl_433's JSON lines.
//!
//! What was verified from which manual, and what was not, is written down in
//! `docs/receivers.md`.

pub mod amber;
pub mod cul;
pub mod im871a;
pub mod rtl_433;
pub mod rtl_wmbus;

use std::fmt;

use crate::error::Error;

/// The longest line a text receiver may send (a wM-Bus telegram is at most 256 bytes, 512 hex
/// digits; rtl_433's JSON adds its fields). Longer lines are refused, never buffered unbounded.
pub const MAX_LINE: usize = 4096;

/// The receiver models meterd drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Im871a,
    Amber,
    Cul,
    RtlWmbus,
    Rtl433,
}

impl Kind {
    /// How the stick hands a telegram over, when it is known: the iM871A and the Amber sticks
    /// check the link layer's CRCs and remove them (IMST WM-Bus HCI: WMBUSMSG_IND carries the
    /// message from the C field; Amber: transparent mode, L to the last data byte; rtl_433
    /// prints L + 1 bytes, CRCs removed); culfw and rtl_wmbus lines are detected.
    pub fn frame_format(self) -> Option<crate::wmbus::dll::FrameFormat> {
        match self {
            Kind::Im871a | Kind::Amber | Kind::Rtl433 => Some(crate::wmbus::dll::FrameFormat::Stripped),
            Kind::Cul | Kind::RtlWmbus => None,
        }
    }

    /// The name in the configuration (`kind = "im871a"`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Im871a => "im871a",
            Kind::Amber => "amber",
            Kind::Cul => "cul",
            Kind::RtlWmbus => "rtl_wmbus",
            Kind::Rtl433 => "rtl_433",
        }
    }

    /// The framing layer named in refusals.
    pub fn layer(self) -> &'static str {
        match self {
            Kind::Im871a => "iM871A HCI",
            Kind::Amber => "Amber serial frame",
            Kind::Cul => "culfw line",
            Kind::RtlWmbus => "rtl_wmbus line",
            Kind::Rtl433 => "rtl_433 JSON line",
        }
    }

    /// Whether meterd sets the radio mode (the SDR decoders take theirs on their command line).
    pub fn sets_mode(self) -> bool {
        matches!(self, Kind::Im871a | Kind::Amber | Kind::Cul)
    }

    /// The link modes this receiver can be set to.
    pub fn modes(self) -> &'static [LinkMode] {
        match self {
            Kind::Im871a | Kind::Cul => &[LinkMode::S1, LinkMode::T1, LinkMode::C1],
            // N (169 MHz) only on the AMB3665; an AMB8465 refuses the mode command.
            Kind::Amber => &[LinkMode::S1, LinkMode::T1, LinkMode::C1, LinkMode::N],
            Kind::RtlWmbus | Kind::Rtl433 => &[],
        }
    }

    /// A new stream decoder for this receiver's output.
    pub fn decoder(self) -> Decoder {
        match self {
            Kind::Im871a => Decoder::Im871a(im871a::Decoder::default()),
            Kind::Amber => Decoder::Amber(amber::Decoder::default()),
            Kind::Cul => Decoder::Lines(self, Lines::default()),
            Kind::RtlWmbus => Decoder::Lines(self, Lines::default()),
            Kind::Rtl433 => Decoder::Lines(self, Lines::default()),
        }
    }

    /// What to send after opening the port: a liveness question (iM871A ping, culfw version,
    /// whose answers are logged), then the mode (and, for culfw, the report flags).
    pub fn setup(self, mode: Option<LinkMode>) -> Vec<u8> {
        match (self, mode) {
            (Kind::Im871a, Some(m)) => [im871a::ping(), im871a::set_link_mode(m)].concat(),
            (Kind::Amber, Some(m)) => amber::set_mode(m),
            (Kind::Cul, Some(m)) => cul::setup(m),
            _ => Vec::new(),
        }
    }

    /// What to send to a receiver that went silent (empty: close and reopen the port instead).
    pub fn reset(self) -> Vec<u8> {
        match self {
            Kind::Im871a => im871a::reset(),
            Kind::Amber => amber::reset(),
            // culfw has no reset command that keeps the USB device; the port is reopened and
            // the mode set again.
            Kind::Cul | Kind::RtlWmbus | Kind::Rtl433 => Vec::new(),
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "im871a" => Kind::Im871a,
            "amber" => Kind::Amber,
            "cul" => Kind::Cul,
            "rtl_wmbus" => Kind::RtlWmbus,
            "rtl_433" => Kind::Rtl433,
            other => {
                return Err(format!(
                    "unknown receiver kind {other:?} (im871a, amber, cul, rtl_wmbus, rtl_433)"
                ));
            }
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Wireless M-Bus link modes (EN 13757-4) a receiver listens in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkMode {
    S1,
    T1,
    C1,
    /// 169 MHz narrow band.
    N,
}

impl std::str::FromStr for LinkMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "S1" => LinkMode::S1,
            "T1" => LinkMode::T1,
            "C1" => LinkMode::C1,
            "N" => LinkMode::N,
            other => return Err(format!("unknown link mode {other:?} (S1, T1, C1, N)")),
        })
    }
}

impl fmt::Display for LinkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkMode::S1 => "S1",
            LinkMode::T1 => "T1",
            LinkMode::C1 => "C1",
            LinkMode::N => "N",
        })
    }
}

/// A telegram as the receiver handed it over: the wM-Bus frame from its L field (with or
/// without DLL CRCs; the wM-Bus decoder tells them apart) and the signal strength when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telegram {
    pub frame: Vec<u8>,
    pub rssi_dbm: Option<i16>,
}

/// What came out of a receiver's byte stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A received telegram.
    Telegram(Telegram),
    /// A JSON line for the common JSON path (rtl_433's meter models other than wM-Bus).
    Json(String),
    /// The receiver answered a command (`what` names it, e.g. `set-config ok`).
    Reply(String),
    /// Bytes that are not a valid frame of the receiver: the raw bytes and why.
    Bad { raw: Vec<u8>, error: Error },
}

impl Event {
    /// The event of one received text line: its telegram, or the line kept with the error.
    pub fn of_line(line: &str, result: Result<Telegram, Error>) -> Event {
        match result {
            Ok(t) => Event::Telegram(t),
            Err(error) => Event::Bad {
                raw: line.as_bytes().to_vec(),
                error,
            },
        }
    }
}

/// A stream decoder of one receiver kind.
#[derive(Debug, Clone)]
pub enum Decoder {
    Im871a(im871a::Decoder),
    Amber(amber::Decoder),
    Lines(Kind, Lines),
}

impl Decoder {
    /// Takes bytes as they arrive and returns what they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        match self {
            Decoder::Im871a(d) => d.push(bytes),
            Decoder::Amber(d) => d.push(bytes),
            Decoder::Lines(kind, lines) => lines
                .push(bytes)
                .into_iter()
                .filter_map(|line| match line {
                    Ok(text) => match kind {
                        Kind::Cul => cul::parse_line(&text),
                        Kind::RtlWmbus => rtl_wmbus::parse_line(&text),
                        _ => rtl_433::parse_line(&text),
                    },
                    Err(raw) => Some(Event::Bad {
                        error: Error::invalid("line", format!("longer than {MAX_LINE} bytes")),
                        raw,
                    }),
                })
                .collect(),
        }
    }
}

/// Splits a byte stream into lines (LF or CR LF), within [`MAX_LINE`].
#[derive(Debug, Clone, Default)]
pub struct Lines {
    buf: Vec<u8>,
    /// The current line is over the limit: drop bytes until its end.
    overlong: bool,
}

impl Lines {
    /// Complete lines (trimmed, empty ones skipped), or the cut start of an overlong one.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Result<String, Vec<u8>>> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                if self.overlong {
                    self.overlong = false;
                } else {
                    let line = String::from_utf8_lossy(&self.buf).trim().to_owned();
                    if !line.is_empty() {
                        out.push(Ok(line));
                    }
                }
                self.buf.clear();
            } else if !self.overlong {
                self.buf.push(b);
                if self.buf.len() > MAX_LINE {
                    self.overlong = true;
                    self.buf.truncate(64);
                    out.push(Err(std::mem::take(&mut self.buf)));
                }
            }
        }
        out
    }
}

/// Parses hex digits into bytes, naming the field on failure.
fn hex_field(field: &'static str, text: &str) -> Result<Vec<u8>, Error> {
    if text.is_empty() {
        return Err(Error::invalid(field, "empty"));
    }
    hex::decode(text).map_err(|e| Error::invalid(field, e.to_string()))
}

/// A wM-Bus frame's first block is L C M(2) A(6): anything shorter is not a telegram.
const MIN_FRAME: usize = 10;

fn check_frame(frame: &[u8]) -> Result<(), Error> {
    if frame.len() < MIN_FRAME {
        return Err(Error::invalid(
            "telegram",
            format!("{} bytes; a wM-Bus frame has at least {MIN_FRAME}", frame.len()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_and_cut_overlong_ones() {
        let mut l = Lines::default();
        assert!(l.push(b"ab").is_empty());
        assert_eq!(l.push(b"c\r\n\r\nde\n"), vec![Ok("abc".into()), Ok("de".into())]);
        let long = vec![b'x'; MAX_LINE + 10];
        let out = l.push(&long);
        assert!(matches!(&out[..], [Err(raw)] if raw.len() == 64));
        assert!(l.push(b"yyy\nok\n") == vec![Ok("ok".into())]);
    }

    #[test]
    fn kinds_and_modes() {
        assert_eq!("im871a".parse::<Kind>().unwrap(), Kind::Im871a);
        assert!("im871".parse::<Kind>().unwrap_err().contains("unknown receiver kind"));
        assert!(!Kind::Im871a.modes().contains(&LinkMode::N));
        assert!(Kind::Amber.modes().contains(&LinkMode::N));
        assert!(Kind::RtlWmbus.modes().is_empty());
    }
}
