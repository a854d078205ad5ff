//! IEC 62056-21 messages on the wire: sign-on request, identification, acknowledgement/option
//! select, data blocks with BCC, and programming-mode commands; plus the 7E1 parity helpers.
//!
//! Every parser is streaming: it returns [`Error::Incomplete`] while a message is still arriving,
//! so the probe session can feed it bytes as they come off the serial port.

use std::time::Duration;

use nom::bytes::streaming::{tag, take, take_while_m_n};
use nom::combinator::opt;
use nom::sequence::preceded;
use nom::{IResult, Parser};

use crate::error::{Check, Error, Result};

pub const SOH: u8 = 0x01;
pub const STX: u8 = 0x02;
pub const ETX: u8 = 0x03;
pub const EOT: u8 = 0x04;
pub const ACK: u8 = 0x06;
pub const NAK: u8 = 0x15;
pub const CR: u8 = 0x0D;
pub const LF: u8 = 0x0A;
pub const CRLF: &[u8] = b"\r\n";

/// Longest identification text accepted. The standard says 16 characters; real meters (e.g.
/// EasyMeter `Q3DB1024 V3.04` with its space) stretch the rules, so allow some slack.
pub const MAX_IDENT: usize = 32;
/// Longest data block accepted before a block is declared runaway garbage.
pub const MAX_BLOCK: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Block check character and 7E1 parity

/// Block check character: XOR of the bytes after SOH/STX up to and including ETX/EOT, 7 bits.
pub fn bcc(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |acc, b| acc ^ b) & 0x7F
}

/// Sets bit 7 so the byte has even parity over its 7 data bits (7E1 sent over an 8N1 link).
pub fn add_even_parity(byte: u8) -> u8 {
    let b = byte & 0x7F;
    if b.count_ones().is_multiple_of(2) { b } else { b | 0x80 }
}

/// Adds even parity to every byte.
pub fn encode_7e1(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().map(|&b| add_even_parity(b)).collect()
}

/// Checks the even parity bit of one byte received over an 8N1 link and strips it.
/// `None` when the parity is wrong.
pub fn strip_even_parity(byte: u8) -> Option<u8> {
    if byte.count_ones().is_multiple_of(2) {
        Some(byte & 0x7F)
    } else {
        None
    }
}

/// Checks and strips even parity on every byte; the error names the first bad byte's offset.
pub fn decode_7e1(bytes: &[u8]) -> Result<Vec<u8>> {
    bytes
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            strip_even_parity(b)
                .ok_or_else(|| Error::invalid("parity", format!("byte {i} (0x{b:02X}) has odd parity for 7E1")))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Request `/?addr!CRLF`

/// Sign-on request. An empty address addresses whatever meter is in front of the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub address: String,
}

impl Request {
    pub fn new(address: impl Into<String>) -> Self {
        Request {
            address: address.into(),
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>> {
        check_text("device address", &self.address, 32, b"/!?()")?;
        let mut out = Vec::with_capacity(self.address.len() + 5);
        out.extend_from_slice(b"/?");
        out.extend_from_slice(self.address.as_bytes());
        out.extend_from_slice(b"!\r\n");
        Ok(out)
    }

    pub fn parse(i: &[u8]) -> IResult<&[u8], Request> {
        let (i, _) = tag(&b"/?"[..]).parse(i)?;
        let (i, addr) = take_while_m_n(0, 32, |b: u8| b != b'!' && b.is_ascii_graphic()).parse(i)?;
        let (i, _) = tag(&b"!\r\n"[..]).parse(i)?;
        Ok((i, Request { address: ascii(addr) }))
    }
}

// ---------------------------------------------------------------------------------------------
// Identification `/XXXZ[\W]ident CRLF`

/// The protocol mode implied by the identification's baud character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    A,
    B,
    C,
}

/// The meter's identification message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identification {
    /// Three-character manufacturer id as sent (case matters: a lower-case third letter means a
    /// 20 ms reaction time).
    pub manufacturer: String,
    /// The baud rate character Z.
    pub baud_char: u8,
    /// The enhanced identification character W of a `\W` sequence (`2` = mode E/HDLC capable).
    pub enhanced: Option<u8>,
    /// The identification text.
    pub ident: String,
}

