//! Cuts a byte stream into frames as the bytes arrive, sans IO: push what was read, take every
//! frame that is complete, push again. `meterd decode` runs on it as a live filter (each frame
//! is decoded as soon as its last byte arrives, in memory that does not grow with the input),
//! and [`crate::decode::decode_input`] runs on it for a whole input, so both cut alike.
//!
//! Three framings, chosen from the first bytes that are not white space (or by the caller):
//! - **lines**: one hex frame, rtlamr/rtl_433 JSON line or gateway envelope per line;
//! - **telegrams**: IEC 62056-21 readouts and DSMR P1 telegrams, which start with `/` and end
//!   with ETX and its BCC (IEC) or the `!` line with its CRC (DSMR); a new `/` line also ends
//!   the one before, and the input's end ends the last;
//! - **binary**: raw frames whose length field says where they end: wired M-Bus (EN 13757-2:
//!   `68 L L 68 … CS 16`, short frames, ACK) and wireless M-Bus (EN 13757-4: the L field, with
//!   or without the format A CRC blocks). Bytes that start no plausible frame are skipped,
//!   counted and reported, up to the next plausible start.

use crate::decode::Protocol;
use crate::error::Error;
use crate::{mbus, wmbus};

/// The longest line taken in line framing (a wM-Bus telegram is at most 255 bytes, 510 hex
/// digits; a JSON line a few hundred bytes). A longer line is refused and skipped.
pub const MAX_LINE: usize = 64 * 1024;
/// The longest text telegram taken (a DSMR telegram is a few kilobytes; a large IEC readout
/// tens). A longer one is refused, and cutting resumes at the next `/` line.
pub const MAX_TELEGRAM: usize = 256 * 1024;
/// How far ahead the framing of an input is looked for before it is taken as binary.
const DECIDE_WITHIN: usize = 1024;

/// How an input is cut into frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One frame per line.
    Lines,
    /// IEC 62056-21 and DSMR text telegrams.
    Telegrams,
    /// Raw M-Bus and wireless M-Bus frames, cut by their length fields.
    Binary,
}

/// Where a piece starts in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line number (text framings; in binary framing the count of LF bytes before it,
    /// plus one).
    pub line: usize,
    /// 0-based byte offset.
    pub offset: u64,
}

/// What the framer took from the input.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// One frame's bytes (a line without its line end; a whole telegram; a binary frame),
    /// with the framing that cut it.
    Frame(Position, Framing, &'a [u8]),
    /// A frame refused before decoding: a line or telegram over its limit.
    Refused(Position, Error),
    /// Bytes that start no frame (binary garbage, text before the first telegram).
    Skipped(Position, u64),
    /// Wired M-Bus ACKs and requests: frames, but without data to decode.
    Control(Position),
}

/// The state of one input being cut.
#[derive(Debug)]
pub struct Framer {
    protocol: Option<Protocol>,
    framing: Option<Framing>,
    buf: Vec<u8>,
    /// Bytes of `buf` already taken.
    start: usize,
    /// Bytes of `buf` already scanned for the current piece (from `start`).
    scanned: usize,
    /// Offset in the input of `buf[0]`.
    base: u64,
    /// Line number at `buf[start]`.
    line: usize,
    /// The input has ended.
    ended: bool,
    /// Skipping the rest of a line or telegram that was too long.
    discarding: bool,
    /// Skipped bytes not yet reported: where they started and how many.
    skipped: Option<(Position, u64)>,
    /// Telegram framing: the current telegram's scan state.
    telegram: TelegramScan,
    /// Telegram framing: inside a telegram (else between two, looking for a start).
    in_telegram: bool,
    /// Text framing found no telegram start yet (a forced text protocol on input without one
    /// gets the whole input as one frame, so its decoder names what is wrong).
    telegram_seen: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct TelegramScan {
    at_line_start: bool,
    has_stx: bool,
    bang_line: bool,
    after_etx: bool,
    /// The telegram opened with a sign-on request whose identification has not come.
    request_open: bool,
    /// The byte before was a `/` starting a line (a `?` now makes it a sign-on request).
    after_slash: bool,
}

impl Framer {
    /// A framer for input of `protocol` (detected per frame when `None`); `framing` forces
    /// how the input is cut, else it is chosen from its first bytes.
    pub fn new(protocol: Option<Protocol>, framing: Option<Framing>) -> Self {
        let framing = framing.or_else(|| match protocol {
            Some(p) if p.is_text() => Some(Framing::Telegrams),
            _ => None,
        });
        Framer {
            protocol,
            framing,
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            base: 0,
            line: 1,
            ended: false,
            discarding: false,
            skipped: None,
            telegram: TelegramScan {
                at_line_start: true,
                ..TelegramScan::default()
            },
            in_telegram: false,
            telegram_seen: false,
        }
    }

