//! Link frames: encoding, the pure parser and a resynchronising stream decoder.
//!
//! ```text
//! A5 5A | kind | seq (u32 LE) | len (u16 LE) | hcrc (CRC-8/SMBUS over kind..len) | payload | CRC-16/IBM-SDLC (LE) over kind..len + payload
//! ```
//! The header check lets a receiver refuse a corrupted length at once instead of waiting for
//! up to `MAX_PAYLOAD` bytes that will never form a frame.

use crc::{CRC_8_SMBUS, CRC_16_IBM_SDLC, Crc};
use nom::Parser;
use nom::bytes::streaming::{tag, take};
use nom::number::streaming::{le_u16, le_u32, u8 as byte};

use crate::error::{Check, Error, Result};

/// Start-of-frame marker.
pub const MARKER: [u8; 2] = [0xA5, 0x5A];
/// Bytes before the payload (marker, kind, seq, length, header check).
pub const HEADER_LEN: usize = 10;
/// Bytes a frame adds to its payload.
pub const OVERHEAD: usize = HEADER_LEN + 2;
/// Largest payload any firmware may send.
pub const MAX_PAYLOAD: usize = 1024;

const HEADER_CRC: Crc<u8> = Crc::<u8>::new(&CRC_8_SMBUS);
const FRAME_CRC: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_SDLC);

/// What a frame is for at the link level. Session messages ride in [`FrameKind::Data`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum FrameKind {
    /// Host → recorder: start a link (payload: nonce u32, window u8, max payload u16).
    Sync = 0x01,
    /// Recorder → host: link started (payload: nonce u32, firmware u8, window u8, max payload u16).
    SyncAck = 0x02,
    /// A piece of the session byte stream; `seq` is the stream offset of its first byte.
    Data = 0x03,
    /// Cumulative acknowledgement: `seq` is the next stream offset expected.
    Ack = 0x04,
    /// Negative acknowledgement: resend from stream offset `seq` (go-back-N).
    Nak = 0x05,
}

impl FrameKind {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0x01 => FrameKind::Sync,
            0x02 => FrameKind::SyncAck,
            0x03 => FrameKind::Data,
            0x04 => FrameKind::Ack,
            0x05 => FrameKind::Nak,
            _ => return None,
        })
    }
}

/// One link frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameKind,
    pub seq: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn new(kind: FrameKind, seq: u32, payload: Vec<u8>) -> Self {
        Frame { kind, seq, payload }
    }

    /// Encodes the frame. Fails only when the payload exceeds [`MAX_PAYLOAD`].
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.payload.len() + OVERHEAD);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the encoded frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        encode_parts(self.kind, self.seq, &self.payload, out)
    }
}

/// Encodes a frame from its parts without building a [`Frame`].
pub fn encode_parts(kind: FrameKind, seq: u32, payload: &[u8], out: &mut Vec<u8>) -> Result<()> {
    if payload.len() > MAX_PAYLOAD {
        return Err(Error::invalid(
            "frame length",
            format!("payload of {} bytes exceeds {MAX_PAYLOAD}", payload.len()),
        ));
    }
    let start = out.len();
    out.extend_from_slice(&MARKER);
    out.push(kind as u8);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    let hcrc = HEADER_CRC.checksum(&out[start + 2..start + 9]);
    out.push(hcrc);
    out.extend_from_slice(payload);
    let mut digest = FRAME_CRC.digest();
    digest.update(&out[start + 2..start + 9]);
    digest.update(payload);
    out.extend_from_slice(&digest.finalize().to_le_bytes());
    Ok(())
}

type NomResult<'a, T> = nom::IResult<&'a [u8], T>;

fn header(input: &[u8]) -> NomResult<'_, (u8, u32, u16, u8)> {
    let (input, _) = tag(&MARKER[..]).parse(input)?;
    let (input, kind) = byte(input)?;
    let (input, seq) = le_u32(input)?;
    let (input, len) = le_u16(input)?;
    let (input, hcrc) = byte(input)?;
    Ok((input, (kind, seq, len, hcrc)))
}

