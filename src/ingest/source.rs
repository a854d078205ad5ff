//! The file an import reads, read as a stream, from its start, as often as the import needs
//! (a first pass checks it whole, a second stores it): a client's upload the daemon spooled to a
//! private temporary file, a local file, or bytes in memory (tests, fuzzing). Nothing here holds
//! the file: memory is one buffer and at most one line.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read, Seek, SeekFrom};

/// Bytes read from a file at a time.
pub const READ_BUFFER: usize = 256 * 1024;

/// A file an import reads, from its start at each [`Source::open`].
pub trait Source {
    /// A reader positioned at the file's first byte. One reader at a time.
    fn open(&self) -> std::io::Result<Box<dyn BufRead + '_>>;
}

impl Source for &[u8] {
    fn open(&self) -> std::io::Result<Box<dyn BufRead + '_>> {
        Ok(Box::new(*self))
    }
}

impl Source for File {
    fn open(&self) -> std::io::Result<Box<dyn BufRead + '_>> {
        let mut f = self;
        f.seek(SeekFrom::Start(0))?;
        Ok(Box::new(BufReader::with_capacity(READ_BUFFER, f)))
    }
}

/// The next line of `r` (without its `\n` or `\r\n`) into `buf`, at most `max + 1` bytes of it
/// kept (so a caller tells a line over `max` from one at it); returns the line's whole length, or
/// `None` at the end. A longer line is skipped to its end without being held.
pub fn next_line(r: &mut dyn BufRead, buf: &mut Vec<u8>, max: usize) -> std::io::Result<Option<u64>> {
    buf.clear();
    let mut total: u64 = 0;
    let mut any = false;
    let mut last = None;
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            break;
        }
        any = true;
        let newline = avail.iter().position(|b| *b == b'\n');
        let part = &avail[..newline.unwrap_or(avail.len())];
        let room = (max + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&part[..part.len().min(room)]);
        total += part.len() as u64;
        if let Some(b) = part.last() {
            last = Some(*b);
        }
        let used = newline.map_or(avail.len(), |i| i + 1);
        r.consume(used);
        if newline.is_some() {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if last == Some(b'\r') {
        if buf.len() as u64 == total {
            buf.pop();
        }
        total -= 1;
    }
    Ok(Some(total))
}

/// Where the first byte that is not UTF-8 is: its value, its line (1-based), its byte in the line
/// and in the file (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadUtf8 {
    pub byte: u8,
    pub line: u64,
    pub column: u64,
    pub offset: u64,
}

/// The first `n` bytes of the source (fewer when it is shorter).
pub fn head(src: &dyn Source, n: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    src.open()?.take(n as u64).read_to_end(&mut out)?;
    Ok(out)
}

/// Checks that the whole source is UTF-8, in one streaming pass; the first bad byte's place.
pub fn find_bad_utf8(src: &dyn Source) -> std::io::Result<Option<BadUtf8>> {
    let mut r = src.open()?;
    // Bytes of a character cut by the end of a read, carried to the next.
    let mut carry: Vec<u8> = Vec::with_capacity(4);
    let mut data: Vec<u8> = Vec::with_capacity(READ_BUFFER + 4);
    // File offset of data[0]; newlines before it; offset just after the last newline.
    let mut offset: u64 = 0;
    let mut lines: u64 = 0;
    let mut line_start: u64 = 0;
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let end = avail.is_empty();
        data.clear();
        data.extend_from_slice(&carry);
        data.extend_from_slice(avail);
        let n = avail.len();
        r.consume(n);
        carry.clear();
        let (valid, bad) = match std::str::from_utf8(&data) {
            Ok(_) => (data.len(), None),
            // Cut at the end of this read: the rest comes with the next one.
            Err(e) if e.error_len().is_none() && !end => {
                carry.extend_from_slice(&data[e.valid_up_to()..]);
                (e.valid_up_to(), None)
            }
            Err(e) => (e.valid_up_to(), Some(e.valid_up_to())),
        };
        for (i, b) in data[..valid].iter().enumerate() {
            if *b == b'\n' {
                lines += 1;
                line_start = offset + i as u64 + 1;
            }
        }
        if let Some(at) = bad {
            let at_file = offset + at as u64;
            return Ok(Some(BadUtf8 {
                byte: data[at],
                line: lines + 1,
                column: at_file - line_start + 1,
                offset: at_file + 1,
            }));
        }
        if end {
            return Ok(None);
        }
        offset += valid as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out `n` bytes per read, to cut characters and lines anywhere.
    struct Trickle<'a>(&'a [u8], usize);

    impl Source for Trickle<'_> {
        fn open(&self) -> std::io::Result<Box<dyn BufRead + '_>> {
            Ok(Box::new(BufReader::with_capacity(self.1, self.0)))
        }
    }

    #[test]
    fn bad_bytes_are_placed_across_read_boundaries() {
        let text = "ab\ncdé\nfg\u{20ac}h\n".as_bytes();
        for n in 1..8 {
            assert_eq!(find_bad_utf8(&Trickle(text, n)).unwrap(), None, "reads of {n}");
        }
        let mut bad = text.to_vec();
        bad.insert(9, 0xE9); // after "ab\ncdé\nf" (é is two bytes)
        for n in 1..8 {
            let b = find_bad_utf8(&Trickle(&bad, n)).unwrap().unwrap();
            assert_eq!(
                b,
                BadUtf8 {
                    byte: 0xE9,
                    line: 3,
                    column: 2,
                    offset: 10
                },
                "reads of {n}"
            );
        }
        // A character cut by the end of the file.
        let cut = &text[..text.len() - 3];
        let b = find_bad_utf8(&Trickle(cut, 3)).unwrap().unwrap();
        assert_eq!((b.line, b.byte), (3, 0xE2));
    }

    #[test]
    fn long_lines_are_skipped_not_held() {
        let text = [b"short\r\n".as_slice(), &[b'x'; 10_000], b"\r\nlast"].concat();
        let mut r: &[u8] = &text;
        let mut buf = Vec::new();
        assert_eq!(next_line(&mut r, &mut buf, 100).unwrap(), Some(5));
        assert_eq!(buf, b"short");
        assert_eq!(next_line(&mut r, &mut buf, 100).unwrap(), Some(10_000));
        assert_eq!(buf.len(), 101);
        assert_eq!(next_line(&mut r, &mut buf, 100).unwrap(), Some(4));
        assert_eq!(buf, b"last");
        assert_eq!(next_line(&mut r, &mut buf, 100).unwrap(), None);
    }
}