    /// The framing in use, once known.
    pub fn framing(&self) -> Option<Framing> {
        self.framing
    }

    /// Adds bytes read from the input.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && (self.start >= self.buf.len() / 2 || self.buf.len() + bytes.len() > self.buf.capacity()) {
            self.buf.drain(..self.start);
            self.base += self.start as u64;
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Says the input has ended: what is left becomes the last piece.
    pub fn finish(&mut self) {
        self.ended = true;
    }

    /// Bytes held for a frame not yet complete (bounded by the limits above).
    pub fn held(&self) -> usize {
        self.buf.len() - self.start
    }

    fn position(&self) -> Position {
        Position {
            line: self.line,
            offset: self.base + self.start as u64,
        }
    }

    /// Takes `n` bytes as consumed, counting their lines.
    fn advance(&mut self, n: usize) {
        self.line += self.buf[self.start..self.start + n]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.start += n;
        self.scanned = 0;
    }

    fn skip(&mut self, n: usize) {
        let at = self.position();
        match &mut self.skipped {
            Some((_, count)) => *count += n as u64,
            None => self.skipped = Some((at, n as u64)),
        }
        self.advance(n);
    }

    /// Reported skipped bytes, if a run of them just ended.
    fn take_skipped(&mut self) -> Option<Piece<'static>> {
        self.skipped.take().map(|(at, n)| Piece::Skipped(at, n))
    }