impl Identification {
    /// Mode from the baud character: digits are mode C, `A`..`I` mode B, anything else mode A.
    pub fn mode(&self) -> Mode {
        match self.baud_char {
            b'0'..=b'9' => Mode::C,
            b'A'..=b'I' => Mode::B,
            _ => Mode::A,
        }
    }

    /// The baud rate the meter proposes; `None` for reserved characters.
    pub fn baud_rate(&self) -> Option<u32> {
        baud_rate(self.baud_char)
    }

    /// Minimum time the meter needs before it listens to our next message.
    pub fn reaction_time(&self) -> Duration {
        if self.manufacturer.as_bytes().get(2).is_some_and(u8::is_ascii_lowercase) {
            Duration::from_millis(20)
        } else {
            Duration::from_millis(200)
        }
    }

    /// The message as written after `/` and before CR LF, e.g. `LGZ4\2ZMD120APt.G03`.
    pub fn text(&self) -> String {
        let mut s = String::with_capacity(6 + self.ident.len());
        s.push_str(&self.manufacturer);
        s.push(self.baud_char as char);
        if let Some(w) = self.enhanced {
            s.push('\\');
            s.push(w as char);
        }
        s.push_str(&self.ident);
        s
    }

    pub fn encode(&self) -> Result<Vec<u8>> {
        if self.manufacturer.len() != 3 || !self.manufacturer.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(Error::invalid(
                "manufacturer",
                format!("{:?} is not 3 letters", self.manufacturer),
            ));
        }
        if !self.baud_char.is_ascii_graphic() || matches!(self.baud_char, b'/' | b'!' | b'\\') {
            return Err(Error::invalid("baud character", format!("0x{:02X}", self.baud_char)));
        }
        check_text("identification", &self.ident, MAX_IDENT, b"/!")?;
        let mut out = Vec::with_capacity(8 + self.ident.len());
        out.push(b'/');
        out.extend_from_slice(self.text().as_bytes());
        out.extend_from_slice(CRLF);
        Ok(out)
    }

    pub fn parse(i: &[u8]) -> IResult<&[u8], Identification> {
        let (i, _) = tag(&b"/"[..]).parse(i)?;
        let (i, man) = take_while_m_n(3, 3, |b: u8| b.is_ascii_alphabetic()).parse(i)?;
        let (i, z) =
            take_while_m_n(1, 1, |b: u8| b.is_ascii_graphic() && !matches!(b, b'/' | b'!' | b'\\')).parse(i)?;
        let (i, w) = opt(preceded(tag(&b"\\"[..]), take(1usize))).parse(i)?;
        let (i, ident) = take_while_m_n(0, MAX_IDENT, |b: u8| (0x20..0x7F).contains(&b)).parse(i)?;
        let (i, _) = tag(CRLF).parse(i)?;
        Ok((
            i,
            Identification {
                manufacturer: ascii(man),
                baud_char: z[0],
                enhanced: w.map(|w| w[0]),
                ident: ascii(ident),
            },
        ))
    }
}

/// Baud rate of a baud character: mode C `0`..`6`, mode B `A`..`F`, mode A always 300.
pub fn baud_rate(z: u8) -> Option<u32> {
    const C: [u32; 7] = [300, 600, 1200, 2400, 4800, 9600, 19200];
    match z {
        b'0'..=b'6' => Some(C[(z - b'0') as usize]),
        b'7'..=b'9' => None,
        b'A'..=b'F' => Some(C[(z - b'A' + 1) as usize]),
        b'G'..=b'I' => None,
        _ => Some(300),
    }
}

/// The mode C baud character for a rate, if the rate has one.
pub fn baud_char_c(rate: u32) -> Option<u8> {
    [300, 600, 1200, 2400, 4800, 9600, 19200]
        .iter()
        .position(|&r| r == rate)
        .map(|p| b'0' + p as u8)
}

// ---------------------------------------------------------------------------------------------
// Acknowledgement / option select `ACK V Z Y CRLF`

/// Option select sent by the reader after the identification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSelect {
    /// Protocol control character V (`0` normal, `1` secondary, `2` seen on APA NORAX).
    pub protocol: u8,
    /// Baud character Z (mode C digit).
    pub baud_char: u8,
    /// Mode control character Y (`0` readout, `1` programming, `2` binary/HDLC).
    pub mode: u8,
}

