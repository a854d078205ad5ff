//! Finds DSMR telegrams in the byte stream of a P1 port (sans-IO).
//!
//! The listener pushes whatever the port delivered and takes [`Event`]s out: whole telegrams
//! (`/` … `!CRC` CR LF, not yet CRC-checked: that is [`super::decode`]'s job, so a failed
//! telegram can be quarantined as it came) and the bytes it had to throw away to get back in
//! step (a port opened mid-telegram, line noise, a telegram cut short by the next one), each
//! with the reason, so nothing is lost silently.

use crate::error::{Error, Result};

/// Telegrams are 1–3 KiB in practice; anything this long without an end is garbage.
pub const DEFAULT_MAX_LEN: usize = 16 * 1024;

/// What the splitter found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// One telegram from `/` through its `!` line.
    Telegram(Vec<u8>),
    /// Bytes that are not part of any telegram.
    Discarded { bytes: Vec<u8>, reason: &'static str },
}

/// Length of the complete telegram at the start of `buf` (which must start with `/`), through
/// the end of its `!` line. [`Error::Incomplete`] while it is still arriving; [`Error::Invalid`]
/// when another telegram starts (a `/`, which no object may contain) before this one ended (the field names the position of the new
/// start) or it grew past `max_len`.
pub fn frame(buf: &[u8], max_len: usize) -> Result<usize> {
    scan(buf, 1, max_len).0
}

/// [`frame`], scanning from `from`; also returns where a later scan of the same telegram with
/// more bytes may resume, so a telegram arriving in small reads is not rescanned each time.
fn scan(buf: &[u8], from: usize, max_len: usize) -> (Result<usize>, usize) {
    match buf.first() {
        None => return (Err(Error::Incomplete { needed: 1 }), 1),
        Some(b'/') => {}
        Some(_) => return (Err(Error::invalid("telegram", "does not start with '/'")), 1),
    }
    let mut i = from.max(1);
    while i < buf.len() {
        let line_start = buf[i - 1] == b'\n';
        match buf[i] {
            b'!' if line_start => return (end_line(buf, i), i),
            // `/` may not appear inside a telegram, so it always starts the next one, even
            // when the line before it was cut off.
            b'/' => {
                return (
                    Err(Error::invalid(
                        "telegram",
                        format!("cut short: new telegram at byte {i}"),
                    )),
                    i,
                );
            }
            _ => {}
        }
        if i >= max_len {
            return (
                Err(Error::invalid("telegram", format!("no end within {max_len} bytes"))),
                i,
            );
        }
        i += 1;
    }
    (Err(Error::Incomplete { needed: 1 }), i)
}

/// The `!` line: `!` [4 hex digits] CR LF. A malformed end line still ends the telegram (the
/// decoder then says what is wrong with it).
fn end_line(buf: &[u8], bang: usize) -> Result<usize> {
    let after = &buf[bang + 1..];
    let hex = after.iter().take(4).take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = &after[hex..];
    if hex == after.len() && hex < 4 {
        return Err(Error::Incomplete { needed: 4 - hex });
    }
    match rest {
        [b'\r', b'\n', ..] => Ok(bang + 1 + hex + 2),
        [b'\n', ..] => Ok(bang + 1 + hex + 1),
        [b'\r'] | [] => Err(Error::Incomplete { needed: 1 }),
        _ => Ok(bang + 1 + hex),
    }
}

/// Splits a P1 byte stream into telegrams.
#[derive(Debug, Clone)]
pub struct Splitter {
    buf: Vec<u8>,
    max_len: usize,
    /// Where scanning the telegram at the start of `buf` resumes.
    resume: usize,
}

impl Default for Splitter {
    fn default() -> Self {
        Splitter::new(DEFAULT_MAX_LEN)
    }
}

impl Splitter {
    pub fn new(max_len: usize) -> Self {
        Splitter {
            buf: Vec::new(),
            max_len,
            resume: 1,
        }
    }

    /// Adds bytes received from the port. 7E1 ports (DSMR 2.2/3) may deliver the parity bit
    /// when read as 8N1; it is dropped here, the telegram is ASCII.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend(bytes.iter().map(|b| b & 0x7F));
    }

    /// Bytes held that are not yet a telegram.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next telegram or discarded run, or `None` until more bytes arrive.
    pub fn next_event(&mut self) -> Option<Event> {
        if self.buf.is_empty() {
            return None;
        }
        let Some(start) = self.buf.iter().position(|&b| b == b'/') else {
            return Some(self.discard(self.buf.len(), "no telegram start ('/')"));
        };
        if start > 0 {
            return Some(self.discard(start, "bytes before a telegram start"));
        }
        let (result, resume) = scan(&self.buf, self.resume, self.max_len);
        match result {
            Ok(len) => {
                self.resume = 1;
                Some(Event::Telegram(self.buf.drain(..len).collect()))
            }
            Err(Error::Incomplete { .. }) => {
                self.resume = resume;
                None
            }
            Err(_) => {
                // Resynchronise on the next '/' after this one.
                let next = self.buf[1..]
                    .iter()
                    .position(|&b| b == b'/')
                    .map_or(self.buf.len(), |p| p + 1);
                let reason = if next < self.buf.len() {
                    "telegram cut short by the next one"
                } else {
                    "telegram too long"
                };
                Some(self.discard(next, reason))
            }
        }
    }

    /// Drops the partial telegram held (the port was closed or went silent).
    pub fn flush(&mut self) -> Option<Event> {
        (!self.buf.is_empty()).then(|| self.discard(self.buf.len(), "incomplete telegram at end of stream"))
    }

    fn discard(&mut self, n: usize, reason: &'static str) -> Event {
        self.resume = 1;
        Event::Discarded {
            bytes: self.buf.drain(..n).collect(),
            reason,
        }
    }
}
