//! Placeholder: decoding of this message is being written.
use crate::decoded::Decoded;
use crate::error::{Error, Result};

/// Decodes one frame.
pub fn decode(frame: &[u8], _variant: bool) -> Result<Decoded> {
    Err(Error::Unsupported(format!("r900 decoding is not written yet ({} bytes)", frame.len())))
}
