//! Where reads come from. Every source decodes its input into [`crate::model::Read`]s and
//! hands them to [`accept_reads`] (VEE + one durable transaction).
//!
//! - [`pipeline`]: [`accept_reads`] / [`accept_in`], the single entry into the store.
//! - [`cradle`]: handheld recorders in cradles on serial ports.
//! - [`files`]: meter lists and read files (CSV, Sensus AutoRead route layout), read as a stream
//!   ([`source`]) and checked whole before anything is stored; reads sorted in bounded runs ([`sort`]).
//! - [`mqtt`]: AMR/AMI gateways publishing radio packets to an MQTT broker.
//! - [`meterbus`]: meters read over serial lines (IEC 62056-21 probe, wired M-Bus, DSMR P1).
//! - [`receiver`]: wM-Bus receivers on serial ports and FIFOs (iM871A, Amber, CUL, rtl_wmbus, rtl_433).
//! - [`quarantine`]: `[quarantine]` retention and the retry of quarantined input.

pub mod cradle;
pub mod files;
pub mod interval_files;
pub mod intervals;
pub mod meterbus;
pub mod mqtt;
pub mod pipeline;
pub mod quarantine;
pub mod receiver;
pub mod sort;
pub mod source;

pub use pipeline::{AcceptReport, accept_in, accept_reads, accept_reads_with};
