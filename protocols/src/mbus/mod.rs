//! Wired M-Bus (EN 13757-2 link layer, EN 13757-3 application layer).
use crate::decoded::Decoded;
use crate::error::{Error, Result};

/// True when the bytes have the shape of a wired M-Bus frame (E5, 10 .. 16, 68 L L 68 .. 16).
pub fn looks_like(frame: &[u8]) -> bool {
    match frame {
        [0xE5] => true,
        [0x10, _, _, _, 0x16] => true,
        [0x68, l1, l2, 0x68, ..] => l1 == l2 && frame.len() == *l1 as usize + 6,
        _ => false,
    }
}

/// Decodes one frame.
pub fn decode(frame: &[u8]) -> Result<Decoded> {
    Err(Error::Unsupported(format!("M-Bus decoding is not written yet ({} bytes)", frame.len())))
}
