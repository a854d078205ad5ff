//! EN 13757-2 link-layer frames: single character `E5`, short `10 C A CS 16`, control
//! `68 03 03 68 C A CI CS 16` and long `68 L L 68 C A CI data CS 16`.
//!
//! [`parse`] works on a growing buffer: it answers [`Error::Incomplete`] while the frame is not
//! all there, and a hard error once the bytes cannot be a frame, so a serial reader knows
//! whether to wait or to resynchronise.

use crate::error::{Check, Error, Result};

/// Single-character acknowledgement.
pub const ACK: u8 = 0xE5;
const SHORT_START: u8 = 0x10;
const LONG_START: u8 = 0x68;
const STOP: u8 = 0x16;
/// Longest user data (C, A, CI excluded) a long frame can carry.
pub const MAX_DATA: usize = 252;

/// One link-layer frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// `E5`.
    Ack,
    /// `10 C A CS 16`.
    Short { c: u8, a: u8 },
    /// `68 03 03 68 C A CI CS 16`.
    Control { c: u8, a: u8, ci: u8 },
    /// `68 L L 68 C A CI data CS 16`.
    Long { c: u8, a: u8, ci: u8, data: &'a [u8] },
}

/// Arithmetic sum mod 256, the M-Bus checksum.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
}

/// Parses one frame from the start of `input`; returns it and the number of bytes it used.
pub fn parse(input: &[u8]) -> Result<(Frame<'_>, usize)> {
    let Some(&start) = input.first() else {
        return Err(Error::Incomplete { needed: 1 });
    };
    match start {
        ACK => Ok((Frame::Ack, 1)),
        SHORT_START => {
            if input.len() < 5 {
                return Err(Error::Incomplete {
                    needed: 5 - input.len(),
                });
            }
            let (c, a, cs, stop) = (input[1], input[2], input[3], input[4]);
            if stop != STOP {
                return Err(Error::invalid("stop byte", format!("expected 16, got {stop:02X}")));
            }
            verify(checksum(&input[1..3]), cs)?;
            Ok((Frame::Short { c, a }, 5))
        }
        LONG_START => {
            if let [_, l1, l2, ..] = *input
                && l1 != l2
            {
                return Err(Error::invalid(
                    "length",
                    format!("L fields differ ({l1:02X} vs {l2:02X})"),
                ));
            }
            if input.len() < 4 {
                return Err(Error::Incomplete {
                    needed: 4 - input.len(),
                });
            }
            let l1 = input[1];
            if input[3] != LONG_START {
                return Err(Error::invalid(
                    "start byte",
                    format!("second start byte is {:02X}", input[3]),
                ));
            }
            if l1 < 3 {
                return Err(Error::invalid("length", format!("L = {l1} is below 3 (C, A, CI)")));
            }
            let total = usize::from(l1) + 6;
            if input.len() < total {
                return Err(Error::Incomplete {
                    needed: total - input.len(),
                });
            }
            let body = &input[4..4 + usize::from(l1)];
            let (cs, stop) = (input[total - 2], input[total - 1]);
            if stop != STOP {
                return Err(Error::invalid("stop byte", format!("expected 16, got {stop:02X}")));
            }
            verify(checksum(body), cs)?;
            let (c, a, ci) = (body[0], body[1], body[2]);
            let frame = if l1 == 3 {
                Frame::Control { c, a, ci }
            } else {
                Frame::Long {
                    c,
                    a,
                    ci,
                    data: &body[3..],
                }
            };
            Ok((frame, total))
        }
        other => Err(Error::invalid("start byte", format!("{other:02X} is not E5, 10 or 68"))),
    }
}

fn verify(computed: u8, sent: u8) -> Result<()> {
    if computed == sent {
        Ok(())
    } else {
        Err(Error::check(
            Check::Checksum,
            format!("frame says {sent:02X}, bytes sum to {computed:02X}"),
        ))
    }
}

/// Writes a frame with its checksum. Long frames longer than [`MAX_DATA`] are refused.
pub fn encode(frame: &Frame<'_>, out: &mut Vec<u8>) -> Result<()> {
    match *frame {
        Frame::Ack => out.push(ACK),
        Frame::Short { c, a } => out.extend_from_slice(&[SHORT_START, c, a, c.wrapping_add(a), STOP]),
        Frame::Control { c, a, ci } => {
            out.extend_from_slice(&[LONG_START, 3, 3, LONG_START, c, a, ci, checksum(&[c, a, ci]), STOP]);
        }
        Frame::Long { c, a, ci, data } => {
            if data.len() > MAX_DATA {
                return Err(Error::invalid(
                    "length",
                    format!("{} bytes of user data, at most {MAX_DATA}", data.len()),
                ));
            }
            let l = (data.len() + 3) as u8;
            out.extend_from_slice(&[LONG_START, l, l, LONG_START, c, a, ci]);
            out.extend_from_slice(data);
            out.push(checksum(&[c, a, ci]).wrapping_add(checksum(data)));
            out.push(STOP);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_are_recognised() {
        assert_eq!(parse(&[0xE5]).unwrap(), (Frame::Ack, 1));
        assert_eq!(
            parse(&[0x10, 0x40, 0xFD, 0x3D, 0x16]).unwrap(),
            (Frame::Short { c: 0x40, a: 0xFD }, 5)
        );
        let control = [0x68, 0x03, 0x03, 0x68, 0x53, 0x01, 0xBD, 0x11, 0x16];
        assert_eq!(
            parse(&control).unwrap().0,
            Frame::Control {
                c: 0x53,
                a: 0x01,
                ci: 0xBD
            }
        );
    }

    #[test]
    fn incomplete_is_not_invalid() {
        let w1 = hex::decode("681F1F680802727856341224400107550000000313153100DA023B13018B60043718021816").unwrap();
        for n in 0..w1.len() {
            assert!(matches!(parse(&w1[..n]), Err(Error::Incomplete { .. })), "prefix {n}");
        }
        assert!(parse(&w1).is_ok());
        assert!(matches!(
            parse(&[0x68, 0x05, 0x06]),
            Err(Error::Invalid { field: "length", .. })
        ));
        assert!(matches!(
            parse(&[0x42]),
            Err(Error::Invalid {
                field: "start byte",
                ..
            })
        ));
    }

    #[test]
    fn bad_checksum_names_the_check() {
        let err = parse(&[0x10, 0x40, 0xFD, 0x3E, 0x16]).unwrap_err();
        assert_eq!(err.failed_check(), Some(Check::Checksum));
    }

    proptest! {
        #[test]
        fn encode_parse_round_trip(c in any::<u8>(), a in any::<u8>(), ci in any::<u8>(),
                                   data in prop::collection::vec(any::<u8>(), 1..=MAX_DATA)) {
            for frame in [Frame::Short { c, a }, Frame::Control { c, a, ci }, Frame::Long { c, a, ci, data: &data }] {
                let mut out = Vec::new();
                encode(&frame, &mut out).unwrap();
                prop_assert_eq!(parse(&out).unwrap(), (frame, out.len()));
            }
        }
    }
}