/// Parses one frame that starts at `input[0]`.
///
/// Returns the frame and the bytes it used, [`Error::Incomplete`] when more bytes are needed,
/// [`Error::Check`] (`CRC`) when a check fails, or [`Error::Invalid`] for a bad marker, kind
/// or length. After any error but `Incomplete` a stream reader drops one byte and rescans.
pub fn parse_frame(input: &[u8]) -> Result<(Frame, usize)> {
    let (rest, (kind, seq, len, hcrc)) = match header(input) {
        Ok(v) => v,
        Err(nom::Err::Incomplete(nom::Needed::Size(n))) => {
            return Err(Error::Incomplete { needed: n.get() });
        }
        Err(nom::Err::Incomplete(nom::Needed::Unknown)) => {
            return Err(Error::Incomplete {
                needed: HEADER_LEN.saturating_sub(input.len()),
            });
        }
        Err(_) => {
            return Err(Error::invalid("frame marker", "frame does not start with A5 5A"));
        }
    };
    let computed = HEADER_CRC.checksum(&input[2..9]);
    if computed != hcrc {
        return Err(Error::check(
            Check::Crc,
            format!("header CRC-8 {hcrc:02X} != computed {computed:02X}"),
        ));
    }
    let Some(kind) = FrameKind::from_byte(kind) else {
        return Err(Error::invalid("frame kind", format!("unknown kind {kind:#04x}")));
    };
    let len = usize::from(len);
    if len > MAX_PAYLOAD {
        return Err(Error::invalid("frame length", format!("{len} exceeds {MAX_PAYLOAD}")));
    }
    let body: NomResult<'_, (&[u8], u16)> = (|i| {
        let (i, payload) = take(len).parse(i)?;
        let (i, crc) = le_u16(i)?;
        Ok((i, (payload, crc)))
    })(rest);
    let (payload, crc) = match body {
        Ok((_, v)) => v,
        Err(_) => {
            return Err(Error::Incomplete {
                needed: HEADER_LEN + len + 2 - input.len(),
            });
        }
    };
    let mut digest = FRAME_CRC.digest();
    digest.update(&input[2..9]);
    digest.update(payload);
    let computed = digest.finalize();
    if computed != crc {
        return Err(Error::check(
            Check::Crc,
            format!("frame CRC-16/IBM-SDLC {crc:04X} != computed {computed:04X} (kind {kind:?}, seq {seq})"),
        ));
    }
    Ok((
        Frame {
            kind,
            seq,
            payload: payload.to_vec(),
        },
        HEADER_LEN + len + 2,
    ))
}

/// Counters a decoder keeps so a driver can log line quality.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DecoderStats {
    /// Frames decoded.
    pub frames: u64,
    /// Candidate frames refused (check failure or invalid header).
    pub rejected: u64,
    /// Bytes skipped while looking for a start marker.
    pub skipped_bytes: u64,
}