    /// The next complete piece, or `None` until more is pushed (or, after [`Self::finish`],
    /// when the input is used up).
    pub fn next_piece(&mut self) -> Option<Piece<'_>> {
        if self.framing.is_none() {
            self.framing = Some(self.decide()?);
        }
        match self.framing? {
            Framing::Lines => self.next_line(),
            Framing::Telegrams => self.next_telegram(),
            Framing::Binary => self.next_binary(),
        }
    }

    /// Lines when the first line is printable text (hex, JSON, a comment), telegrams when it
    /// starts with `/` (bit 7 ignored: a 7E1 capture taken at 8N1), else binary.
    fn decide(&mut self) -> Option<Framing> {
        let rest = &self.buf[self.start..];
        let Some(first) = rest.iter().position(|&b| !(b & 0x7F).is_ascii_whitespace() && b != 0) else {
            if self.ended && !rest.is_empty() {
                return Some(Framing::Lines);
            }
            return None;
        };
        if rest[first] & 0x7F == b'/' {
            return Some(Framing::Telegrams);
        }
        let line_end = rest[first..].iter().position(|&b| b == b'\n');
        let decided = line_end.is_some() || rest.len() - first >= DECIDE_WITHIN || self.ended;
        if !decided {
            return None;
        }
        let head = &rest[first..first + line_end.unwrap_or(rest.len() - first).min(DECIDE_WITHIN)];
        // Text: UTF-8 (a gateway's name may not be ASCII) without control bytes but tab and CR.
        // A cut at the look-ahead limit may split a character: up to 3 bytes are let go.
        let valid = match std::str::from_utf8(head) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
        };
        let text = valid && head.iter().all(|&b| b == b'\t' || b == b'\r' || b >= 0x20 && b != 0x7F);
        let forced_binary = matches!(self.protocol, Some(Protocol::Mbus)) && rest[first] == 0x68;
        Some(if text && !forced_binary {
            Framing::Lines
        } else {
            Framing::Binary
        })
    }

    fn next_line(&mut self) -> Option<Piece<'_>> {
        loop {
            let rest = &self.buf[self.start..];
            if rest.is_empty() {
                return None;
            }
            let end = rest[self.scanned..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| self.scanned + i);
            let Some(end) = end else {
                if self.ended {
                    // The last line has no line end.
                    let n = rest.len();
                    if self.discarding {
                        self.discarding = false;
                        self.advance(n);
                        continue;
                    }
                    return Some(self.take(Framing::Lines, n, n));
                }
                if rest.len() > MAX_LINE && !self.discarding {
                    let at = self.position();
                    self.discarding = true;
                    let n = rest.len();
                    self.advance(n);
                    return Some(Piece::Refused(
                        at,
                        Error::invalid("line", format!("longer than {MAX_LINE} bytes")),
                    ));
                }
                if self.discarding {
                    let n = rest.len();
                    self.advance(n);
                    return None;
                }
                self.scanned = rest.len();
                return None;
            };
            if self.discarding {
                self.discarding = false;
                self.advance(end + 1);
                continue;
            }
            if end > MAX_LINE {
                let at = self.position();
                self.advance(end + 1);
                return Some(Piece::Refused(
                    at,
                    Error::invalid("line", format!("longer than {MAX_LINE} bytes")),
                ));
            }
            return Some(self.take(Framing::Lines, end, end + 1));
        }
    }

    /// The frame of `len` bytes at `start` cut by `framing`, consuming `used` bytes (a line's
    /// line end is consumed, not part of the frame).
    fn take(&mut self, framing: Framing, len: usize, used: usize) -> Piece<'_> {
        let at = self.position();
        let from = self.start;
        self.advance(used);
        Piece::Frame(at, framing, &self.buf[from..from + len])
    }

    fn next_telegram(&mut self) -> Option<Piece<'_>> {
        let rest_len = self.buf.len() - self.start;
        if !self.in_telegram {
            // Between telegrams: look for the next `/` at a line start, from where the last
            // look stopped (`telegram.at_line_start` is the state there).
            let mut at_line_start = self.telegram.at_line_start;
            let mut found = None;
            for (k, &raw) in self.buf[self.start + self.scanned..].iter().enumerate() {
                let i = self.scanned + k;
                let b = raw & 0x7F;
                if at_line_start && b == b'/' {
                    found = Some(i);
                    break;
                }
                at_line_start = b == b'\n' || (at_line_start && b == 0);
            }
            match found {
                Some(i) => {
                    let junk = self.buf[self.start..self.start + i]
                        .iter()
                        .any(|&b| !(b & 0x7F).is_ascii_whitespace() && b != 0);
                    if junk {
                        self.skip(i);
                    } else {
                        self.advance(i);
                    }
                    // The `/` now at `start` begins a line.
                    self.telegram.at_line_start = true;
                    if let Some(p) = self.take_skipped() {
                        return Some(p);
                    }
                    self.telegram_seen = true;
                    self.in_telegram = true;
                    self.telegram = TelegramScan {
                        at_line_start: true,
                        ..TelegramScan::default()
                    };
                    self.scanned = 0;
                    return self.scan_telegram();
                }
                None => {
                    self.telegram.at_line_start = at_line_start;
                    self.scanned = rest_len;
                    if self.ended {
                        if rest_len == 0 {
                            return self.take_skipped();
                        }
                        if !self.telegram_seen && self.skipped.is_none() {
                            // No telegram at all: the whole input is one frame, so the
                            // decoder names what is wrong with it.
                            let all = self.buf[self.start..]
                                .iter()
                                .position(|&b| !(b & 0x7F).is_ascii_whitespace())
                                .unwrap_or(0);
                            self.advance(all);
                            self.telegram_seen = true;
                            let n = self.buf.len() - self.start;
                            return Some(self.take(Framing::Telegrams, n, n));
                        }
                        let junk = self.buf[self.start..]
                            .iter()
                            .any(|&b| !(b & 0x7F).is_ascii_whitespace() && b != 0);
                        if junk {
                            self.skip(rest_len);
                        } else {
                            self.advance(rest_len);
                        }
                        return self.take_skipped();
                    }
                    if rest_len > MAX_TELEGRAM {
                        // Keep the memory bound while waiting for a start.
                        self.skip(rest_len);
                        self.telegram.at_line_start = at_line_start;
                    }
                    return None;
                }
            }
        }
        self.scan_telegram()
    }

    /// Scans the telegram at `start` for its end; `scanned` bytes of it were scanned already.
    fn scan_telegram(&mut self) -> Option<Piece<'_>> {
        let rest = &self.buf[self.start..];
        let mut s = self.telegram;
        let mut end = None;
        let mut i = self.scanned;
        while i < rest.len() {
            let raw = rest[i];
            let b = raw & 0x7F;
            if s.after_etx {
                // The BCC, whatever its value.
                end = Some(i + 1);
                break;
            }
            if s.at_line_start && b == b'/' {
                if i == 0 || s.request_open {
                    // The telegram's start, or the identification a sign-on request asked
                    // for (same exchange); a `?` next makes it a request again.
                    s.request_open = false;
                    s.after_slash = true;
                } else {
                    // A new telegram starts: this one ended without its end mark.
                    end = Some(i);
                    break;
                }
            } else if s.after_slash {
                s.request_open = b == b'?';
                s.after_slash = false;
            }
            if b == 0x02 {
                s.has_stx = true;
            }
            if b == 0x03 && s.has_stx {
                s.after_etx = true;
            }
            if s.at_line_start && b == b'!' {
                s.bang_line = true;
            }
            if b == b'\n' && s.bang_line && !s.has_stx {
                end = Some(i + 1);
                break;
            }
            s.at_line_start = b == b'\n' || (s.at_line_start && b == 0);
            i += 1;
            if i > MAX_TELEGRAM {
                break;
            }
        }
        let end = match end {
            Some(e) => e,
            None if i > MAX_TELEGRAM => {
                let at = self.position();
                self.advance(i);
                self.in_telegram = false;
                // Resume between telegrams: the next `/` line starts the next one.
                self.telegram = TelegramScan {
                    at_line_start: rest_ends_line(&self.buf[..self.start]),
                    ..TelegramScan::default()
                };
                return Some(Piece::Refused(
                    at,
                    Error::invalid("telegram", format!("longer than {MAX_TELEGRAM} bytes without its end")),
                ));
            }
            None if self.ended && !rest.is_empty() => rest.len(),
            None => {
                self.telegram = s;
                self.scanned = rest.len();
                return None;
            }
        };
        self.in_telegram = false;
        // After an end mark the next `/` starts a telegram even without a line end before it
        // (a probe's next sign-on right after a BCC).
        self.telegram = TelegramScan {
            at_line_start: true,
            ..TelegramScan::default()
        };
        Some(self.take(Framing::Telegrams, end, end))
    }

    fn next_binary(&mut self) -> Option<Piece<'_>> {
        loop {
            let rest = &self.buf[self.start..];
            if rest.is_empty() {
                return if self.ended { self.take_skipped() } else { None };
            }
            match self.binary_frame(rest) {
                // The skipped bytes before a frame are reported first.
                Cut::Frame(_) | Cut::Control(_) if self.skipped.is_some() => return self.take_skipped(),
                Cut::Frame(n) => return Some(self.take(Framing::Binary, n, n)),
                Cut::Control(n) => {
                    let at = self.position();
                    self.advance(n);
                    return Some(Piece::Control(at));
                }
                Cut::Wait if !self.ended => return None,
                Cut::Wait | Cut::Skip => self.skip(1),
            }
        }
    }

    /// What starts at the front of `rest` in binary framing.
    fn binary_frame(&self, rest: &[u8]) -> Cut {
        let wired = !matches!(self.protocol, Some(Protocol::Wmbus));
        let wireless = !matches!(self.protocol, Some(Protocol::Mbus));
        if wired && matches!(rest[0], mbus::frame::ACK | 0x10 | 0x68) {
            match mbus::frame::parse(rest) {
                Ok((mbus::frame::Frame::Long { .. }, n)) => return Cut::Frame(n),
                Ok((_, n)) => return Cut::Control(n),
                Err(Error::Incomplete { .. }) => return Cut::Wait,
                Err(_) => {}
            }
        }
        if wireless {
            return wireless_frame(rest);
        }
        Cut::Skip
    }
}

