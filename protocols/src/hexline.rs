//! One binary frame per line as hex (spaces allowed), the way gateways and captures carry frames.

use crate::error::{Error, Result};

/// Parses a line of hex digits, ignoring ASCII whitespace, into bytes.
pub fn parse(line: &str) -> Result<Vec<u8>> {
    let compact: String = line.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err(Error::invalid("hex", "empty line"));
    }
    hex::decode(&compact).map_err(|e| Error::invalid("hex", e.to_string()))
}

/// Formats bytes as upper-case hex without separators.
pub fn format(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_are_ignored_and_case_is_free() {
        assert_eq!(parse("f9 53 0A").unwrap(), vec![0xF9, 0x53, 0x0A]);
    }

    #[test]
    fn odd_length_and_non_hex_are_errors() {
        assert!(matches!(parse("F95"), Err(Error::Invalid { field: "hex", .. })));
        assert!(matches!(parse("zz"), Err(Error::Invalid { field: "hex", .. })));
        assert!(parse("   ").is_err());
    }
}
