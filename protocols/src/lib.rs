//! Sans-IO parsers and encoders for every wire and file format meterd speaks.
//!
//! # Layout
//! One module per format, each parsing from `&[u8]` with `nom` and never touching IO:
//! - [`error`]: the one error enum, telling an incomplete frame apart from an invalid one.
//! - [`decoded`]: the protocol-neutral shape of a decoded frame (what `meterd decode` prints).
//! - [`decode`]: format detection and dispatch over the modules below.
//! - [`stream`]: cutting a byte stream into frames as it arrives (lines, text telegrams, binary).
//! - [`ert`]: Itron ERT SCM, SCM+, IDM, NetIDM; Neptune R900/R900BCD; rtlamr JSON; gateway envelopes.
//! - [`rtl433`]: rtl_433's JSON lines for the meter models it decodes (ERT, R900, wM-Bus).
//! - [`mbus`]: wired M-Bus (EN 13757-2/-3) frames and the variable data structure.
//! - [`wmbus`]: wireless M-Bus (EN 13757-4) DLL/ELL/AFL/TPL with AES security modes 5 and 7.
//! - [`iec62056_21`]: IEC 62056-21 mode C optical-probe readout and session messages.
//! - [`dsmr`]: DSMR P1 telegrams.
//! - [`cradle`]: the handheld recorder cradle link (frames, sliding window, session messages, records).
//! - [`fixed_width`]: fixed-width record layouts described as data (route import, CIS export).
//! - [`hexline`]: one frame per line as hex, the way gateways and captures carry binary frames.
//! - [`decimal`]: exact decimal text ⇄ `i64` micro-units, shared by the interval file formats.
//! - [`nem12`]: AEMO NEM12 interval data files (streaming reader and writer).
//! - [`cmep`]: CMEP `MEPMD01` records, register and interval data.
//! - [`receiver`]: wM-Bus receivers on serial lines (iM871A HCI, Amber, culfw, rtl_wmbus, rtl_433).
//! - [`greenbutton`]: Green Button (NAESB ESPI) "Download My Data" Atom feeds (writer).
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

pub mod cmep;
pub mod cradle;
pub mod decimal;
pub mod decode;
pub mod decoded;
pub mod dsmr;
pub mod error;
pub mod ert;
pub mod fixed_width;
/// What each fuzz target checks, shared by the targets and the corpus replay test.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzz_checks;
pub mod greenbutton;
pub mod hexline;
pub mod iec62056_21;
pub mod mbus;
pub mod nem12;
pub mod receiver;
pub mod rtl433;
pub mod stream;
pub mod wmbus;

pub use decoded::{Decoded, Reading};
pub use error::{Check, Error, Result};
