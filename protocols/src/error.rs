//! The one error type of the protocol crate.
//!
//! A parser says either "not enough bytes yet" ([`Error::Incomplete`]) or "these bytes are
//! wrong" (every other variant), so a stream reader knows whether to wait or to resynchronise.
//! A failed integrity check names the check ([`Check`]), because an operator reading the log or
//! the quarantine needs to know *why* a frame was refused.

use std::fmt;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which integrity check a frame failed. The `Display` form is the name operators and the
/// `meterd decode` contract use (`BCH`, `CRC`, `Reed-Solomon`, `checksum`, `BCC`, `decryption`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    /// SCM's BCH code (poly 0x6F63).
    Bch,
    /// A CRC-16 (SCM+, IDM, wM-Bus DLL blocks, DSMR, cradle link frames).
    Crc,
    /// R900's Reed-Solomon code over GF(32).
    ReedSolomon,
    /// M-Bus arithmetic checksum.
    Checksum,
    /// IEC 62056-21 block check character.
    Bcc,
    /// Decryption produced something that is not plaintext (wrong key), or no key was available.
    Decryption,
    /// A message authentication code did not verify (wM-Bus mode 7).
    Mac,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Check::Bch => "BCH",
            Check::Crc => "CRC",
            Check::ReedSolomon => "Reed-Solomon",
            Check::Checksum => "checksum",
            Check::Bcc => "BCC",
            Check::Decryption => "decryption",
            Check::Mac => "MAC",
        })
    }
}

/// Everything that can go wrong while parsing or encoding a frame or record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// More bytes are needed; `needed` is a lower bound when known (0 = unknown).
    #[error("incomplete frame: at least {needed} more bytes needed")]
    Incomplete { needed: usize },
    /// The frame is complete but failed its integrity check.
    #[error("{check} check failed: {detail}")]
    Check { check: Check, detail: String },
    /// A field holds a value the format does not allow.
    #[error("invalid {field}: {detail}")]
    Invalid { field: &'static str, detail: String },
    /// The input is not any format this crate recognises (auto-detection failed).
    #[error("unrecognised frame: {0}")]
    Unrecognised(String),
    /// The format is recognised but this variant is not supported.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// An encrypted wM-Bus telegram whose meter has no key, or whose key was refused (the
    /// decrypted data failed its check). Kept apart from the other failures so a telegram held
    /// for a key reason can be decoded again once the key is corrected.
    #[error("{0}")]
    Key(KeyError),
    /// A wM-Bus compact frame whose format (the DIF/VIF layout of the meter type's full
    /// frame, named by its signature) is not known yet: held until a full frame teaches it.
    #[error("compact frame of meter {meter}: format signature {:04X} of {} version {version} type {device_type:02X} not learned yet from a full frame", .key.signature, crate::mbus::header::manufacturer_code(.key.manufacturer), version = .key.version, device_type = .key.device_type)]
    CompactFormat {
        meter: String,
        key: crate::wmbus::compact::FormatKey,
    },
}

/// Why a meter's key did not open its telegram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProblem {
    /// No key is configured for the meter.
    Missing,
    /// A key is configured but the decrypted data failed its check (wrong key).
    Refused,
}

/// A key problem of one meter (8-digit id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    pub meter: String,
    pub problem: KeyProblem,
    /// Which check refused the key (decryption or MAC); `decryption` for a missing key.
    pub check: Check,
    /// The security mode or layer (`mode 5`, `mode 7`, `ELL AES-CTR`) and, for a refused key,
    /// what came out.
    pub detail: String,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problem {
            KeyProblem::Missing => write!(f, "no key for meter {} ({})", self.meter, self.detail),
            KeyProblem::Refused => write!(f, "key for meter {} refused: {}", self.meter, self.detail),
        }
    }
}

/// The meter named by a key refusal's text (`no key for meter 12345678 (...)`,
/// `key for meter 12345678 refused: ...`), as quarantine reasons keep it.
pub fn key_reason_meter(reason: &str) -> Option<&str> {
    // Anywhere in the reason: a receiver puts its layer in front (`wM-Bus telegram: no key …`).
    let at = reason.find("key for meter ")?;
    let rest = &reason[at + "key for meter ".len()..];
    let id = rest.get(..8)?;
    (id.bytes().all(|b| b.is_ascii_digit()) && matches!(rest.as_bytes().get(8), Some(b' '))).then_some(id)
}

impl Error {
    /// Shorthand for a failed integrity check.
    pub fn check(check: Check, detail: impl Into<String>) -> Self {
        Error::Check {
            check,
            detail: detail.into(),
        }
    }

    /// Shorthand for an invalid field.
    pub fn invalid(field: &'static str, detail: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            detail: detail.into(),
        }
    }

    /// The check that failed, if this is a check failure.
    pub fn failed_check(&self) -> Option<Check> {
        match self {
            Error::Check { check, .. } => Some(*check),
            Error::Key(k) => Some(k.check),
            _ => None,
        }
    }
}

impl<I> From<nom::Err<nom::error::Error<I>>> for Error {
    fn from(e: nom::Err<nom::error::Error<I>>) -> Self {
        match e {
            nom::Err::Incomplete(nom::Needed::Size(n)) => Error::Incomplete { needed: n.get() },
            nom::Err::Incomplete(nom::Needed::Unknown) => Error::Incomplete { needed: 0 },
            nom::Err::Error(e) | nom::Err::Failure(e) => Error::invalid("frame", format!("parse error ({:?})", e.code)),
        }
    }
}
