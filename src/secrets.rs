//! Secrets read from files (wM-Bus keys, MQTT password, TLS key): refused when the file can be
//! read by group or others, because a key that leaked is a meter fleet that can be spoofed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use meterd_protocols::decode::Keys;

/// Reads a secret file after checking that only its owner can read it.
pub fn read_private(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        bail!(
            "{}: permissions {:o} let group or others read it; run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Reads a wM-Bus key file (`METER_ID=HEX` per line).
pub fn read_key_file(path: &Path) -> Result<Keys> {
    let text = read_private(path)?;
    Keys::parse_file(&text).with_context(|| format!("{}", path.display()))
}

/// What a component's section records of a key file so that a reload notices a changed file
/// even when the configuration file did not change: a digest of its content (never the keys),
/// or why it cannot be read.
pub fn key_file_fingerprint(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    match std::fs::read(path) {
        Ok(bytes) => hex::encode(&Sha256::digest(&bytes)[..16]),
        Err(e) => format!("unreadable: {}", e.kind()),
    }
}
