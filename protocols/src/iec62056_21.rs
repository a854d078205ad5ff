//! Placeholder: decoding of this format is being written.
use crate::decoded::Decoded;
use crate::error::{Error, Result};

/// Decodes one telegram.
pub fn decode(text: &[u8]) -> Result<Decoded> {
    Err(Error::Unsupported(format!("iec62056_21 decoding is not written yet ({} bytes)", text.len())))
}
