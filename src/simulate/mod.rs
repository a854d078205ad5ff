//! Simulated devices and a private broker: they serve `meterd simulate …`, `meterd demo`, the
//! tests and the benches, never the production paths (the daemon and `ingest` do not import
//! this module). Built with the default `simulate` feature, which also turns on the protocol
//! crate's `testing` feature for the sans-IO peers these drive.
//!
//! - [`recorder`]: a handheld recorder docked in a cradle on a pseudo-terminal.
//! - [`meter`]: serial meters on pseudo-terminals: an IEC 62056-21 meter for the probe, an
//!   M-Bus segment of slaves, a DSMR P1 port.
//! - [`gateway`]: AMR gateway traffic (SCM, SCM+, IDM, R900 heard by several gateways).
//! - [`receiver`]: wM-Bus receivers (USB sticks, SDR decoders) on pseudo-terminals.
//! - [`broker`]: a private mosquitto on a free loopback port.

pub mod broker;
pub mod gateway;
pub mod meter;
pub mod receiver;
pub mod recorder;
