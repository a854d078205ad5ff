//! wM-Bus receivers on serial ports and pipes (`[[receiver]]`): USB sticks (IMST iM871A /
//! iU891A, Amber AMB8465 / AMB3665, culfw CUL) and the text output of rtl_wmbus and rtl_433.
//! Their telegrams take the MQTT gateways' ingest path (the same units, de-duplication keys,
//! gateway health and quarantine), committed before they are counted; nothing is acked.
//!
//! - [`config`]: the `[[receiver]]` section.
//! - [`port`]: opening a serial device or a FIFO.
//! - [`units`]: what a receiver's framing gave ([`meterd_protocols::receiver::Event`]) →
//!   ingest units.
//! - [`daemon`]: the component, one task per receiver: set the mode on open, reopen with
//!   backoff, reset a stick silent longer than `reset_after_secs`.

pub mod config;
pub mod daemon;
pub mod port;
pub mod units;

pub use config::ReceiverConfig;

/// The prefix of a receiver's quarantine source and gateway `last_topic` (`receiver PORT`).
pub const SOURCE_PREFIX: &str = "receiver ";