/// What a binary frame start gives.
enum Cut {
    Frame(usize),
    Control(usize),
    Wait,
    Skip,
}

/// A wireless M-Bus frame at the front of `rest`: its L field and a C field a meter sends
/// (SND-NR 0x44, SND-IR 0x46, ACC-NR 0x47, ACC-DMD 0x48, RSP-UD 0x08, ACK 0x00, …), and the
/// format A first-block CRC deciding between the format A length and L + 1.
fn wireless_frame(rest: &[u8]) -> Cut {
    let l = rest[0];
    if l < 10 {
        return Cut::Skip;
    }
    let Some(&c) = rest.get(1) else { return Cut::Wait };
    if !matches!(c & 0x4F, 0x44 | 0x46 | 0x47 | 0x48 | 0x08 | 0x06 | 0x00) {
        return Cut::Skip;
    }
    if rest.len() < 12 {
        return Cut::Wait;
    }
    let block1 = wmbus::dll::CRC.checksum(&rest[..10]);
    let n = if u16::from_be_bytes([rest[10], rest[11]]) == block1 {
        match wmbus::dll::format_a_len(l) {
            Some(n) => n,
            None => return Cut::Skip,
        }
    } else {
        usize::from(l) + 1
    };
    if rest.len() < n { Cut::Wait } else { Cut::Frame(n) }
}