impl OptionSelect {
    pub fn encode(&self) -> Vec<u8> {
        vec![ACK, self.protocol, self.baud_char, self.mode, CR, LF]
    }

    pub fn parse(i: &[u8]) -> IResult<&[u8], OptionSelect> {
        let (i, _) = tag(&[ACK][..]).parse(i)?;
        let (i, v) = take_while_m_n(3, 3, |b: u8| b.is_ascii_alphanumeric()).parse(i)?;
        let (i, _) = tag(CRLF).parse(i)?;
        Ok((
            i,
            OptionSelect {
                protocol: v[0],
                baud_char: v[1],
                mode: v[2],
            },
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Blocks with BCC: data messages `STX data ETX|EOT BCC` and commands `SOH C D [STX data] ETX BCC`

/// How a block ends: ETX ends the message, EOT ends a partial block (more follow after ACK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockEnd {
    Etx,
    Eot,
}

/// A data block as framed on the wire, BCC already verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataBlock {
    /// The bytes between STX and ETX/EOT.
    pub data: Vec<u8>,
    pub end: BlockEnd,
}

impl DataBlock {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 3);
        out.push(STX);
        out.extend_from_slice(&self.data);
        out.push(match self.end {
            BlockEnd::Etx => ETX,
            BlockEnd::Eot => EOT,
        });
        out.push(bcc(&out[1..]));
        out
    }

    /// A readout data message: the data lines followed by the `!` end line.
    pub fn readout(lines: &[u8]) -> DataBlock {
        let mut data = Vec::with_capacity(lines.len() + 3);
        data.extend_from_slice(lines);
        data.extend_from_slice(b"!\r\n");
        DataBlock {
            data,
            end: BlockEnd::Etx,
        }
    }

    /// Parses one block starting at STX. Returns the bytes consumed. A block whose BCC does not
    /// match is a [`Check::Bcc`] failure (the caller answers NAK); the consumed length is then
    /// still known, so `parse_checked` reports it through [`BlockError`].
    pub fn parse(i: &[u8]) -> Result<(usize, DataBlock)> {
        Self::parse_checked(i).map_err(|e| e.error)
    }

    /// Like [`DataBlock::parse`] but a BCC failure also says how many bytes the bad block took.
    pub fn parse_checked(i: &[u8]) -> std::result::Result<(usize, DataBlock), BlockError> {
        let (data, end, bcc_byte, used) = frame_block(i, STX)?;
        let expected = bcc(&i[1..used - 1]);
        if expected != bcc_byte & 0x7F {
            return Err(BlockError {
                consumed: Some(used),
                error: Error::check(
                    Check::Bcc,
                    format!(
                        "block of {} bytes: BCC 0x{:02X} received, 0x{expected:02X} computed",
                        used, bcc_byte
                    ),
                ),
            });
        }
        Ok((
            used,
            DataBlock {
                data: data.to_vec(),
                end,
            },
        ))
    }
}

/// Why a block was refused and, for a complete but corrupt block, how long it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockError {
    pub consumed: Option<usize>,
    pub error: Error,
}

impl From<Error> for BlockError {
    fn from(error: Error) -> Self {
        BlockError { consumed: None, error }
    }
}

/// Finds `lead … ETX|EOT BCC`; returns (data, end, bcc, bytes used). Data stops at the first
/// ETX/EOT, since neither may appear inside a block.
fn frame_block(i: &[u8], lead: u8) -> Result<(&[u8], BlockEnd, u8, usize)> {
    match i.first() {
        None => return Err(Error::Incomplete { needed: 1 }),
        Some(&b) if b != lead => {
            return Err(Error::invalid(
                "block",
                format!("expected 0x{lead:02X}, found 0x{b:02X}"),
            ));
        }
        Some(_) => {}
    }
    let Some(pos) = i[1..].iter().position(|&b| b == ETX || b == EOT) else {
        if i.len() > MAX_BLOCK {
            return Err(Error::invalid("block", format!("no ETX within {MAX_BLOCK} bytes")));
        }
        return Err(Error::Incomplete { needed: 2 });
    };
    let end_at = 1 + pos;
    if i.len() < end_at + 2 {
        return Err(Error::Incomplete { needed: 1 });
    }
    let end = if i[end_at] == ETX { BlockEnd::Etx } else { BlockEnd::Eot };
    Ok((&i[1..end_at], end, i[end_at + 1], end_at + 2))
}

