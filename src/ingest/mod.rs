//! Where reads come from. Every source decodes its input into [`crate::model::Read`]s and
//! hands them to [`accept_reads`] (VEE + one durable transaction).
//!
//! - [`pipeline`]: [`accept_reads`] / [`accept_in`], the single entry into the store.
//! - [`files`]: meter lists and read files (CSV, Sensus AutoRead route layout).
//! - [`meterbus`]: meters read over serial lines (IEC 62056-21 probe, wired M-Bus, DSMR P1).

pub mod files;
pub mod meterbus;
pub mod pipeline;

pub use pipeline::{AcceptReport, accept_in, accept_reads};
