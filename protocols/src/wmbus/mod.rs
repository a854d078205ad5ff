//! Wireless M-Bus (EN 13757-4) with OMS security.
use crate::decode::Keys;
use crate::decoded::Decoded;
use crate::error::{Error, Result};

/// True when the L field is consistent with the length (with or without DLL CRC blocks).
pub fn looks_like(frame: &[u8]) -> bool {
    !frame.is_empty() && frame[0] as usize + 1 == frame.len()
}

/// Decodes one telegram.
pub fn decode(frame: &[u8], _keys: &Keys) -> Result<Decoded> {
    Err(Error::Unsupported(format!("wM-Bus decoding is not written yet ({} bytes)", frame.len())))
}