/// A programming-mode command `SOH C D [STX data] ETX BCC` (R1 read, W1 write, P0/P1
/// password, B0 break, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Command message identifier C (`P`, `R`, `W`, `E`, `B`).
    pub command: u8,
    /// Command type identifier D (`0`..`9`).
    pub kind: u8,
    /// The data set after STX, if any, e.g. `1.8.0()` or `(password)`.
    pub data: Option<Vec<u8>>,
}

impl Command {
    /// Read command (`R1`, or `R5` for meters that need it) for one register address.
    pub fn read(kind: u8, address: &str) -> Command {
        Command {
            command: b'R',
            kind,
            data: Some(format!("{address}()").into_bytes()),
        }
    }

    /// Password command (`P1` carries the password in clear).
    pub fn password(kind: u8, password: &str) -> Command {
        Command {
            command: b'P',
            kind,
            data: Some(format!("({password})").into_bytes()),
        }
    }

    /// Break: ends the session; the meter returns to 300 baud and waits for a sign-on.
    pub fn sign_off() -> Command {
        Command {
            command: b'B',
            kind: b'0',
            data: None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 + self.data.as_ref().map_or(0, Vec::len));
        out.extend_from_slice(&[SOH, self.command, self.kind]);
        if let Some(data) = &self.data {
            out.push(STX);
            out.extend_from_slice(data);
        }
        out.push(ETX);
        out.push(bcc(&out[1..]));
        out
    }

