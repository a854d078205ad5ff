//! Frames on the control socket: a 4-byte big-endian length, then that many bytes of JSON.
//!
//! The length comes first so that a reader knows, before buffering anything, whether the
//! frame is acceptable: nothing larger than [`MAX_FRAME`] is ever read, whatever a client
//! claims. [`parse`] tells an incomplete buffer (read more) from an invalid one (refuse and
//! close), so the daemon never waits on garbage.

use std::io::Read;

use bytes::{Buf as _, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// Largest frame accepted either way (a request, a reply, one chunk of a file).
pub const MAX_FRAME: usize = 1 << 20;
const HEADER: usize = 4;

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a frame of {len} bytes is larger than the limit of {MAX_FRAME} bytes")]
    TooLarge { len: u64 },
    #[error(
        "this looks like a JSON line from a meterd client older than protocol version {v}: use the meterd of the daemon's version",
        v = super::PROTOCOL_VERSION
    )]
    JsonLine,
    #[error("an empty frame")]
    Empty,
    #[error("not a valid message: {0}")]
    Invalid(String),
}

/// Why reading a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the connection closed in the middle of a frame")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One message as a frame.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0; HEADER];
    serde_json::to_writer(&mut out, msg).map_err(|e| FrameError::Invalid(e.to_string()))?;
    let len = out.len() - HEADER;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge { len: len as u64 });
    }
    out[..HEADER].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(out)
}

/// The frame at the start of `buf`: `Ok(None)` when it is not complete yet, else the message
/// and the bytes it took. An error means the peer does not speak this protocol.
pub fn parse<T: DeserializeOwned>(buf: &[u8]) -> Result<Option<(T, usize)>, FrameError> {
    // A client of the old protocol sends a JSON line; say so rather than "too large".
    if buf.first() == Some(&b'{') {
        return Err(FrameError::JsonLine);
    }
    let Some(header) = buf.get(..HEADER) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge { len: len as u64 });
    }
    if len == 0 {
        return Err(FrameError::Empty);
    }
    let Some(body) = buf.get(HEADER..HEADER + len) else {
        return Ok(None);
    };
    let msg = serde_json::from_slice(body).map_err(|e| FrameError::Invalid(e.to_string()))?;
    Ok(Some((msg, HEADER + len)))
}

/// Reads frames from an async stream (the daemon's side).
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        FrameReader {
            inner,
            buf: BytesMut::with_capacity(8 * 1024),
        }
    }

    /// The next message; `Ok(None)` when the peer closed between frames.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ReadError> {
        loop {
            if let Some((msg, used)) = parse(&self.buf)? {
                self.buf.advance(used);
                return Ok(Some(msg));
            }
            // The buffer holds at most one frame (checked above) plus one read.
            self.buf.reserve(64 * 1024);
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ReadError::Truncated)
                };
            }
        }
    }
}

/// Reads one frame from a blocking stream (the client's side); `Ok(None)` at a clean end.
pub fn read_blocking<T: DeserializeOwned>(r: &mut impl Read) -> Result<Option<T>, ReadError> {
    let mut buf = vec![0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        match r.read(&mut buf[got..])? {
            0 if got == 0 => return Ok(None),
            0 => return Err(ReadError::Truncated),
            n => got += n,
        }
        // Checked as soon as the first byte is there: a JSON line never waits for more.
        if let Err(e) = parse::<serde_json::Value>(&buf[..got]) {
            return Err(e.into());
        }
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge { len: len as u64 }.into());
    }
    buf.resize(HEADER + len, 0);
    r.read_exact(&mut buf[HEADER..]).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => ReadError::Truncated,
        _ => ReadError::Io(e),
    })?;
    match parse(&buf)? {
        Some((msg, _)) => Ok(Some(msg)),
        None => Err(ReadError::Truncated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_is_not_invalid() {
        let frame = encode(&serde_json::json!({"a": 1})).unwrap();
        for cut in 0..frame.len() {
            assert_eq!(parse::<serde_json::Value>(&frame[..cut]).unwrap(), None, "cut at {cut}");
        }
        let (v, used) = parse::<serde_json::Value>(&frame).unwrap().unwrap();
        assert_eq!((v["a"].as_i64(), used), (Some(1), frame.len()));
    }

    #[test]
    fn oversized_garbage_and_json_lines_are_invalid() {
        let big = ((MAX_FRAME + 1) as u32).to_be_bytes();
        assert_eq!(
            parse::<serde_json::Value>(&big),
            Err(FrameError::TooLarge {
                len: MAX_FRAME as u64 + 1
            })
        );
        assert_eq!(
            parse::<serde_json::Value>(b"{\"argv\":[]}\n"),
            Err(FrameError::JsonLine)
        );
        assert_eq!(parse::<serde_json::Value>(&[0, 0, 0, 0]), Err(FrameError::Empty));
        let mut bad = 3u32.to_be_bytes().to_vec();
        bad.extend_from_slice(b"x!y");
        assert!(matches!(parse::<serde_json::Value>(&bad), Err(FrameError::Invalid(_))));
    }

    #[test]
    fn blocking_reader_reads_frames_back_to_back() {
        let mut bytes = encode(&1u32).unwrap();
        bytes.extend(encode(&"two").unwrap());
        let mut r = &bytes[..];
        assert_eq!(read_blocking::<serde_json::Value>(&mut r).unwrap(), Some(1.into()));
        assert_eq!(read_blocking::<serde_json::Value>(&mut r).unwrap(), Some("two".into()));
        assert!(read_blocking::<serde_json::Value>(&mut r).unwrap().is_none());
        let mut cut = &encode(&"three").unwrap()[..6];
        assert!(matches!(
            read_blocking::<serde_json::Value>(&mut cut),
            Err(ReadError::Truncated)
        ));
    }
}