/// Buffers bytes from the line and yields frames, resynchronising after garbage.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    pos: usize,
    stats: DecoderStats,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the line.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Discards everything buffered (the link was reset).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.pos = 0;
    }

    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// The next frame: `None` when more bytes are needed, `Some(Err)` for a refused candidate
    /// (its first byte has been dropped, so calling again rescans), `Some(Ok)` for a frame.
    pub fn next_frame(&mut self) -> Option<Result<Frame>> {
        let data = &self.buf[self.pos..];
        // Skip to the next possible marker; a lone trailing A5 may be half a marker.
        let start = data.windows(2).position(|w| w == MARKER);
        let skip = match start {
            Some(i) => i,
            None => data.len() - usize::from(data.last() == Some(&MARKER[0])),
        };
        if skip > 0 {
            self.pos += skip;
            self.stats.skipped_bytes += skip as u64;
        }
        start?;
        match parse_frame(&self.buf[self.pos..]) {
            Ok((frame, used)) => {
                self.pos += used;
                self.stats.frames += 1;
                Some(Ok(frame))
            }
            Err(Error::Incomplete { .. }) => None,
            Err(e) => {
                self.pos += 1;
                self.stats.rejected += 1;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(kind: FrameKind, seq: u32, payload: &[u8]) -> Vec<u8> {
        Frame::new(kind, seq, payload.to_vec()).encode().unwrap()
    }

    #[test]
    fn known_encoding_of_an_ack() {
        // CRC-8/SMBUS of kind, seq, length and CRC-16/IBM-SDLC of the same seven bytes.
        let bytes = frame(FrameKind::Ack, 0x0102_0307, &[]);
        let header = [0x04, 0x07, 0x03, 0x02, 0x01, 0x00, 0x00];
        assert_eq!(&bytes[..2], &MARKER);
        assert_eq!(&bytes[2..9], &header);
        assert_eq!(bytes[9], HEADER_CRC.checksum(&header));
        assert_eq!(u16::from_le_bytes([bytes[10], bytes[11]]), FRAME_CRC.checksum(&header));
        assert_eq!(bytes.len(), OVERHEAD);
        assert_eq!(
            FRAME_CRC.checksum(b"123456789"),
            0x906E,
            "catalogue check value of X.25"
        );
    }

    #[test]
    fn every_prefix_is_incomplete_not_invalid() {
        let bytes = frame(FrameKind::Data, 3, b"hello reads");
        for n in 0..bytes.len() {
            match parse_frame(&bytes[..n]) {
                Err(Error::Incomplete { needed }) => assert!(needed >= 1, "prefix {n}"),
                other => panic!("prefix {n}: {other:?}"),
            }
        }
        let (f, used) = parse_frame(&bytes).unwrap();
        assert_eq!(
            (f.kind, f.seq, &f.payload[..], used),
            (FrameKind::Data, 3, &b"hello reads"[..], bytes.len())
        );
    }

    #[test]
    fn a_flipped_payload_bit_fails_the_crc() {
        let mut bytes = frame(FrameKind::Data, 3, b"0012345678");
        bytes[HEADER_LEN + 2] ^= 0x01;
        let err = parse_frame(&bytes).unwrap_err();
        assert_eq!(err.failed_check(), Some(Check::Crc), "{err}");
    }

    #[test]
    fn a_corrupted_length_is_refused_at_once() {
        let mut bytes = frame(FrameKind::Data, 3, b"abc");
        bytes[8] = 0x03; // length 0x0303: the frame would need 771 more bytes
        assert_eq!(parse_frame(&bytes).unwrap_err().failed_check(), Some(Check::Crc));
    }

    #[test]
    fn decoder_resynchronises_after_garbage_and_a_broken_frame() {
        let mut stream = b"\x00\xA5garbage\xA5".to_vec();
        let mut broken = frame(FrameKind::Data, 1, b"first");
        broken[9] ^= 0xFF;
        stream.extend_from_slice(&broken[..broken.len() - 3]); // truncated and corrupted
        stream.extend_from_slice(&frame(FrameKind::Data, 2, b"second"));
        stream.extend_from_slice(&frame(FrameKind::Ack, 9, b""));
        let mut dec = FrameDecoder::new();
        let mut got = Vec::new();
        // Feed one byte at a time: the decoder must never lose a frame split across reads.
        for b in &stream {
            dec.push(&[*b]);
            while let Some(r) = dec.next_frame() {
                if let Ok(f) = r {
                    got.push((f.kind, f.seq, f.payload));
                }
            }
        }
        assert_eq!(
            got,
            vec![(FrameKind::Data, 2, b"second".to_vec()), (FrameKind::Ack, 9, vec![])]
        );
        assert!(dec.stats().rejected >= 1);
        assert!(dec.stats().skipped_bytes >= 9);
    }

    #[test]
    fn oversized_payload_is_refused_on_encode() {
        assert!(
            Frame::new(FrameKind::Data, 0, vec![0; MAX_PAYLOAD + 1])
                .encode()
                .is_err()
        );
    }

    proptest! {
        #[test]
        fn parse_emit_reparse(kind in 1u8..=5, seq: u32, payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let kind = FrameKind::from_byte(kind).unwrap();
            let bytes = frame(kind, seq, &payload);
            let (f, used) = parse_frame(&bytes).unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(f.encode().unwrap(), bytes.clone());
            let (g, _) = parse_frame(&f.encode().unwrap()).unwrap();
            prop_assert_eq!(f, g);
        }

        #[test]
        fn decoder_never_panics_and_finds_a_frame_after_noise(noise in proptest::collection::vec(any::<u8>(), 0..200), seq: u32) {
            let mut dec = FrameDecoder::new();
            dec.push(&noise);
            dec.push(&frame(FrameKind::Data, seq, b"payload after noise"));
            let mut found = false;
            while let Some(r) = dec.next_frame() {
                if let Ok(f) = r && f.payload == b"payload after noise" && f.seq == seq {
                    found = true;
                }
            }
            // A noise prefix can swallow the frame only by forming a valid frame header whose
            // length reaches past it; then the frame is still pending, never silently lost.
            prop_assert!(found || dec.buffered() > 0);
        }
    }
}