fn rest_ends_line(bytes: &[u8]) -> bool {
    bytes.last().is_none_or(|&b| b & 0x7F == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every piece of `input` pushed in chunks of `chunk` bytes, as owned values.
    fn cut(input: &[u8], protocol: Option<Protocol>, chunk: usize) -> Vec<(usize, u64, String)> {
        let mut f = Framer::new(protocol, None);
        let mut out = Vec::new();
        let mut take = |f: &mut Framer| {
            while let Some(p) = f.next_piece() {
                out.push(match p {
                    Piece::Frame(at, _, b) => (at.line, at.offset, String::from_utf8_lossy(b).into_owned()),
                    Piece::Refused(at, e) => (at.line, at.offset, format!("refused: {e}")),
                    Piece::Skipped(at, n) => (at.line, at.offset, format!("skipped {n}")),
                    Piece::Control(at) => (at.line, at.offset, "control".into()),
                });
            }
        };
        for c in input.chunks(chunk.max(1)) {
            f.push(c);
            take(&mut f);
        }
        f.finish();
        take(&mut f);
        out
    }

    #[test]
    fn lines_come_out_as_they_complete_whatever_the_chunks() {
        let input = b"# c\n0102\r\n\n{\"a\":1}\nlast";
        for chunk in [1, 2, 3, 7, 100] {
            let got = cut(input, None, chunk);
            let frames: Vec<_> = got.iter().map(|(l, o, t)| (*l, *o, t.as_str())).collect();
            assert_eq!(
                frames,
                [
                    (1, 0, "# c"),
                    (2, 4, "0102\r"),
                    (3, 10, ""),
                    (4, 11, "{\"a\":1}"),
                    (5, 19, "last")
                ],
                "chunk {chunk}"
            );
        }
        // A line is out before the next one starts.
        let mut f = Framer::new(None, None);
        f.push(b"0102\n01");
        assert!(matches!(f.next_piece(), Some(Piece::Frame(_, _, b"0102"))));
        assert!(f.next_piece().is_none());
    }

    #[test]
    fn an_overlong_line_is_refused_and_the_next_one_read() {
        let mut input = vec![b'A'; MAX_LINE + 10];
        input.extend_from_slice(b"\n0102\n");
        for chunk in [1000, 70_000] {
            let got = cut(&input, None, chunk);
            assert_eq!(
                got.len(),
                2,
                "{chunk}: {:?}",
                got.iter().map(|g| &g.2[..20.min(g.2.len())]).collect::<Vec<_>>()
            );
            assert!(got[0].2.starts_with("refused"), "{}", got[0].2);
            assert_eq!((got[1].0, got[1].2.as_str()), (2, "0102"));
        }
    }

    #[test]
    fn telegrams_end_at_their_end_mark_not_at_the_next_start() {
        let dsmr = b"/XMX5\r\n\r\n1-0:1.8.1(1*kWh)\r\n!ABCD\r\n";
        let mut f = Framer::new(None, None);
        f.push(dsmr);
        assert!(matches!(f.next_piece(), Some(Piece::Frame(at, _, b)) if at.line == 1 && b == dsmr));
        // IEC: ETX and its BCC end it.
        let iec = b"/ISk5MT174\r\n\x020.0.0(1)\r\n!\r\n\x03\x41";
        let mut f = Framer::new(None, None);
        f.push(iec);
        assert!(matches!(f.next_piece(), Some(Piece::Frame(_, _, b)) if b == iec));
        f.push(b"\r\n/ISk5");
        assert!(f.next_piece().is_none());
    }

    #[test]
    fn telegrams_split_like_the_whole_input_splitter() {
        let input = b"/?!\r\n/ISk5MT174\r\n\x021(2)\r\n!\r\n\x03x\r\n/?!\r\n/?!\r\n/LGZ4E350\r\n\x02!\r\n\x03x";
        for chunk in [1, 5, 1000] {
            let got = cut(input, None, chunk);
            assert_eq!(got.len(), 2, "{got:?}");
            assert!(got[0].2.starts_with("/?!\r\n/ISk5"));
            assert_eq!(got[1].0, 6);
            assert!(got[1].2.starts_with("/?!\r\n/?!\r\n/LGZ4"), "{got:?}");
        }
        // Without end marks every `/` line starts a telegram; the input's end ends the last.
        let got = cut(b"/A\r\n/B\r\n/C\r\n", None, 3);
        assert_eq!(
            got.iter().map(|g| g.2.as_str()).collect::<Vec<_>>(),
            ["/A\r\n", "/B\r\n", "/C\r\n"]
        );
        // Junk before a telegram is reported, not silently dropped.
        let got = cut(b"/A\r\n!\r\nnoise\r\n/B\r\n!\r\n", None, 4);
        assert_eq!(got[1], (3, 7, "skipped 7".into()), "{got:?}");
        assert_eq!(got[2].0, 4);
    }

    #[test]
    fn binary_frames_are_cut_by_their_length_and_garbage_is_skipped() {
        // A wired M-Bus long frame, an ACK, garbage, a short wM-Bus telegram without CRCs.
        let mut long = vec![0x68, 0x05, 0x05, 0x68, 0x08, 0x01, 0x72, 0xAA, 0xBB];
        let cs = mbus::frame::checksum(&long[4..9]);
        long.extend_from_slice(&[cs, 0x16]);
        let wm = crate::hexline::parse("0D 44 2D 2C 78 56 34 12 01 07 78 01 13 80").unwrap();
        let mut input = long.clone();
        input.push(0xE5);
        input.extend_from_slice(&[0xFF, 0x01, 0x02]);
        input.extend_from_slice(&wm);
        for chunk in [1, 3, 100] {
            let mut f = Framer::new(None, None);
            let mut got = Vec::new();
            for c in input.chunks(chunk) {
                f.push(c);
                while let Some(p) = f.next_piece() {
                    got.push(format!("{p:?}"));
                }
            }
            f.finish();
            while let Some(p) = f.next_piece() {
                got.push(format!("{p:?}"));
            }
            assert_eq!(f.framing(), Some(Framing::Binary));
            assert_eq!(got.len(), 4, "chunk {chunk}: {got:#?}");
            assert!(
                got[0].starts_with("Frame(Position { line: 1, offset: 0 }, Binary"),
                "{}",
                got[0]
            );
            assert!(
                got[1].starts_with("Control(Position { line: 1, offset: 11 }"),
                "{}",
                got[1]
            );
            assert!(
                got[2].starts_with("Skipped(Position { line: 1, offset: 12 }, 3)"),
                "{}",
                got[2]
            );
            assert!(
                got[3].starts_with("Frame(Position { line: 1, offset: 15 }, Binary"),
                "{}",
                got[3]
            );
        }
    }

    #[test]
    fn held_bytes_stay_bounded_on_endless_input() {
        for input in [&b"A"[..], b"/", b"\xFF"] {
            let mut f = Framer::new(None, None);
            let chunk = input.repeat(4096);
            for _ in 0..200 {
                f.push(&chunk);
                while f.next_piece().is_some() {}
                assert!(f.held() <= MAX_TELEGRAM + 2 * chunk.len(), "{input:?}: {}", f.held());
            }
        }
    }

    proptest::proptest! {
        /// The pieces do not depend on how the input arrives: bytes from the frame marks of
        /// every framing, pushed whole or a few at a time.
        #[test]
        fn pieces_do_not_depend_on_chunking(
            data in proptest::collection::vec(
                proptest::sample::select(vec![b'/', b'!', b'?', b'\n', b'\r', 2u8, 3, 0x68, 0x16, 0xE5, 0x10, 0x44, b'A', b'0', b'{', 0, 0xFF, 0x1F]),
                0..400,
            ),
            step in 1usize..17,
        ) {
            let whole = cut(&data, None, data.len().max(1));
            proptest::prop_assert_eq!(&whole, &cut(&data, None, step));
            proptest::prop_assert_eq!(&cut(&data, Some(Protocol::Dsmr), data.len().max(1)), &cut(&data, Some(Protocol::Dsmr), step));
        }
    }
}