    pub fn parse(i: &[u8]) -> Result<(usize, Command)> {
        let (body, end, bcc_byte, used) = frame_block(i, SOH)?;
        if end != BlockEnd::Etx {
            return Err(Error::invalid("command", "ends with EOT"));
        }
        let expected = bcc(&i[1..used - 1]);
        if expected != bcc_byte & 0x7F {
            return Err(Error::check(
                Check::Bcc,
                format!("command: BCC 0x{bcc_byte:02X} received, 0x{expected:02X} computed"),
            ));
        }
        if body.len() < 2 || !body[0].is_ascii_uppercase() || !body[1].is_ascii_digit() {
            return Err(Error::invalid(
                "command",
                format!("bad command identifier {:?}", ascii(&body[..body.len().min(2)])),
            ));
        }
        let data = match &body[2..] {
            [] => None,
            [STX, rest @ ..] => Some(rest.to_vec()),
            _ => return Err(Error::invalid("command", "data does not start with STX")),
        };
        Ok((
            used,
            Command {
                command: body[0],
                kind: body[1],
                data,
            },
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Any message, for the session state machines

/// Anything either side may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Identification(Identification),
    OptionSelect(OptionSelect),
    Ack,
    Nak,
    Command(Command),
    Data(DataBlock),
}

/// Parses the next message at the start of `i`, returning the bytes it used.
/// `option_select_expected`: an ACK may start an option select (only a meter waiting after its
/// identification says so); otherwise an ACK is a lone acknowledgement and never waits for more.
/// Bytes that cannot start any message are [`Error::Invalid`]: the caller drops one byte and
/// tries again (line noise, or the garbage a baud mismatch produces).
pub fn parse_message(i: &[u8], option_select_expected: bool) -> std::result::Result<(usize, Message), BlockError> {
    let Some(&first) = i.first() else {
        return Err(Error::Incomplete { needed: 1 }.into());
    };
    let done = |rest: &[u8]| i.len() - rest.len();
    match first {
        b'/' if i.get(1) == Some(&b'?') => {
            let (rest, m) = Request::parse(i).map_err(Error::from)?;
            Ok((done(rest), Message::Request(m)))
        }
        b'/' => {
            let (rest, m) = Identification::parse(i).map_err(Error::from)?;
            Ok((done(rest), Message::Identification(m)))
        }
        ACK if !option_select_expected => Ok((1, Message::Ack)),
        ACK if i.len() == 1 => Err(Error::Incomplete { needed: 1 }.into()),
        // A lone ACK is followed by anything but the option select's V character.
        ACK if i[1].is_ascii_alphanumeric() => {
            let (rest, m) = OptionSelect::parse(i).map_err(Error::from)?;
            Ok((done(rest), Message::OptionSelect(m)))
        }
        ACK => Ok((1, Message::Ack)),
        NAK => Ok((1, Message::Nak)),
        SOH => {
            let (n, c) = Command::parse(i).map_err(|error| {
                // A complete but corrupt command still has a known length, so the receiver can
                // answer NAK and skip it.
                let consumed = match &error {
                    Error::Incomplete { .. } => None,
                    _ => frame_block(i, SOH).ok().map(|f| f.3),
                };
                BlockError { consumed, error }
            })?;
            Ok((n, Message::Command(c)))
        }
        STX => {
            let (n, b) = DataBlock::parse_checked(i)?;
            Ok((n, Message::Data(b)))
        }
        b => Err(Error::invalid("message", format!("unexpected byte 0x{b:02X}")).into()),
    }
}

// ---------------------------------------------------------------------------------------------

fn ascii(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

fn check_text(field: &'static str, s: &str, max: usize, forbidden: &[u8]) -> Result<()> {
    if s.len() > max {
        return Err(Error::invalid(
            field,
            format!("{} characters, at most {max} allowed", s.len()),
        ));
    }
    if let Some(b) = s.bytes().find(|b| !(0x20..0x7F).contains(b) || forbidden.contains(b)) {
        return Err(Error::invalid(field, format!("character {:?} not allowed", b as char)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from pwitab/iec62056-21's `tests/test_data.py` (their BCCs check).
    #[test]
    fn request_vectors() {
        assert_eq!(Request::new("").encode().unwrap(), b"/?!\r\n");
        assert_eq!(Request::new("45678903").encode().unwrap(), b"/?45678903!\r\n");
        let (rest, r) = Request::parse(b"/?45678903!\r\nX").unwrap();
        assert_eq!((rest, r.address.as_str()), (&b"X"[..], "45678903"));
        assert!(matches!(Request::parse(b"/?4567"), Err(nom::Err::Incomplete(_))));
        assert!(Request::new("12!3").encode().is_err());
    }

    #[test]
    fn identification_vector_with_mode_e_sequence() {
        let (rest, id) = Identification::parse(b"/Els6\\2EK280\r\n").unwrap();
        assert!(rest.is_empty());
        assert_eq!(id.manufacturer, "Els");
        assert_eq!(id.baud_char, b'6');
        assert_eq!(id.enhanced, Some(b'2'));
        assert_eq!(id.ident, "EK280");
        assert_eq!(id.baud_rate(), Some(19200));
        assert_eq!(id.mode(), Mode::C);
        assert_eq!(id.reaction_time(), Duration::from_millis(20));
        assert_eq!(id.encode().unwrap(), b"/Els6\\2EK280\r\n");
    }

    #[test]
    fn identification_modes_and_baud_characters() {
        let id = |s: &[u8]| Identification::parse(s).unwrap().1;
        let abc = id(b"/ABC4IDENTIFICATION\r\n");
        assert_eq!(
            (abc.mode(), abc.baud_rate(), abc.ident.as_str()),
            (Mode::C, Some(4800), "IDENTIFICATION")
        );
        assert_eq!(abc.reaction_time(), Duration::from_millis(200));
        let xyz = id(b"/XYZXIDENT\r\n");
        assert_eq!((xyz.mode(), xyz.baud_rate()), (Mode::A, Some(300)));
        let def = id(b"/DEfB\\2TEST\r\n");
        assert_eq!(
            (def.mode(), def.baud_rate(), def.enhanced),
            (Mode::B, Some(1200), Some(b'2'))
        );
        let jkl = id(b"/JKlD\\@TESTER\r\n");
        assert_eq!((jkl.enhanced, jkl.ident.as_str()), (Some(b'@'), "TESTER"));
        assert_eq!(id(b"/LGZ7X\r\n").baud_rate(), None);
        assert!(matches!(
            Identification::parse(b"/LGZ4ZMD"),
            Err(nom::Err::Incomplete(_))
        ));
        assert!(matches!(
            Identification::parse(b"/L!Z4ZMD\r\n"),
            Err(nom::Err::Error(_))
        ));
    }

    #[test]
    fn option_select_vector() {
        let m = OptionSelect {
            protocol: b'0',
            baud_char: b'5',
            mode: b'1',
        };
        assert_eq!(m.encode(), b"\x06051\r\n");
        assert_eq!(OptionSelect::parse(b"\x06051\r\n").unwrap().1, m);
        assert_eq!(
            parse_message(b"\x06051\r\n", true).unwrap(),
            (6, Message::OptionSelect(m))
        );
        assert_eq!(parse_message(&[ACK, NAK], true).unwrap(), (1, Message::Ack));
        assert_eq!(parse_message(&[ACK], false).unwrap(), (1, Message::Ack));
        assert!(parse_message(&[ACK], true).is_err());
    }

    #[test]
    fn readout_and_answer_bcc_vectors() {
        let wire = b"\x023:14(314*kWh)4:15(415*kWh)\r\n!\r\n\x03\x22";
        let (n, block) = DataBlock::parse(wire).unwrap();
        assert_eq!(n, wire.len());
        assert_eq!(block.data, b"3:14(314*kWh)4:15(415*kWh)\r\n!\r\n");
        assert_eq!(DataBlock::readout(b"3:14(314*kWh)4:15(415*kWh)\r\n").encode(), wire);
        let answer = b"\x023:171.0(0)\x03\x12";
        assert_eq!(DataBlock::parse(answer).unwrap().1.data, b"3:171.0(0)");
    }

    #[test]
    fn bad_bcc_names_the_check() {
        let err = DataBlock::parse(b"\x023:171.0(0)\x03\x13").unwrap_err();
        assert_eq!(err.failed_check(), Some(Check::Bcc));
        let err = DataBlock::parse_checked(b"\x023:171.0(0)\x03\x13X").unwrap_err();
        assert_eq!(err.consumed, Some(13));
        assert_eq!(
            DataBlock::parse(b"\x023:171.0(0)\x03\x11").unwrap_err().failed_check(),
            Some(Check::Bcc)
        );
        let readout_x = b"\x023:14(314*kWh)4:15(415*kWh)\r\n!\r\n\x03x";
        assert_eq!(
            DataBlock::parse(readout_x).unwrap_err().failed_check(),
            Some(Check::Bcc)
        );
        assert_eq!(
            DataBlock::parse(b"\x023:171.0(0)"),
            Err(Error::Incomplete { needed: 2 })
        );
        assert_eq!(
            DataBlock::parse(b"\x023:171.0(0)\x03"),
            Err(Error::Incomplete { needed: 1 })
        );
    }

    #[test]
    fn command_vectors() {
        let r1 = Command::read(b'1', "1.8.0");
        let mut r1_data = Command {
            command: b'R',
            kind: b'1',
            data: Some(b"1.8.0(1)".to_vec()),
        }
        .encode();
        assert_eq!(r1_data, b"\x01R1\x021.8.0(1)\x03k");
        assert_eq!(r1.encode(), Command::parse(&r1.encode()).unwrap().1.encode());
        assert_eq!(Command::password(b'0', "1234567").encode(), b"\x01P0\x02(1234567)\x03P");
        assert_eq!(Command::sign_off().encode(), b"\x01B0\x03q");
        assert_eq!(Command::parse(b"\x01B0\x03q").unwrap(), (5, Command::sign_off()));
        *r1_data.last_mut().unwrap() = b'j';
        assert_eq!(Command::parse(&r1_data).unwrap_err().failed_check(), Some(Check::Bcc));
    }

    #[test]
    fn parity_round_trip() {
        for b in 0u8..0x80 {
            let p = add_even_parity(b);
            assert_eq!(p.count_ones() % 2, 0);
            assert_eq!(strip_even_parity(p), Some(b));
            assert_eq!(strip_even_parity(p ^ 0x80), None);
        }
        // '/' = 0x2F has five bits set, so it travels as 0xAF.
        assert_eq!(encode_7e1(b"/?!"), [0xAF, 0x3F, 0x21]);
        assert_eq!(decode_7e1(&[0xAF, 0x3F, 0x21]).unwrap(), b"/?!");
        let err = decode_7e1(&[0xAF, 0xBF]).unwrap_err();
        assert!(err.to_string().contains("byte 1"), "{err}");
    }
}
